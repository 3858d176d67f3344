#include "archipel/crdt/clock.hpp"

#include <algorithm>

namespace archipel::crdt {

namespace {

// The timestamp after `last` at wall time `wall_ms`: the wall time when it is ahead, else one
// more on the counter (which, when full, carries into the milliseconds: the clock runs a little
// ahead rather than repeat itself).
Hlc next_after(Hlc last, std::uint64_t wall_ms) noexcept {
  wall_ms = std::min(wall_ms, Hlc::kMaxWallMs);
  if (wall_ms > last.wall_ms()) {
    return Hlc::from(wall_ms, 0);
  }
  return Hlc{last.value + 1};  // the counter's carry lands in the milliseconds
}

}  // namespace

Hlc HybridClock::now(std::uint64_t wall_ms) noexcept {
  last_ = next_after(last_, wall_ms);
  return last_;
}

boost::system::result<void, ClockError> HybridClock::observe(Hlc remote, std::uint64_t wall_ms) {
  if (remote.wall_ms() > wall_ms + max_skew_ms_) {
    return ClockError{"timestamp " + std::to_string(remote.wall_ms()) + " ms is " +
                      std::to_string(remote.wall_ms() - wall_ms) +
                      " ms ahead of this site's clock (at most " + std::to_string(max_skew_ms_) +
                      " ms accepted)"};
  }
  last_ = std::max(last_, remote);
  return {};
}

}  // namespace archipel::crdt
