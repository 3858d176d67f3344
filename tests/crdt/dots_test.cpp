// Causal contexts against a plain set of dots: the same membership whatever the order of
// insertion, the cloud folded into the version vector as gaps close, and merge a join
// (commutative, associative, idempotent, and the union of what both saw).

#include "archipel/crdt/dots.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace archipel::crdt {
namespace {

// Random dots of 3 replicas, counters 1..12, with their reference set.
struct Sample {
  DotContext context;
  std::set<Dot> dots;
};

Sample random_sample(std::mt19937& rng) {
  Sample s;
  std::uniform_int_distribution<int> n(0, 20), replica(0, 2), counter(1, 12);
  for (int i = n(rng); i > 0; --i) {
    const Dot d{static_cast<ReplicaIndex>(replica(rng)), static_cast<std::uint64_t>(counter(rng))};
    s.context.insert(d);
    s.dots.insert(d);
  }
  return s;
}

void expect_same_membership(const DotContext& c, const std::set<Dot>& dots) {
  for (ReplicaIndex r = 0; r < 3; ++r) {
    for (std::uint64_t k = 1; k <= 13; ++k) {
      EXPECT_EQ(c.contains({r, k}), dots.contains({r, k})) << "replica " << r << " counter " << k;
    }
  }
  for (const Dot& d : c.cloud()) {
    EXPECT_GT(d.counter, c.base(d.replica) + 1) << "the cloud should have been folded";
  }
}

TEST(DotContext, FoldsDotsReceivedOutOfOrderIntoItsVersionVector) {
  DotContext c;
  c.insert({0, 3});
  c.insert({0, 2});
  EXPECT_EQ(c.base(0), 0U);
  EXPECT_EQ(c.cloud().size(), 2U);
  c.insert({0, 1});
  EXPECT_EQ(c.base(0), 3U);
  EXPECT_TRUE(c.cloud().empty());
  EXPECT_EQ(c.next(0), (Dot{0, 4}));
  EXPECT_EQ(c.next(5), (Dot{5, 1}));
}

TEST(DotContext, AgreesWithASetOfDotsWhateverTheOrder) {
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const Sample s = random_sample(rng);
    expect_same_membership(s.context, s.dots);
  }
}

TEST(DotContext, MergeIsAJoin) {
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    const Sample a = random_sample(rng), b = random_sample(rng), c = random_sample(rng);
    DotContext ab = a.context;
    ab.merge(b.context);
    DotContext ba = b.context;
    ba.merge(a.context);
    EXPECT_EQ(ab, ba);  // commutative
    std::set<Dot> both = a.dots;
    both.insert(b.dots.begin(), b.dots.end());
    expect_same_membership(ab, both);  // the union
    EXPECT_TRUE(ab.includes(a.context));
    EXPECT_TRUE(ab.includes(b.context));
    DotContext again = ab;
    again.merge(b.context);
    EXPECT_EQ(again, ab);  // idempotent
    DotContext ab_c = ab;
    ab_c.merge(c.context);
    DotContext bc = b.context;
    bc.merge(c.context);
    DotContext a_bc = a.context;
    a_bc.merge(bc);
    EXPECT_EQ(ab_c, a_bc);  // associative
  }
}

TEST(DotContext, IncludesOnlyWhatItSaw) {
  DotContext a, b;
  a.insert({0, 1});
  a.insert({0, 2});
  b.insert({0, 1});
  b.insert({1, 4});
  EXPECT_FALSE(a.includes(b));
  EXPECT_FALSE(b.includes(a));
  b.insert({0, 2});
  EXPECT_TRUE(b.includes(a));
}

TEST(DotContext, RenamesReplicasIntoAnotherTable) {
  DotContext c;
  c.insert({0, 1});
  c.insert({0, 2});
  c.insert({1, 5});  // out of order: in the cloud
  const DotContext renamed = c.remapped({3, 0});
  EXPECT_EQ(renamed.base(3), 2U);
  EXPECT_TRUE(renamed.contains({0, 5}));
  EXPECT_FALSE(renamed.contains({1, 5}));
  DotContext merged;  // a replica known only through its cloud
  merged.merge(c.remapped({0, 7}));
  EXPECT_TRUE(merged.contains({7, 5}));
  EXPECT_FALSE(merged.contains({7, 4}));
}

TEST(DotContext, AssemblesFromAVersionVectorAndLooseDots) {
  const DotContext c = DotContext::assemble({2, 0}, {{1, 1}, {0, 1}, {0, 4}, {1, 2}, {2, 9}});
  EXPECT_EQ(c.base(0), 2U);
  EXPECT_EQ(c.base(1), 2U);  // 1:1 and 1:2 fold into the vector
  EXPECT_EQ(c.cloud(), (std::vector<Dot>{{0, 4}, {2, 9}}));
}

TEST(DotContext, IncludesAWideVersionVectorWithoutWalkingIt) {
  DotContext huge;
  huge.insert({0, 1});
  const DotContext wide = DotContext::assemble({std::uint64_t{1} << 62}, {});
  EXPECT_FALSE(huge.includes(wide));  // answers at once, whatever the width
  EXPECT_TRUE(wide.includes(huge));
}

}  // namespace
}  // namespace archipel::crdt
