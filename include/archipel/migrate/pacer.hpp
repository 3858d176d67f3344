#pragma once
// How often a protected pod is checkpointed (pure: no clock, no I/O). Each checkpoint costs the
// pod a freeze (CRIU dumps it, leaving it running) and the site bandwidth (what changed since
// the previous checkpoint goes to the failover sites). The pacer keeps the checkpoints as
// fresh as a budget allows: a fraction of the pod's time frozen and a rate of bytes sent. A
// proportional-integral controller on the logarithm of the interval steers the measured load
// (the larger of freeze / interval ÷ that fraction and bytes / interval ÷ that rate) towards 1:
// a faster dirtying pod sends more bytes per checkpoint and gets longer intervals, a quiet one
// shorter ones.

#include <chrono>
#include <cstdint>

namespace archipel::migrate {

class CheckpointPacer {
 public:
  struct Budget {
    double frozen_fraction = 0.05;         ///< of the pod's time spent frozen by checkpoints
    double bytes_per_second = 8e6;         ///< sent to each failover site
    std::chrono::milliseconds min{500};    ///< never checkpoint more often
    std::chrono::milliseconds max{60000};  ///< nor more rarely
    std::chrono::milliseconds first{2000};
  };

  explicit CheckpointPacer(Budget budget);

  /// The interval until the next checkpoint.
  [[nodiscard]] std::chrono::milliseconds interval() const noexcept { return interval_; }

  /// A checkpoint taken `interval()` after the previous one froze the pod for `frozen` and sent
  /// `bytes`: adapts the interval and returns it.
  std::chrono::milliseconds record(std::chrono::microseconds frozen, std::uint64_t bytes);

  /// The load of the last checkpoint (1: exactly the budget).
  [[nodiscard]] double load() const noexcept { return load_; }

 private:
  Budget budget_;
  std::chrono::milliseconds interval_;
  double previous_error_ = 0;
  double load_ = 0;
};

}  // namespace archipel::migrate
