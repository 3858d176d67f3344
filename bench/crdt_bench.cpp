// The object CRDT on a trace of field edits made at two replicas to ConfigMaps and
// Deployments, as bench/crdt_bench.sh runs it side by side with Automerge
// (bench/automerge/bench.mjs reads the same trace).
//
// Both replicas start from the same objects (created at replica 0, synced). The trace is cut in
// rounds; during a round each replica edits objects on its own (concurrent edits, conflicts
// included); at the end of a round each replica sends one message holding, per object it
// changed, the round's delta group, and the other merges them. Measured:
//   local   ops/s producing the deltas: Object::update (prev -> new object) + joining the delta
//           into the round's group;
//   merge   ops/s joining the received groups into the other replica's states (decode apart);
//   decode+merge  the same with decoding the bytes;
//   wire    bytes sent per field operation;
//   state   bytes of a full encoded state per field the objects hold at the end.
//
// Usage: crdt_bench [--objects N] [--ops N] [--round N] [--seed N] [--trace FILE]
// Prints one JSON line of figures; --trace writes the trace (JSON lines) for the Automerge run.

#include "archipel/crdt/codec.hpp"
#include "archipel/crdt/object.hpp"
#include "archipel/sharing/schema.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using namespace archipel::crdt;
using Clock = std::chrono::steady_clock;

struct Options {
  int objects = 100;
  int ops = 100000;
  int round = 1000;
  unsigned seed = 1;
  std::string trace;
};

// One field edit: set (or erase) the field at `path` of object `object`, at replica `replica`.
// A path step {"name": X} names a list element by its merge key (created when missing).
struct Op {
  int replica = 0;
  int object = 0;
  bool erase = false;
  json::array path;
  json::value value;
};

bool is_config_map(int object) {
  return object % 2 == 0;
}

json::object initial(int object) {
  const std::string name = (is_config_map(object) ? "cm-" : "dep-") + std::to_string(object);
  if (is_config_map(object)) {
    json::object data;
    for (int k = 0; k < 10; ++k) {
      data["k" + std::to_string(k)] = "init";
    }
    return json::object{{"apiVersion", "v1"},
                        {"kind", "ConfigMap"},
                        {"metadata", json::object{{"name", name},
                                                  {"namespace", "bench"},
                                                  {"labels", json::object{{"app", name}}}}},
                        {"data", std::move(data)}};
  }
  json::array containers;
  for (int c = 0; c < 3; ++c) {
    json::array env;
    for (int e = 0; e < 3; ++e) {
      env.push_back(json::object{{"name", "E" + std::to_string(e)}, {"value", "init"}});
    }
    containers.push_back(json::object{
        {"name", "c" + std::to_string(c)}, {"image", "registry/app:1"}, {"env", std::move(env)}});
  }
  return json::object{
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata",
       json::object{
           {"name", name}, {"namespace", "bench"}, {"labels", json::object{{"app", name}}}}},
      {"spec",
       json::object{
           {"replicas", 1},
           {"selector", json::object{{"matchLabels", json::object{{"app", name}}}}},
           {"template",
            json::object{{"metadata", json::object{{"labels", json::object{{"app", name}}}}},
                         {"spec", json::object{{"containers", std::move(containers)}}}}}}}};
}

std::vector<Op> make_trace(const Options& o) {
  std::mt19937 rng(o.seed);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto value = [&] { return json::value("v" + std::to_string(pick(100000))); };
  std::vector<Op> trace;
  trace.reserve(static_cast<std::size_t>(o.ops));
  for (int i = 0; i < o.ops; ++i) {
    Op op;
    op.replica = pick(2);
    op.object = pick(o.objects);
    const int kind = pick(10);
    if (kind == 0) {
      op.path = {"metadata", "labels", "l" + std::to_string(pick(5))};
      op.value = value();
    } else if (is_config_map(op.object)) {
      op.path = {"data", "k" + std::to_string(pick(20))};
      op.erase = kind == 1;
      op.value = value();
    } else if (kind <= 2) {
      op.path = {"spec", "replicas"};
      op.value = pick(10);
    } else {
      const json::object container{{"name", "c" + std::to_string(pick(3))}};
      if (kind <= 5) {
        op.path = {"spec", "template", "spec", "containers", container, "image"};
      } else {
        op.path = {"spec",
                   "template",
                   "spec",
                   "containers",
                   container,
                   "env",
                   json::object{{"name", "E" + std::to_string(pick(6))}},
                   "value"};
      }
      op.value = value();
    }
    trace.push_back(std::move(op));
  }
  return trace;
}

