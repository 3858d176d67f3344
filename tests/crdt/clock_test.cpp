// The hybrid logical clock: timestamps never repeat or go back, follow the wall clock when it
// moves ahead, carry a full counter into the milliseconds, adopt remote timestamps within the
// skew bound and refuse those beyond it.

#include "archipel/crdt/clock.hpp"

#include <gtest/gtest.h>

namespace archipel::crdt {
namespace {

using namespace std::chrono_literals;

TEST(HybridClock, FollowsTheWallClockWhenItMovesAhead) {
  HybridClock clock;
  EXPECT_EQ(clock.now(1000), Hlc::from(1000, 0));
  EXPECT_EQ(clock.now(1005), Hlc::from(1005, 0));
}

TEST(HybridClock, CountsWithinAMillisecondAndWhenTheWallClockGoesBack) {
  HybridClock clock;
  const Hlc a = clock.now(2000);
  const Hlc b = clock.now(2000);
  const Hlc c = clock.now(1500);  // the wall clock stepped back
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(c, Hlc::from(2000, 2));
}

TEST(HybridClock, CarriesAFullCounterIntoTheMilliseconds) {
  HybridClock clock;
  Hlc last = clock.now(3000);
  for (std::uint64_t i = 0; i < Hlc::kMaxCounter; ++i) {
    last = clock.now(3000);
  }
  EXPECT_EQ(last, Hlc::from(3000, Hlc::kMaxCounter));
  const Hlc next = clock.now(3000);
  EXPECT_GT(next, last);
  EXPECT_EQ(next, Hlc::from(3001, 0));
}

TEST(HybridClock, AdoptsARemoteTimestampWithinTheSkewBound) {
  HybridClock clock(60s);
  ASSERT_TRUE(clock.observe(Hlc::from(50'000, 7), 10'000));
  EXPECT_GT(clock.now(10'001), Hlc::from(50'000, 7));
}

TEST(HybridClock, RefusesARemoteTimestampBeyondTheSkewBoundAndKeepsItsTime) {
  HybridClock clock(60s);
  const Hlc before = clock.now(10'000);
  auto refused = clock.observe(Hlc::from(10'000 + 60'001, 0), 10'000);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("ahead"), std::string::npos) << refused.error().message;
  EXPECT_EQ(clock.last(), before);
  EXPECT_EQ(clock.now(10'000), Hlc::from(10'000, 1));
}

TEST(Hlc, OrdersByMillisecondsThenCounter) {
  EXPECT_LT(Hlc::from(5, Hlc::kMaxCounter), Hlc::from(6, 0));
  EXPECT_EQ(Hlc::from(5, 3).wall_ms(), 5U);
  EXPECT_EQ(Hlc::from(5, 3).counter(), 3U);
}

}  // namespace
}  // namespace archipel::crdt
