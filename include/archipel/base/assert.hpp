#pragma once

// Invariant checks, after Envoy's triage:
//   ARCHIPEL_ASSERT(cond, msg)          a debug-build invariant; compiled out with NDEBUG.
//   ARCHIPEL_BUG(msg)                   "this cannot happen" that we can survive: logs at error
//   level
//                                       and counts (bug_count()), in every build.
//   ARCHIPEL_RELEASE_ASSERT(cond, msg)  unrecoverable: logs and aborts, in every build.
// Never use any of them on what a user or the network sent: that is an error to return.

#include <cstdint>
#include <source_location>

namespace archipel::base {

[[noreturn]] void assert_failed(const char* condition, const char* message,
                                std::source_location where = std::source_location::current());
void report_bug(const char* message, std::source_location where = std::source_location::current());
/// How many ARCHIPEL_BUG were reported by this process (exported as a metric).
[[nodiscard]] std::uint64_t bug_count() noexcept;

}  // namespace archipel::base

#define ARCHIPEL_RELEASE_ASSERT(cond, msg)           \
  do {                                               \
    if (!(cond)) [[unlikely]] {                      \
      ::archipel::base::assert_failed(#cond, (msg)); \
    }                                                \
  } while (false)

#ifdef NDEBUG
#define ARCHIPEL_ASSERT(cond, msg) \
  do {                             \
  } while (false && (cond))
#else
#define ARCHIPEL_ASSERT(cond, msg) ARCHIPEL_RELEASE_ASSERT(cond, msg)
#endif

#define ARCHIPEL_BUG(msg) ::archipel::base::report_bug((msg))