// Applies `op` to an object as a Kubernetes user would: set or remove one field.
void apply(const Op& op, json::object& object) {
  json::value* at = nullptr;
  json::object* parent = &object;
  for (std::size_t i = 0; i + 1 < op.path.size(); ++i) {
    const json::value& step = op.path[i];
    if (step.is_string()) {
      at = &(*parent)[step.as_string()];
      const bool list_next = op.path[i + 1].is_object();
      if (list_next && !at->is_array()) {
        *at = json::array();
      } else if (!list_next && !at->is_object()) {
        *at = json::object();
      }
    } else {  // a list element by name
      json::array& list = at->as_array();
      const json::value& name = step.as_object().at("name");
      json::value* found = nullptr;
      for (json::value& e : list) {
        if (e.as_object().at("name") == name) {
          found = &e;
        }
      }
      if (found == nullptr) {
        list.push_back(json::object{{"name", name}});
        found = &list.back();
      }
      at = found;
    }
    if (at->is_object()) {
      parent = &at->as_object();
    }
  }
  const json::string& last = op.path.back().as_string();
  if (op.erase) {
    parent->erase(last);
  } else {
    (*parent)[last] = op.value;
  }
}

std::size_t leaf_fields(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    std::size_t n = 0;
    for (const auto& [k, child] : *o) {
      n += leaf_fields(child);
    }
    return n;
  }
  if (const json::array* a = v.if_array()) {
    std::size_t n = 0;
    for (const json::value& child : *a) {
      n += leaf_fields(child);
    }
    return n;
  }
  return 1;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Replica {
  std::string site;
  std::vector<Object> states;
  std::vector<json::object> shown;           // what the site's Kubernetes holds
  std::vector<std::optional<Object>> round;  // this round's delta group per object
  std::uint64_t wall = 1'700'000'000'000;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* v = argv[i + 1];
    if (flag == "--objects") {
      o.objects = std::atoi(v);
    } else if (flag == "--ops") {
      o.ops = std::atoi(v);
    } else if (flag == "--round") {
      o.round = std::atoi(v);
    } else if (flag == "--seed") {
      o.seed = static_cast<unsigned>(std::atoi(v));
    } else if (flag == "--trace") {
      o.trace = v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (o.objects < 1 || o.ops < 1 || o.round < 1) {
    std::fprintf(stderr, "--objects, --ops and --round must be positive\n");
    return 2;
  }
  const std::vector<Op> trace = make_trace(o);
  if (!o.trace.empty()) {
    std::ofstream out(o.trace);
    out << json::serialize(json::object{{"objects", o.objects}, {"round", o.round}}) << '\n';
    for (int i = 0; i < o.objects; ++i) {
      out << json::serialize(initial(i)) << '\n';
    }
    for (const Op& op : trace) {
      json::object line{{"r", op.replica}, {"o", op.object}, {"p", op.path}};
      if (op.erase) {
        line["erase"] = true;
      } else {
        line["v"] = op.value;
      }
      out << json::serialize(line) << '\n';
    }
  }

  const std::vector<std::string> sites = {"nantes", "paris"};
  std::vector<Schema> schemas;
  for (int i = 0; i < o.objects; ++i) {
    const std::string_view kind = is_config_map(i) ? "ConfigMap" : "Deployment";
    schemas.emplace_back(
        [kind](std::string_view path) { return archipel::sharing::kube_list_shape(kind, path); });
  }
  std::vector<Replica> replicas(2);
  for (std::size_t r = 0; r < 2; ++r) {
    replicas[r].site = sites[r];
    replicas[r].states.assign(static_cast<std::size_t>(o.objects), Object(sites));
    replicas[r].round.resize(static_cast<std::size_t>(o.objects));
  }
  // Created at replica 0, synced to replica 1 (not measured).
  for (int i = 0; i < o.objects; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const Object created =
        replicas[0].states[u].update(nullptr, initial(i), sites[0], Hlc::from(1, 0), schemas[u]);
    replicas[1].states[u].join(created);
    for (Replica& r : replicas) {
      r.shown.push_back(*r.states[u].materialize());
    }
  }

  Clock::duration local{}, merge{}, decode_time{}, encode_time{};
  std::size_t wire_bytes = 0, messages = 0;
  std::size_t done = 0;
  while (done < trace.size()) {
    const std::size_t end = std::min(trace.size(), done + static_cast<std::size_t>(o.round));
    for (; done < end; ++done) {
      const Op& op = trace[done];
      Replica& r = replicas[static_cast<std::size_t>(op.replica)];
      const auto u = static_cast<std::size_t>(op.object);
      json::object next = r.shown[u];
      apply(op, next);
      r.wall += 1;
      const Clock::time_point t0 = Clock::now();
      Object delta =
          r.states[u].update(&r.shown[u], next, r.site, Hlc::from(r.wall, 0), schemas[u]);
      if (r.round[u]) {
        r.round[u]->join(delta);
      } else {
        r.round[u] = std::move(delta);
      }
      local += Clock::now() - t0;
      r.shown[u] = std::move(next);
    }
    // End of the round: each replica sends its groups in one message; the other merges them.
    for (std::size_t from = 0; from < 2; ++from) {
      Replica& to = replicas[1 - from];
      std::vector<Outgoing> out;
      std::vector<std::string> keys;
      keys.reserve(replicas[from].round.size());
      for (std::size_t u = 0; u < replicas[from].round.size(); ++u) {
        if (replicas[from].round[u]) {
          keys.push_back(std::to_string(u));
          out.push_back({keys.back(), *replicas[from].round[u]});
        }
      }
      if (out.empty()) {
        continue;
      }
      const Clock::time_point t0 = Clock::now();
      const std::string bytes = encode(out);
      const Clock::time_point t1 = Clock::now();
      auto received = decode_all(std::as_bytes(std::span(bytes.data(), bytes.size())));
      const Clock::time_point t2 = Clock::now();
      if (!received) {
        std::fprintf(stderr, "decode: %s\n", received.error().message.c_str());
        return 1;
      }
      for (const Received& r : *received) {
        to.states[std::stoul(r.key)].join(r.object);
      }
      const Clock::time_point t3 = Clock::now();
      encode_time += t1 - t0;
      decode_time += t2 - t1;
      merge += t3 - t2;
      wire_bytes += bytes.size();
      ++messages;
      for (std::optional<Object>& group : replicas[from].round) {
        group.reset();
      }
    }
    for (Replica& r : replicas) {  // the bridge writes merged objects back (not measured)
      for (std::size_t u = 0; u < r.states.size(); ++u) {
        r.shown[u] = *r.states[u].materialize();
      }
    }
  }

  std::size_t state_bytes = 0, fields = 0;
  bool converged = true;
  for (std::size_t u = 0; u < replicas[0].states.size(); ++u) {
    converged = converged && replicas[0].shown[u] == replicas[1].shown[u];
    state_bytes += encode(replicas[0].states[u]).size();
    fields += leaf_fields(replicas[0].shown[u]);
  }
  const double ops = static_cast<double>(trace.size());
  std::printf(
      "{\"impl\":\"archipel\",\"ops\":%zu,\"objects\":%d,\"round\":%d,\"converged\":%s,"
      "\"local_ops_per_s\":%.0f,\"merge_ops_per_s\":%.0f,\"decode_merge_ops_per_s\":%.0f,"
      "\"encode_ops_per_s\":%.0f,\"wire_bytes_per_op\":%.2f,\"messages\":%zu,"
      "\"state_bytes_per_field\":%.2f,\"fields\":%zu}\n",
      trace.size(), o.objects, o.round, converged ? "true" : "false", ops / seconds(local),
      ops / seconds(merge), ops / seconds(merge + decode_time), ops / seconds(encode_time),
      static_cast<double>(wire_bytes) / ops, messages,
      static_cast<double>(state_bytes) / static_cast<double>(fields), fields);
  return converged ? 0 : 1;
}
