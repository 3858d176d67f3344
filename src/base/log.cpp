#include "archipel/base/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace archipel::base {

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
  if (text == "trace") {
    return LogLevel::kTrace;
  }
  if (text == "debug") {
    return LogLevel::kDebug;
  }
  if (text == "info") {
    return LogLevel::kInfo;
  }
  if (text == "warn") {
    return LogLevel::kWarn;
  }
  if (text == "error") {
    return LogLevel::kError;
  }
  if (text == "off") {
    return LogLevel::kOff;
  }
  return std::nullopt;
}

void init_logging(std::string_view site, LogLevel level) {
  auto logger = std::make_shared<spdlog::logger>(
      std::string(site), std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  // %n is the logger's name: the site. UTC, millisecond precision, one event per line.
  logger->set_pattern(
      site.empty() ? "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v" : "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ [%n] %v",
      spdlog::pattern_time_type::utc);
  switch (level) {
    case LogLevel::kTrace: logger->set_level(spdlog::level::trace); break;
    case LogLevel::kDebug: logger->set_level(spdlog::level::debug); break;
    case LogLevel::kInfo: logger->set_level(spdlog::level::info); break;
    case LogLevel::kWarn: logger->set_level(spdlog::level::warn); break;
    case LogLevel::kError: logger->set_level(spdlog::level::err); break;
    case LogLevel::kOff: logger->set_level(spdlog::level::off); break;
  }
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace archipel::base
