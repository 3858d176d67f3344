#pragma once
// A free TCP port on this machine's loopback, for a listener another program opens next (CRIU's
// page server, a site started by the simulation harness).

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>

namespace archipel::base {

/// A port of 127.0.0.1 bound then released; the error says why none could be had.
boost::system::result<std::uint16_t, std::string> free_loopback_port();

}  // namespace archipel::base
