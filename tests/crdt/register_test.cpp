// The multi-value register as replicas use it: writes at 3 replicas, deltas delivered out of
// order, duplicated and dropped (then full-state anti-entropy); every replica ends with the same
// values and shows the same winner; join is commutative, associative and idempotent; applying
// every delta equals merging the full states.

#include "archipel/crdt/register.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>

namespace archipel::crdt {
namespace {

constexpr std::array<std::string_view, 3> kSites = {"nantes", "paris", "rennes"};
std::string_view site_of(ReplicaIndex r) {
  return kSites.at(r);
}

struct State {
  MvRegister reg;
  DotContext context;
  void join(const State& other) {
    reg.join(other.reg, context, other.context);
    context.merge(other.context);
  }
  friend bool operator==(const State&, const State&) = default;
};

struct History {
  std::array<State, 3> replicas;
  std::vector<State> deltas;
};

// A random history: writes at random replicas, some deltas delivered at once to a random peer.
History random_run(std::mt19937& rng, int writes) {
  History run;
  std::array<HybridClock, 3> clocks;
  std::uniform_int_distribution<int> who(0, 2), wall(1000, 1010), coin(0, 3);
  for (int i = 0; i < writes; ++i) {
    const auto r = static_cast<ReplicaIndex>(who(rng));
    State& s = run.replicas[r];
    const Dot dot = s.context.next(r);
    State delta;
    delta.reg = s.reg.write(dot, clocks[r].now(static_cast<std::uint64_t>(wall(rng))),
                            "v" + std::to_string(i), delta.context);
    run.deltas.push_back(delta);
    if (coin(rng) == 0) {  // delivered now to someone (maybe again later)
      const auto to = static_cast<ReplicaIndex>(who(rng));
      run.replicas[to].join(delta);
      for (const auto& v : delta.reg.values()) {
        (void)clocks[to].observe(v.at, 1010);
      }
    }
  }
  return run;
}

TEST(MvRegister, ReplicasConvergeWhateverTheDelivery) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    History run = random_run(rng, 12);
    // Deliver every delta to every replica in a shuffled order, some twice.
    for (State& replica : run.replicas) {
      std::vector<State> order = run.deltas;
      std::shuffle(order.begin(), order.end(), rng);
      order.insert(order.end(), order.begin(), order.begin() + static_cast<long>(order.size() / 3));
      for (const State& d : order) {
        replica.join(d);
      }
    }
    EXPECT_EQ(run.replicas[0], run.replicas[1]);
    EXPECT_EQ(run.replicas[1], run.replicas[2]);
    const auto* w0 = run.replicas[0].reg.winner(site_of);
    const auto* w2 = run.replicas[2].reg.winner(site_of);
    ASSERT_NE(w0, nullptr);
    EXPECT_EQ(*w0, *w2);
  }
}

TEST(MvRegister, DeltasEqualFullStatesAndAntiEntropyRecoversDrops) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    History run = random_run(rng, 10);
    // Full-state anti-entropy among all replicas (the drops are whatever random_run left out).
    State full;
    for (const State& r : run.replicas) {
      full.join(r);
    }
    for (const State& r : run.replicas) {
      full.join(r);
    }
    State from_deltas;
    for (const State& d : run.deltas) {
      from_deltas.join(d);
    }
    EXPECT_EQ(full.reg, from_deltas.reg);
    EXPECT_TRUE(from_deltas.context.includes(full.context));
  }
}

TEST(MvRegister, JoinIsCommutativeAssociativeIdempotent) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 300; ++trial) {
    History run = random_run(rng, 9);
    const State& a = run.replicas[0];
    const State& b = run.replicas[1];
    const State& c = run.replicas[2];
    State ab = a, ba = b;
    ab.join(b);
    ba.join(a);
    EXPECT_EQ(ab.reg, ba.reg);
    State ab_c = ab, bc = b;
    ab_c.join(c);
    bc.join(c);
    State a_bc = a;
    a_bc.join(bc);
    EXPECT_EQ(ab_c.reg, a_bc.reg);
    State twice = ab;
    twice.join(ab);
    EXPECT_EQ(twice, ab);
  }
}

TEST(MvRegister, ConcurrentWritesStayAndTheLatestWins) {
  State paris, rennes;
  HybridClock pc, rc;
  State d1, d2;
  d1.reg = paris.reg.write(paris.context.next(1), pc.now(2000), "from paris", d1.context);
  d2.reg = rennes.reg.write(rennes.context.next(2), rc.now(1000), "from rennes", d2.context);
  paris.join(d2);
  rennes.join(d1);
  ASSERT_EQ(paris.reg.values().size(), 2U);
  EXPECT_EQ(paris.reg.winner(site_of)->value, "from paris");
  EXPECT_EQ(rennes.reg.winner(site_of)->value, "from paris");
  // A write that saw both replaces both.
  State d3;
  d3.reg = rennes.reg.write(rennes.context.next(2), rc.now(3000), "merged", d3.context);
  paris.join(d3);
  ASSERT_EQ(paris.reg.values().size(), 1U);
  EXPECT_EQ(paris.reg.values()[0].value, "merged");
}

TEST(MvRegister, EqualTimestampsAreBrokenByTheGreaterSiteName) {
  State a, b;
  State d1, d2;
  d1.reg = a.reg.write(a.context.next(0), Hlc::from(5, 0), "nantes", d1.context);
  d2.reg = b.reg.write(b.context.next(1), Hlc::from(5, 0), "paris", d2.context);
  a.join(d2);
  EXPECT_EQ(a.reg.winner(site_of)->value, "paris");
}

}  // namespace
}  // namespace archipel::crdt
