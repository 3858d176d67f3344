// Properties of the object CRDT over random histories: 3 to 5 sites edit one Deployment
// (labels, annotations, replicas, containers with their env and ports, volumes, a field that
// changes type, deletes and re-creates) while deltas are delivered late, out of order,
// duplicated or dropped; then full-state anti-entropy.
// - every replica ends with the same state and materialises the same object;
// - join is commutative, associative and idempotent, on states and on delta groups;
// - applying every delta, in any order and repeated, equals merging the full states;
// - no half element: every container shown has its name and image, every variable its value;
// - forgetting a deleted object once every replica has seen its state (keeping only the
//   version vector to turn away late duplicates) never changes what is shown.

#include "crdt/history.hpp"

#include <gtest/gtest.h>

#include <random>

namespace archipel::crdt {
namespace {

namespace json = boost::json;
using namespace history;  // NOLINT(google-build-using-namespace)

Object joined(Object a, const Object& b) {
  a.join(b);
  return a;
}

class ObjectProperties : public ::testing::TestWithParam<unsigned> {};

TEST_P(ObjectProperties, ReplicasConvergeToTheSameObject) {
  const unsigned seed = GetParam();
  const History h = run_history(seed, 3 + seed % 3, 300, Delivery::kAnyOrder);
  for (const Replica& r : h.replicas) {
    EXPECT_EQ(r.state, h.replicas[0].state) << r.site;
    EXPECT_EQ(r.state.materialize(), h.replicas[0].state.materialize()) << r.site;
  }
  std::vector<std::string> lapses;  // out of causal order, only the end is whole
  check_whole(h.replicas[0].state, lapses);
  EXPECT_TRUE(lapses.empty()) << lapses.front();
}

TEST_P(ObjectProperties, NoHalfElementUnderCausalDelivery) {
  const unsigned seed = GetParam();
  const History h = run_history(seed, 3 + seed % 3, 300, Delivery::kCausal);
  EXPECT_TRUE(h.lapses.empty()) << h.lapses.front();
  for (const Replica& r : h.replicas) {
    EXPECT_EQ(r.state, h.replicas[0].state) << r.site;
  }
}

TEST_P(ObjectProperties, JoinIsCommutativeAssociativeAndIdempotent) {
  const History h = run_history(GetParam(), 3, 200);
  const Object& x = h.halfway[0];
  const Object& y = h.halfway[1];
  const Object& z = h.halfway[2];
  EXPECT_EQ(joined(x, y), joined(y, x));
  EXPECT_EQ(joined(joined(x, y), z), joined(x, joined(y, z)));
  EXPECT_TRUE(joined(x, x) == x) << "x:\n" << x << "x+x:\n" << joined(x, x);
  EXPECT_EQ(joined(joined(x, y), y), joined(x, y));

  // Delta groups too: deltas joined together, then into a state, equal one by one.
  Object group = h.deltas[10];
  for (std::size_t i = 11; i < 20; ++i) {
    group.join(h.deltas[i]);
  }
  Object one_by_one = x;
  for (std::size_t i = 10; i < 20; ++i) {
    one_by_one.join(h.deltas[i]);
  }
  EXPECT_EQ(joined(x, group), one_by_one);
  EXPECT_FALSE(group.complete());
}

TEST_P(ObjectProperties, ApplyingEveryDeltaEqualsMergingTheStates) {
  const unsigned seed = GetParam();
  const History h = run_history(seed, 4, 250);
  std::mt19937 rng(seed * 7 + 1);
  std::vector<const Object*> order;
  for (const Object& d : h.deltas) {
    order.push_back(&d);
    order.push_back(&d);  // each twice
  }
  std::shuffle(order.begin(), order.end(), rng);
  Object observer(h.replicas[0].state.sites());
  for (const Object* d : order) {
    observer.join(*d);
  }
  EXPECT_EQ(observer, h.replicas[0].state);
  EXPECT_EQ(observer.materialize(), h.replicas[0].state.materialize());
}

TEST_P(ObjectProperties, ForgettingADeletedObjectChangesNothingShown) {
  std::mt19937 rng(GetParam());
  Editor editor(rng);
  const std::vector<std::string> table = {"nantes", "paris", "rennes"};
  std::vector<Object> sites(3, Object(table));
  // The collector: like site 0, but forgets the object whenever it may, keeping only the
  // version vector to turn away deltas it had already seen.
  Object collector(table);
  DotContext remembered;
  int forgotten = 0;
  std::uint64_t wall = 1000;
  for (int step = 0; step < 300; ++step) {
    const std::size_t at = editor.pick(2);
    const std::optional<json::object> shown = sites[at].materialize();
    Object delta;
    if (shown && editor.pick(5) == 0) {
      delta = sites[at].erase(table[at]);
    } else {
      const json::object next = shown ? editor.edit(*shown) : editor.create();
      delta = sites[at].update(shown ? &*shown : nullptr, next, table[at], Hlc::from(++wall, 0),
                               deployment_shape);
    }
    // Everyone receives it, sometimes twice.
    for (std::size_t i = 0; i < 3; ++i) {
      if (i != at) {
        sites[i].join(delta);
      }
    }
    for (int copy = editor.pick(1); copy >= 0; --copy) {
      if (!remembered.includes(delta.context())) {
        collector.join(delta);
      }
    }
    const std::vector<DotContext> contexts = {sites[0].context(), sites[1].context(),
                                              sites[2].context()};
    if (collector.forgettable(contexts)) {
      remembered.merge(collector.context());
      collector = Object(table);
      ++forgotten;
    }
    ASSERT_EQ(collector.materialize(), sites[0].materialize()) << "step " << step;
  }
  EXPECT_GT(forgotten, 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ObjectProperties, ::testing::Range(1U, 61U));

}  // namespace
}  // namespace archipel::crdt
