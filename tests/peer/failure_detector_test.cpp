// The failure detector on a fake clock: time is a value the test advances, never read.

#include "archipel/peer/failure_detector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace archipel::peer {
namespace {

using namespace std::chrono_literals;

TimePoint at(Duration d) {
  return TimePoint(d);
}

// Heartbeats sent every 100 ms, arriving after a latency of 20 ms ± jitter (uniform).
class Link {
 public:
  Link(std::uint64_t seed, Duration jitter) : rng_(seed), jitter_(jitter) {}
  // Arrival time of the heartbeat sent at `sent`.
  TimePoint arrival(Duration sent) {
    const auto j =
        std::uniform_int_distribution<long long>(-jitter_.count(), jitter_.count())(rng_);
    return at(sent + 20ms + Duration(j));
  }

 private:
  std::mt19937_64 rng_;
  Duration jitter_;
};

TEST(PhiAccrualDetector, PhiStaysLowOnTimeAndGrowsWithSilence) {
  PhiAccrualDetector d(DetectorConfig{});
  for (int i = 0; i <= 50; ++i) {
    d.heartbeat(at(i * 100ms));
  }
  const TimePoint last = at(5000ms);
  EXPECT_LT(d.phi(last + 100ms), 1.0);
  EXPECT_GT(d.phi(last + 200ms), d.phi(last + 150ms));
  EXPECT_GT(d.phi(last + 400ms), 8.0);
}

TEST(PhiAccrualDetector, LearnsTheIntervalFromArrivals) {
  PhiAccrualDetector d(DetectorConfig{});
  for (int i = 0; i <= 100; ++i) {
    d.heartbeat(at(i * 250ms));
  }
  using Ms = std::chrono::duration<double, std::milli>;
  EXPECT_NEAR(Ms(d.mean()).count(), 250.0, 0.01);
  EXPECT_LT(d.phi(at(100 * 250ms + 250ms)), 1.0);  // a 250 ms gap is normal here
}

TEST(PeerHealth, NeverHeardFromIsDown) {
  PeerHealth p(DetectorConfig{});
  EXPECT_EQ(p.evaluate(at(10s)), PeerState::kDown);
}

TEST(PeerHealth, DetectsACutWellWithin500MsAt100MsHeartbeats) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PeerHealth p(DetectorConfig{});
    Link link(seed, 10ms);
    for (int i = 0; i < 100; ++i) {
      p.on_heartbeat(link.arrival(i * 100ms));
    }
    ASSERT_EQ(p.evaluate(at(9900ms + 50ms)), PeerState::kReachable);
    // The link is cut right after the heartbeat sent at 9.9 s; evaluate every 10 ms.
    const Duration cut = 9900ms + 30ms;
    Duration detected{};
    for (Duration t = cut; t < cut + 2s; t += 10ms) {
      if (p.evaluate(at(t)) == PeerState::kDown) {
        detected = t - cut;
        break;
      }
    }
    EXPECT_GT(detected, 0ms) << "seed " << seed;
    EXPECT_LE(detected, 500ms) << "seed " << seed;
  }
}

TEST(PeerHealth, PassesThroughSuspectedBeforeDown) {
  PeerHealth p(DetectorConfig{});
  for (int i = 0; i < 50; ++i) {
    p.on_heartbeat(at(i * 100ms));
  }
  std::vector<PeerState> seen;
  for (Duration t = 4900ms; t < 6s; t += 10ms) {
    const PeerState s = p.evaluate(at(t));
    if (seen.empty() || seen.back() != s) {
      seen.push_back(s);
    }
  }
  EXPECT_EQ(seen, (std::vector<PeerState>{PeerState::kReachable, PeerState::kSuspected,
                                          PeerState::kDown}));
}

TEST(PeerHealth, NoFalseDownOver60SecondsWith20MsPlusMinus10MsJitter) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    PeerHealth p(DetectorConfig{});
    Link link(seed, 10ms);
    std::size_t next = 0;
    std::vector<TimePoint> arrivals;
    for (int i = 0; i < 600; ++i) {
      arrivals.push_back(link.arrival(i * 100ms));
    }
    std::sort(arrivals.begin(), arrivals.end());
    int downs = 0;
    for (Duration t = 0ms; t < 60s; t += 10ms) {
      while (next < arrivals.size() && arrivals[next] <= at(t)) {
        p.on_heartbeat(arrivals[next++]);
      }
      if (t > 1s && p.evaluate(at(t)) == PeerState::kDown) {
        ++downs;
      }
    }
    EXPECT_EQ(downs, 0) << "seed " << seed;
  }
}

TEST(PeerHealth, RecoveryFromDownNeedsConsecutiveHeartbeats) {
  PeerHealth p(DetectorConfig{});
  for (int i = 0; i < 20; ++i) {
    p.on_heartbeat(at(i * 100ms));
  }
  ASSERT_EQ(p.evaluate(at(5s)), PeerState::kDown);
  p.on_heartbeat(at(10s));
  EXPECT_EQ(p.evaluate(at(10s + 10ms)), PeerState::kDown);  // one heartbeat is not enough
  p.on_heartbeat(at(10s + 100ms));
  EXPECT_EQ(p.evaluate(at(10s + 110ms)), PeerState::kReachable);
}

TEST(PeerHealth, AnOutageDoesNotTeachTheDetectorToWaitLonger) {
  DetectorConfig config;
  PeerHealth p(config);
  for (int i = 0; i < 50; ++i) {
    p.on_heartbeat(at(i * 100ms));
  }
  ASSERT_EQ(p.evaluate(at(30s)), PeerState::kDown);
  for (int i = 0; i < 5; ++i) {
    p.on_heartbeat(at(60s + i * 100ms));
    p.evaluate(at(60s + i * 100ms + 1ms));
  }
  ASSERT_EQ(p.state(), PeerState::kReachable);
  // The 55 s gap was not learnt: a second cut is detected as fast as the first.
  EXPECT_GT(p.phi(at(60400ms + 400ms)), config.down_phi);
}

TEST(PeerHealth, SmoothsRoundTripTime) {
  PeerHealth p(DetectorConfig{});
  p.on_heartbeat(at(0ms), 8ms);
  EXPECT_EQ(p.rtt(), Duration(8ms));
  p.on_heartbeat(at(100ms), 16ms);
  EXPECT_EQ(p.rtt(), Duration(9ms));  // 8 + (16 - 8) / 8
}

TEST(IsolationTracker, IsolatedOnlyWhenEveryPeerIsDown) {
  IsolationTracker t;
  using S = PeerState;
  EXPECT_FALSE(t.update(std::vector<S>{}));  // no peers: alone, not cut off
  EXPECT_FALSE(t.update(std::vector<S>{S::kDown, S::kReachable}));
  EXPECT_TRUE(t.update(std::vector<S>{S::kDown, S::kDown}));
  // Hysteresis: a Suspected peer does not end isolation; a Reachable one does.
  EXPECT_TRUE(t.update(std::vector<S>{S::kSuspected, S::kDown}));
  EXPECT_FALSE(t.update(std::vector<S>{S::kReachable, S::kDown}));
  EXPECT_FALSE(t.update(std::vector<S>{S::kSuspected, S::kDown}));
}

}  // namespace
}  // namespace archipel::peer
