#include "archipel/migrate/pacer.hpp"

#include <algorithm>
#include <cmath>

namespace archipel::migrate {
namespace {

// An incremental PI controller on log(interval), the error being log(load): Δ log(interval) =
// Kp·(e − e_previous) + Ki·e. For a cost that does not depend on the interval (load ∝
// 1/interval) the error decays like z² − 0.2z − 0.3 = 0 (roots 0.66 and −0.46): a few checkpoints.
constexpr double kProportional = 0.3;
constexpr double kIntegral = 0.5;

}  // namespace

CheckpointPacer::CheckpointPacer(Budget budget)
    : budget_(budget), interval_(std::clamp(budget.first, budget.min, budget.max)) {}

std::chrono::milliseconds CheckpointPacer::record(std::chrono::microseconds frozen,
                                                  std::uint64_t bytes) {
  const double seconds = std::chrono::duration<double>(interval_).count();
  const double frozen_load = std::chrono::duration<double>(frozen).count() / seconds /
                             std::max(budget_.frozen_fraction, 1e-6);
  const double bytes_load =
      static_cast<double>(bytes) / seconds / std::max(budget_.bytes_per_second, 1.0);
  load_ = std::max(frozen_load, bytes_load);
  // In log units: a load twice the budget and half of it are errors of the same size.
  const double error = std::log(std::clamp(load_, 1e-3, 1e3));
  const double next =
      std::log(seconds) + kProportional * (error - previous_error_) + kIntegral * error;
  previous_error_ = error;
  const double ms = std::exp(next) * 1000;
  interval_ = std::clamp(
      std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::min(ms, 1e12)))),
      budget_.min, budget_.max);
  return interval_;
}

}  // namespace archipel::migrate
