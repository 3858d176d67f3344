#pragma once

// Hybrid logical clock (Kulkarni et al., 2014): 48 bits of wall-clock milliseconds and a 16-bit
// counter in one 64-bit number, so timestamps order like integers, stay close to real time and
// never go backwards, even when the wall clock does. The clock never reads time itself: the
// caller passes the wall clock in (module rule: crdt does no I/O).

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace archipel::crdt {

/// A hybrid timestamp: (wall ms << 16) | counter. Zero is "never".
struct Hlc {
  std::uint64_t value = 0;

  static constexpr std::uint64_t kCounterBits = 16;
  static constexpr std::uint64_t kMaxCounter = (std::uint64_t{1} << kCounterBits) - 1;
  static constexpr std::uint64_t kMaxWallMs = (std::uint64_t{1} << 48) - 1;

  static constexpr Hlc from(std::uint64_t wall_ms, std::uint64_t counter) noexcept {
    return Hlc{(wall_ms << kCounterBits) | counter};
  }
  [[nodiscard]] constexpr std::uint64_t wall_ms() const noexcept { return value >> kCounterBits; }
  [[nodiscard]] constexpr std::uint64_t counter() const noexcept { return value & kMaxCounter; }
  friend constexpr auto operator<=>(Hlc, Hlc) = default;
};

/// Why a remote timestamp was not adopted.
struct ClockError {
  std::string message;
};

class HybridClock {
 public:
  /// `max_skew`: how far ahead of our wall clock a remote timestamp may be; one further in the
  /// future is refused rather than adopted (it would drag every later timestamp with it).
  explicit HybridClock(std::chrono::milliseconds max_skew = std::chrono::seconds(60)) noexcept
      : max_skew_ms_(static_cast<std::uint64_t>(max_skew.count())) {}

  /// A timestamp for a local event, later than every timestamp this clock has given or seen.
  /// `wall_ms`: milliseconds since the Unix epoch (CLOCK_REALTIME), read by the caller.
  Hlc now(std::uint64_t wall_ms) noexcept;

  /// Takes in a timestamp received from another site, so that what this clock gives next is
  /// later. Refused (and not adopted) when it is more than max_skew ahead of `wall_ms`.
  boost::system::result<void, ClockError> observe(Hlc remote, std::uint64_t wall_ms);

  /// The latest timestamp given or observed.
  [[nodiscard]] Hlc last() const noexcept { return last_; }

 private:
  std::uint64_t max_skew_ms_;
  Hlc last_;
};

}  // namespace archipel::crdt
