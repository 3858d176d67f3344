#pragma once
// The units a link is described in, as people write them (archipel link, simulation
// scenarios): durations ("20ms", "500us", "1.5s", "0") and rates ("10MB/s", "100Mbit/s").

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace archipel::netem {

/// A duration with its unit (us, ms, s; a bare 0), at most an hour; the error quotes the text.
boost::system::result<std::chrono::microseconds, std::string> parse_duration(std::string_view t);

/// A rate in bytes per second (B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, Mbit/s, Gbit/s; a bare
/// number is B/s; 0: unlimited); the error quotes the text.
boost::system::result<std::uint64_t, std::string> parse_bandwidth(std::string_view t);

}  // namespace archipel::netem
