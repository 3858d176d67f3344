// Resynchronisation after a partition, with the group protocol alone (sans-IO, in memory, no
// network): 3 sites share OBJECTS ConfigMaps; while all three are cut apart, EDITS edits are made
// to each object, spread over the sites; then the links heal. Measured: the bytes the sites send
// each other until they agree, against the size of the deltas each site was missing (each
// encoded alone), and the CPU time the protocol takes to converge. The network's part
// (latency, bandwidth) is for the emulated runs of issue #7.
//
// Usage: sharing_bench [--objects N] [--edits N] [--seed N]; prints one JSON line.

#include "archipel/crdt/codec.hpp"
#include "archipel/sharing/replica.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using namespace archipel;
using namespace archipel::sharing;
using Clock = std::chrono::steady_clock;

crdt::ListShape no_lists(std::string_view, std::string_view) {
  return {};
}

struct Site {
  std::string name;
  std::unique_ptr<GroupReplica> replica;
  std::map<ObjectKey, json::object> kube;
};

class Group {
 public:
  explicit Group(const std::vector<std::string>& names) {
    const GroupSpec spec{"namespace/bench", names};
    for (const std::string& n : names) {
      sites_.push_back({n, std::make_unique<GroupReplica>(n, spec, no_lists), {}});
    }
  }

  void connect_all() {
    for (Site& a : sites_) {
      for (const Site& b : sites_) {
        if (a.name != b.name) {
          a.replica->connected(b.name);
        }
      }
    }
    connected_ = true;
    for (Site& s : sites_) {
      settle(s);
    }
  }

  void cut_all() {
    for (Site& a : sites_) {
      for (const Site& b : sites_) {
        if (a.name != b.name) {
          a.replica->disconnected(b.name);
        }
      }
    }
    connected_ = false;
    queue_.clear();
  }

  void edit(std::size_t site, const ObjectKey& key, const json::object& next, std::uint64_t at) {
    Site& s = sites_[site];
    s.kube[key] = next;
    s.replica->local_change(key, next, crdt::Hlc::from(at, 0));
    settle(s);
  }

  // Flushes and delivers until nothing moves; returns the bytes sent meanwhile.
  std::size_t converge() {
    std::size_t bytes = 0;
    for (int round = 0; round < 100000; ++round) {
      for (Site& s : sites_) {
        s.replica->flush();
        settle(s);
      }
      if (queue_.empty()) {
        return bytes;
      }
      while (!queue_.empty()) {
        auto [from, to, message] = std::move(queue_.front());
        queue_.pop_front();
        bytes += message.size();
        (void)site(to).replica->receive(from,
                                        std::as_bytes(std::span(message.data(), message.size())));
        settle(site(to));
      }
    }
    return bytes;
  }

  Site& operator[](std::size_t i) { return sites_[i]; }
  std::size_t delta_bytes() const { return delta_bytes_; }
  std::size_t size() const { return sites_.size(); }

 private:
  Site& site(const std::string& name) {
    for (Site& s : sites_) {
      if (s.name == name) {
        return s;
      }
    }
    std::abort();
  }

  // The bridge: applies local writes (their echo comes back as a watch event).
  void settle(Site& s) {
    for (int i = 0; i < 100; ++i) {
      // Persisting is RocksDB's cost, not measured here; the outbox entries' deltas (each
      // encoded alone) are what the other sites will be missing.
      for (const Record& r : s.replica->take_records()) {
        if (r.value && r.key.starts_with("q/")) {
          delta_bytes_ += r.value->size() - r.value->find('\0') - 1;
        }
      }
      for (PeerMessage& m : s.replica->take_messages()) {
        if (connected_) {
          queue_.push_back({s.name, m.peer, std::move(m.bytes)});
        }
      }
      std::vector<LocalWrite> writes = s.replica->take_local_writes();
      if (writes.empty()) {
        return;
      }
      for (LocalWrite& w : writes) {
        if (w.object) {
          s.kube[w.key] = *w.object;
        } else {
          s.kube.erase(w.key);
        }
        s.replica->local_change(w.key, w.object, crdt::Hlc::from(++echo_, 0));
      }
    }
  }

  struct InFlight {
    std::string from;
    std::string to;
    std::string bytes;
  };
  std::vector<Site> sites_;
  std::deque<InFlight> queue_;
  bool connected_ = false;
  std::uint64_t echo_ = 1;
  std::size_t delta_bytes_ = 0;  // deltas made, each encoded alone
};

}  // namespace

int main(int argc, char** argv) {
  int objects = 1000, edits = 10;
  unsigned seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--objects") {
      objects = std::atoi(argv[i + 1]);
    } else if (flag == "--edits") {
      edits = std::atoi(argv[i + 1]);
    } else if (flag == "--seed") {
      seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::mt19937 rng(seed);
  Group group({"nantes", "paris", "rennes"});
  group.connect_all();
  std::uint64_t wall = 1'700'000'000'000;
  for (int o = 0; o < objects; ++o) {
    const std::string name = "cm-" + std::to_string(o);
    group.edit(static_cast<std::size_t>(o) % group.size(), "/configmaps/bench/" + name,
               json::object{{"apiVersion", "v1"},
                            {"kind", "ConfigMap"},
                            {"metadata", json::object{{"name", name}, {"namespace", "bench"}}},
                            {"data", json::object{{"k0", "init"}}}},
               ++wall);
  }
  group.converge();

  group.cut_all();
  const std::size_t before = group.delta_bytes();
  for (int o = 0; o < objects; ++o) {
    const ObjectKey key = "/configmaps/bench/cm-" + std::to_string(o);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, 2)(rng);
      json::object next = group[at].kube.at(key);
      next["data"].as_object()["k" + std::to_string(rng() % 8)] =
          "v" + std::to_string(rng() % 1000);
      group.edit(at, key, next, ++wall);
    }
  }
  // Each delta made while cut is missing at the two other sites.
  const std::size_t missing = 2 * (group.delta_bytes() - before);

  const Clock::time_point t0 = Clock::now();
  group.connect_all();
  const std::size_t sent = group.converge();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  bool converged = true;
  for (std::size_t s = 1; s < group.size(); ++s) {
    converged = converged && group[s].kube == group[0].kube;
  }
  std::printf(
      "{\"objects\":%d,\"edits_per_object\":%d,\"converged\":%s,\"bytes_sent\":%zu,"
      "\"bytes_missing\":%zu,\"sent_per_missing\":%.3f,\"cpu_seconds_to_converge\":%.3f}\n",
      objects, edits, converged ? "true" : "false", sent, missing,
      static_cast<double>(sent) / static_cast<double>(missing), seconds);
  return converged ? 0 : 1;
}
