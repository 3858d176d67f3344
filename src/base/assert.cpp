#include "archipel/base/assert.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>

namespace archipel::base {
namespace {
std::atomic<std::uint64_t> bugs{0};
}

void assert_failed(const char* condition, const char* message, std::source_location where) {
  spdlog::critical("assertion failed: {} ({}) at {}:{}", condition, message, where.file_name(),
                   where.line());
  spdlog::shutdown();
  std::abort();
}

void report_bug(const char* message, std::source_location where) {
  bugs.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("bug: {} at {}:{}", message, where.file_name(), where.line());
}

std::uint64_t bug_count() noexcept {
  return bugs.load(std::memory_order_relaxed);
}

}  // namespace archipel::base
