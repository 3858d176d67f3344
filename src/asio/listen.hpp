#pragma once

// Opening a listening TCP socket the same way everywhere (the front door, the embedded cluster,
// the peer channel, the link emulator): address parsed, SO_REUSEADDR, bound, listening, and one
// message naming the address and the reason when any step fails.

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <string>

namespace archipel::net {

/// Opens `acceptor` on host:port (port 0: any free one). Returns the bound port, or a message
/// such as "cannot listen on 127.0.0.1:7100: Address already in use".
[[nodiscard]] boost::system::result<std::uint16_t, std::string> listen(
    boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port);

}  // namespace archipel::net
