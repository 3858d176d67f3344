#include "asio/listen.hpp"

namespace archipel::net {

boost::system::result<std::uint16_t, std::string> listen(boost::asio::ip::tcp::acceptor& acceptor,
                                                         const std::string& host,
                                                         std::uint16_t port) {
  namespace asio = boost::asio;
  using Result = boost::system::result<std::uint16_t, std::string>;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return Result(boost::system::in_place_error, "invalid listen address '" + host + "'");
  }
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Result(boost::system::in_place_error,
                  "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  return acceptor.local_endpoint(ec).port();
}

}  // namespace archipel::net
