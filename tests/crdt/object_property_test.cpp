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

#include "archipel/crdt/object.hpp"

#include "archipel/kube/schema.hpp"
#include "crdt/object_print.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <random>
#include <sstream>

namespace archipel::crdt {
namespace {

namespace json = boost::json;

ListShape deployment_shape(std::string_view path) {
  const kube::ListStrategy s = kube::list_strategy("Deployment", path);
  switch (s.kind) {
    case kube::ListStrategy::Kind::kMap: return ListShape{ListShape::Kind::kMap, s.keys};
    case kube::ListStrategy::Kind::kSet: return ListShape{ListShape::Kind::kSet, {}};
    case kube::ListStrategy::Kind::kAtomic: break;
  }
  return ListShape{};
}

// Random edits of a Deployment, as a user or controller would make them at one site.
class Editor {
 public:
  explicit Editor(std::mt19937& rng) : rng_(rng) {}

  json::object create() {
    json::object d = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}})")
                         .as_object();
    for (int i = pick(3); i >= 0; --i) {
      add_container(d);
    }
    return d;
  }

  json::object edit(json::object d) {
    switch (pick(11)) {
      case 0: labels(d)[key("l", 4)] = value(); break;
      case 1: labels(d).erase(key("l", 4)); break;
      case 2: annotations(d)[key("a", 3)] = value(); break;
      case 3: spec(d)["replicas"] = pick(5); break;
      case 4: add_container(d); break;
      case 5:
        if (!containers(d).empty()) {
          containers(d).erase(containers(d).begin() + pick(containers(d).size() - 1));
        }
        break;
      case 6:
        if (!containers(d).empty()) {
          containers(d)[pick(containers(d).size() - 1)].as_object()["image"] = value();
        }
        break;
      case 7:
        if (!containers(d).empty()) {
          edit_env(containers(d)[pick(containers(d).size() - 1)].as_object());
        }
        break;
      case 8:
        if (containers(d).size() > 1) {
          std::swap(containers(d)[0], containers(d)[containers(d).size() - 1]);
        }
        break;
      case 9: {  // a field that is an object at one time, a number at another
        json::value& extra = spec(d)["extra"];
        extra = pick(1) == 0 ? json::value(pick(9)) : json::value(json::object{{"k", value()}});
        break;
      }
      default: {
        json::array& volumes = pod(d)["volumes"].emplace_array();
        if (pick(1) == 0) {
          volumes.push_back(json::object{{"name", key("v", 2)}, {"emptyDir", json::object()}});
        }
        break;
      }
    }
    return d;
  }

  int pick(std::size_t max) { return std::uniform_int_distribution<int>(0, int(max))(rng_); }

 private:
  std::string key(std::string_view prefix, int n) {
    return std::string(prefix) + std::to_string(pick(n));
  }
  std::string value() { return "v" + std::to_string(pick(1000)); }

  static json::object& meta(json::object& d) { return d["metadata"].as_object(); }
  static json::object& labels(json::object& d) {
    json::value& v = meta(d)["labels"];
    return v.is_object() ? v.as_object() : v.emplace_object();
  }
  static json::object& annotations(json::object& d) {
    json::value& v = meta(d)["annotations"];
    return v.is_object() ? v.as_object() : v.emplace_object();
  }
  static json::object& spec(json::object& d) {
    json::value& v = d["spec"];
    return v.is_object() ? v.as_object() : v.emplace_object();
  }
  static json::object& pod(json::object& d) {
    json::value& t = spec(d)["template"];
    json::object& tmpl = t.is_object() ? t.as_object() : t.emplace_object();
    json::value& s = tmpl["spec"];
    return s.is_object() ? s.as_object() : s.emplace_object();
  }
  static json::array& containers(json::object& d) {
    json::value& v = pod(d)["containers"];
    return v.is_array() ? v.as_array() : v.emplace_array();
  }

  void add_container(json::object& d) {
    const std::string name = key("c", 3);
    for (const json::value& c : containers(d)) {
      if (c.at("name") == name.c_str()) {
        return;
      }
    }
    json::object c{{"name", name}, {"image", value()}};
    if (pick(1) == 0) {
      c["ports"] = json::array{json::object{{"containerPort", 80 + pick(1)}, {"protocol", "TCP"}}};
    }
    containers(d).push_back(std::move(c));
  }

  void edit_env(json::object& container) {
    json::value& v = container["env"];
    json::array& env = v.is_array() ? v.as_array() : v.emplace_array();
    const std::string name = key("E", 2);
    for (auto it = env.begin(); it != env.end(); ++it) {
      if (it->at("name") == name.c_str()) {
        if (pick(1) == 0) {
          env.erase(it);
        } else {
          it->as_object()["value"] = value();
        }
        return;
      }
    }
    env.push_back(json::object{{"name", name}, {"value", value()}});
  }

  std::mt19937& rng_;
};

