#pragma once

// Process-wide logging: one line per event, UTC timestamp, level, and the site's name in every
// line. Call init_logging() once at startup, then use spdlog's free functions (spdlog::info…).

#include <optional>
#include <string>
#include <string_view>

namespace archipel::base {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

/// Parses "trace", "debug", "info", "warn", "error", "off"; nullopt for anything else.
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;

/// Installs the default logger: stderr, lines like
/// "2026-11-23T01:24:37.123Z info  [paris] proxy: listening on 127.0.0.1:7100".
/// `site` may be empty for commands that do not run a site (the brackets are then omitted).
/// Not thread-safe against concurrent logging: call before starting threads.
void init_logging(std::string_view site, LogLevel level);

}  // namespace archipel::base
