// The checkpoint pacer: the interval settles where the pod's cost meets the budget, follows the
// dirty-memory rate, and stays within its bounds.
#include "archipel/migrate/pacer.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace archipel::migrate {
namespace {

using namespace std::chrono_literals;
using Budget = CheckpointPacer::Budget;

// Runs `n` checkpoints of a pod whose checkpoint freezes it `frozen` and sends what it dirtied
// during the interval: `dirty_per_second`, at most `memory` bytes.
CheckpointPacer run(Budget budget, std::chrono::microseconds frozen, double dirty_per_second,
                    double memory, int n) {
  CheckpointPacer pacer(budget);
  for (int i = 0; i < n; ++i) {
    const double seconds = std::chrono::duration<double>(pacer.interval()).count();
    pacer.record(frozen, static_cast<std::uint64_t>(std::min(memory, dirty_per_second * seconds)));
  }
  return pacer;
}

TEST(CheckpointPacer, AFixedFreezeSettlesAtTheFrozenBudget) {
  // 100 ms frozen per checkpoint, 5% of the time: one every 2 s.
  const CheckpointPacer p =
      run({.frozen_fraction = 0.05, .bytes_per_second = 1e12}, 100ms, 0, 0, 30);
  EXPECT_NEAR(static_cast<double>(p.interval().count()), 2000, 20);
  EXPECT_NEAR(p.load(), 1.0, 0.01);
}

TEST(CheckpointPacer, ThePodThatDirtiesFasterIsCheckpointedLessOften) {
  const Budget budget{.frozen_fraction = 0.05, .bytes_per_second = 10e6};
  // 100 MiB of memory: bytes per checkpoint grow with the interval until all of it is dirty.
  const CheckpointPacer quiet = run(budget, 20ms, 2e6, 100 * 1048576.0, 40);
  const CheckpointPacer busy = run(budget, 20ms, 50e6, 100 * 1048576.0, 40);
  // Quiet: 2 MB/s under the 10 MB/s budget, the freeze decides (20 ms at 5%: 400 ms → the
  // minimum, 500 ms). Busy: the whole memory every time, 100 MiB at 10 MB/s: about 10.5 s.
  EXPECT_EQ(quiet.interval(), 500ms);
  EXPECT_NEAR(static_cast<double>(busy.interval().count()), 10486, 150);
  EXPECT_NEAR(busy.load(), 1.0, 0.02);
}

TEST(CheckpointPacer, TheIntervalStaysWithinItsBounds) {
  const CheckpointPacer slow =
      run({.frozen_fraction = 0.01, .bytes_per_second = 1e12, .max = 5s}, 1s, 0, 0, 20);
  EXPECT_EQ(slow.interval(), 5s);
  const CheckpointPacer fast =
      run({.frozen_fraction = 0.5, .bytes_per_second = 1e12, .min = 800ms}, 1ms, 0, 0, 20);
  EXPECT_EQ(fast.interval(), 800ms);
}

TEST(CheckpointPacer, ANewPacerStartsAtItsFirstInterval) {
  EXPECT_EQ(CheckpointPacer({.first = 3s}).interval(), 3s);
}

}  // namespace
}  // namespace archipel::migrate