const std::vector<std::string> kSites = {"lille", "nantes", "paris", "rennes", "lyon"};

struct Replica {
  std::string site;
  Object state;
  std::uint64_t wall = 1000;
};

struct Message {
  std::size_t to;
  Object delta;
  DotContext past;  // what its writer had seen before writing it
};

enum class Delivery {
  kAnyOrder,  // deltas arrive in any order, some twice, some never
  kCausal,    // the same, but a delta waits until its receiver has seen what its writer had
};

// One random history and what it left.
struct History {
  std::vector<Replica> replicas;
  std::vector<Object> deltas;       // every delta made, in order
  std::vector<Object> halfway;      // the replicas' states in the middle of the history
  std::vector<std::string> lapses;  // invariant violations seen on the way
};

void check_whole(const Object& state, std::vector<std::string>& lapses) {
  const std::optional<json::object> shown = state.materialize();
  if (!shown) {
    return;
  }
  std::ostringstream dump;
  dump << "\nin " << state;
  const std::string text = json::serialize(*shown);
  if (!shown->contains("kind") || !shown->contains("apiVersion")) {
    lapses.push_back("object without its kind: " + text + dump.str());
  }
  const json::value* containers = nullptr;
  if (const json::value* spec = shown->if_contains("spec")) {
    if (const json::value* tmpl = spec->as_object().if_contains("template")) {
      if (const json::value* pod = tmpl->as_object().if_contains("spec")) {
        containers = pod->as_object().if_contains("containers");
      }
    }
  }
  if (containers == nullptr || !containers->is_array()) {
    return;
  }
  for (const json::value& c : containers->as_array()) {
    if (!c.as_object().contains("name") || !c.as_object().contains("image")) {
      lapses.push_back("half container: " + text + dump.str());
    }
    if (const json::value* env = c.as_object().if_contains("env")) {
      for (const json::value& e : env->as_array()) {
        if (!e.as_object().contains("name") || !e.as_object().contains("value")) {
          lapses.push_back("half variable: " + text + dump.str());
        }
      }
    }
  }
}

History run_history(unsigned seed, std::size_t sites, int steps,
                    Delivery delivery = Delivery::kAnyOrder) {
  std::mt19937 rng(seed);
  Editor editor(rng);
  History h;
  const std::vector<std::string> table(kSites.begin(), kSites.begin() + sites);
  for (std::size_t i = 0; i < sites; ++i) {
    h.replicas.push_back({table[i], Object(table), 1000 + 7 * i});
  }
  std::vector<Message> in_flight;
  auto deliverable = [&](const Message& m) {
    return delivery == Delivery::kAnyOrder || h.replicas[m.to].state.context().includes(m.past);
  };
  for (int step = 0; step < steps; ++step) {
    if (step == steps / 2) {
      for (const Replica& r : h.replicas) {
        h.halfway.push_back(r.state);
      }
    }
    std::vector<std::size_t> ready;
    for (std::size_t i = 0; i < in_flight.size(); ++i) {
      if (deliverable(in_flight[i])) {
        ready.push_back(i);
      }
    }
    const int action = editor.pick(19);
    if (action == 0) {  // anti-entropy between two sites: a full state
      Replica& to = h.replicas[editor.pick(sites - 1)];
      to.state.join(h.replicas[editor.pick(sites - 1)].state);
      check_whole(to.state, h.lapses);
    } else if (action < 12 || ready.empty()) {
      Replica& r = h.replicas[editor.pick(sites - 1)];
      r.wall += 1 + editor.pick(3);
      const std::optional<json::object> shown = r.state.materialize();
      DotContext past = r.state.context();
      Object delta;
      if (shown && editor.pick(30) == 0) {
        delta = r.state.erase(r.site);
      } else {
        const json::object next = shown ? editor.edit(*shown) : editor.create();
        delta = r.state.update(shown ? &*shown : nullptr, next, r.site, Hlc::from(r.wall, 0),
                               deployment_shape);
      }
      check_whole(r.state, h.lapses);
      for (std::size_t to = 0; to < sites; ++to) {
        if (&h.replicas[to] != &r && editor.pick(9) != 0) {  // one in ten is lost
          in_flight.push_back({to, delta, past});
        }
      }
      h.deltas.push_back(std::move(delta));
    } else {
      const std::size_t i = ready[editor.pick(ready.size() - 1)];
      Replica& r = h.replicas[in_flight[i].to];
      r.state.join(in_flight[i].delta);
      check_whole(r.state, h.lapses);
      if (editor.pick(4) != 0) {  // else delivered again later
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  // Anti-entropy: full states, around the ring twice.
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < sites; ++i) {
      h.replicas[(i + 1) % sites].state.join(h.replicas[i].state);
    }
  }
  return h;
}

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
