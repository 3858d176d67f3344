#pragma once

// Random histories of one shared Deployment for the object CRDT's tests and benchmarks: sites
// edit it (labels, annotations, replicas, containers with their env and ports, volumes, a field
// that changes type, deletes and re-creates) while deltas are delivered late, out of order,
// duplicated or dropped, with anti-entropy now and then and at the end.

#include "archipel/crdt/object.hpp"

#include "archipel/sharing/schema.hpp"
#include "crdt/object_print.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace archipel::crdt::history {

namespace json = boost::json;

inline ListShape deployment_shape(std::string_view path) {
  return sharing::kube_list_shape("Deployment", path);
}

// Random edits of a Deployment, as a user or controller would make them at one site.
class Editor {
 public:
  explicit Editor(std::mt19937& rng) : rng_(rng) {}

  json::object create() {
    json::object d = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": []}}}})")
                         .as_object();
    for (int i = pick(3); i >= 0; --i) {
      add_container(d);  // at least one
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
        if (containers(d).size() > 1) {  // a Deployment needs a container
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

inline const std::vector<std::string> kSites = {"lille", "nantes", "paris", "rennes", "lyon"};

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

inline void check_whole(const Object& state, std::vector<std::string>& lapses) {
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

inline History run_history(unsigned seed, std::size_t sites, int steps,
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

}  // namespace archipel::crdt::history
