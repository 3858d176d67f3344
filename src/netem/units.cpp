#include "archipel/netem/units.hpp"

#include <charconv>

namespace archipel::netem {

boost::system::result<std::chrono::microseconds, std::string> parse_duration(std::string_view t) {
  double value = 0;
  const char* end = t.data() + t.size();
  auto [unit, ec] = std::from_chars(t.data(), end, value);
  const std::string_view suffix(unit, static_cast<std::size_t>(end - unit));
  double scale = -1;
  if (suffix == "us") {
    scale = 1;
  } else if (suffix == "ms") {
    scale = 1e3;
  } else if (suffix == "s") {
    scale = 1e6;
  } else if (suffix.empty() && value == 0) {
    scale = 0;
  }
  if (ec != std::errc() || scale < 0 || value < 0 || value > 3600e6) {
    return boost::system::result<std::chrono::microseconds, std::string>(
        boost::system::in_place_error,
        "invalid duration '" + std::string(t) + "' (e.g. 20ms, 500us, 1.5s, 0)");
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(value * scale));
}

boost::system::result<std::uint64_t, std::string> parse_bandwidth(std::string_view t) {
  double value = 0;
  const char* end = t.data() + t.size();
  auto [unit, ec] = std::from_chars(t.data(), end, value);
  const std::string_view suffix(unit, static_cast<std::size_t>(end - unit));
  double scale = -1;
  if (suffix.empty() || suffix == "B/s") {
    scale = 1;
  } else if (suffix == "KB/s") {
    scale = 1e3;
  } else if (suffix == "MB/s") {
    scale = 1e6;
  } else if (suffix == "GB/s") {
    scale = 1e9;
  } else if (suffix == "KiB/s") {
    scale = 1024;
  } else if (suffix == "MiB/s") {
    scale = 1024.0 * 1024;
  } else if (suffix == "Mbit/s") {
    scale = 1e6 / 8;
  } else if (suffix == "Gbit/s") {
    scale = 1e9 / 8;
  }
  if (ec != std::errc() || scale < 0 || value < 0) {
    return boost::system::result<std::uint64_t, std::string>(
        boost::system::in_place_error, "invalid bandwidth '" + std::string(t) +
                                           "' (e.g. 10MB/s, 100Mbit/s, 512KiB/s; 0: unlimited)");
  }
  return static_cast<std::uint64_t>(value * scale);
}

}  // namespace archipel::netem
