// Sharing over emulated WAN links, the whole path: three sites in one process, each with its
// embedded cluster served over HTTP, its peer channel, its sharing service and bridge; every
// peer connection goes through a link emulator adding RTT/2 each way (issue #7's benchmark).
//
// 1. paris creates OBJECTS ConfigMaps in namespace bench and shares the namespace with nantes
//    and rennes; everyone gets them.
// 2. Every link is cut. EDITS edits are made to each object, spread over the three sites (a PUT
//    of a new key to the site's cluster, as kubectl would), and the sites take them in.
// 3. The links heal. Measured: for each object, the time from the heal until the three
//    clusters hold the same data for it with every edit in (seen by a watch on each cluster);
//    and the bytes the sites sent each other until every outbox is empty.
// 4. Steady state: one edit at paris, the time until nantes's cluster shows it (polled every
//    millisecond), SAMPLES times.
//
// Usage: sharing_net_bench [--objects N] [--edits N] [--rtt-ms N] [--samples N] [--trace];
// prints one JSON line (reconnected_ms: from the heal until every peer connection is back).
// --trace prints the catch-up's timeline to stderr every 100 ms.

#include "archipel/base/ports.hpp"
#include "archipel/cluster/api.hpp"
#include "archipel/cluster/api_server.hpp"
#include "archipel/cluster/store.hpp"
#include "archipel/netem/link_emulator.hpp"
#include "archipel/peer/identity.hpp"
#include "archipel/peer/peer_node.hpp"
#include "archipel/proxy/kube_client.hpp"
#include "archipel/sharing/schema.hpp"
#include "archipel/sharing/site_sharing.hpp"
#include "archipel/sharing/store.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

namespace {

namespace json = boost::json;
namespace asio = boost::asio;
using namespace archipel;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kConfigMaps = "/api/v1/namespaces/bench/configmaps";

template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> a) {
  std::promise<T> p;
  auto f = p.get_future();
  asio::co_spawn(io, std::move(a), [&p](std::exception_ptr e, T v) {
    if (e) {
      p.set_exception(e);
    } else {
      p.set_value(std::move(v));
    }
  });
  return f.get();
}

void fail(const std::string& what) {
  std::fprintf(stderr, "sharing_net_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Site {
  std::string name;
  peer::Identity id;
  std::uint16_t peer_port = 0;
  std::filesystem::path dir;
  std::unique_ptr<cluster::ObjectStore> objects;
  std::unique_ptr<cluster::KubeApi> api;
  std::unique_ptr<cluster::ApiServer> server;
  std::shared_ptr<sharing::KubeClient> kube;
  std::unique_ptr<peer::PeerNode> node;
  std::unique_ptr<sharing::RecordStore> records;
  std::unique_ptr<sharing::SiteSharing> sharing;
  std::map<std::string, json::object> latest;  // the objects as its cluster last returned them
};

sharing::KubeClient::Reply call(asio::io_context& io, Site& s, std::string method,
                                std::string target, std::string body = {}) {
  auto r = run_on(io, s.kube->request(std::move(method), std::move(target), std::move(body)));
  if (!r) {
    fail(s.name + ": " + r.error());
  }
  return *r;
}

// name → data, as the site's cluster holds them.
std::map<std::string, json::object> data_at(asio::io_context& io, Site& s) {
  const auto r = call(io, s, "GET", kConfigMaps);
  std::map<std::string, json::object> out;
  const json::value list = json::parse(r.body);
  for (const json::value& item : list.at("items").as_array()) {
    const json::value* data = item.as_object().if_contains("data");
    out[std::string(item.at("metadata").at("name").as_string())] =
        data != nullptr && data->is_object() ? data->as_object() : json::object();
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::uint64_t bytes_sent(const std::vector<std::unique_ptr<Site>>& sites) {
  std::uint64_t total = 0;
  for (const auto& s : sites) {
    for (const auto& t : s->sharing->service().traffic()) {
      total += t.bytes_sent;
    }
  }
  return total;
}

// One line of the catch-up's timeline: per site, what it received (bytes/messages), wrote to
// its cluster, saw in its watches, and still has to have acknowledged.
void print_trace(const std::vector<std::unique_ptr<Site>>& sites, Clock::duration since_heal) {
  std::string line =
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(since_heal).count()) +
      " ms";
  for (const auto& s : sites) {
    std::uint64_t bytes = 0;
    std::uint64_t messages = 0;
    for (const auto& t : s->sharing->service().traffic()) {
      bytes += t.bytes_received;
      messages += t.messages_received;
    }
    std::uint64_t outbox = 0;
    for (const auto& g : s->sharing->service().status()) {
      outbox += g.outbox;
    }
    const auto& counters = s->sharing->bridge().counters();
    line += " | " + s->name + " received " + std::to_string(bytes) + " B/" +
            std::to_string(messages) + " writes " + std::to_string(counters.writes.load()) +
            " events " + std::to_string(counters.events.load()) + " outbox " +
            std::to_string(outbox);
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int objects = 1000;
  int edits = 10;
  int rtt_ms = 50;
  int samples = 50;
  bool trace = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--trace") {
      trace = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      fail("a value is missing after " + flag);
    }
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--objects") {
      objects = value;
    } else if (flag == "--edits") {
      edits = value;
    } else if (flag == "--rtt-ms") {
      rtt_ms = value;
    } else if (flag == "--samples") {
      samples = value;
    } else {
      fail("unknown flag " + flag);
    }
  }
  spdlog::set_level(spdlog::level::warn);

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }

  const std::vector<std::string> names{"paris", "nantes", "rennes"};
  std::vector<std::unique_ptr<Site>> sites;
  const auto base = std::filesystem::temp_directory_path() /
                    ("archipel-sharing-net-bench-" + std::to_string(std::random_device{}()));
  for (const std::string& n : names) {
    auto s = std::make_unique<Site>();
    s->name = n;
    s->id = peer::Identity::generate(n);
    auto port = archipel::base::free_loopback_port();
    if (!port) {
      fail("no free port: " + port.error());
    }
    s->peer_port = *port;
    s->dir = base / n;
    sites.push_back(std::move(s));
  }
  // One emulator per direction: a dials b through link a-b.
  std::map<std::pair<int, int>, std::unique_ptr<netem::LinkEmulator>> links;
  netem::LinkProfile lo;
  lo.latency = std::chrono::microseconds(rtt_ms * 1000 / 2);
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      if (a != b) {
        auto l = netem::LinkEmulator::start(io, "127.0.0.1", sites[b]->peer_port, lo);
        if (!l) {
          fail(l.error());
        }
        links[{a, b}] = std::move(*l);
      }
    }
  }
  for (int a = 0; a < 3; ++a) {
    Site& s = *sites[a];
    auto objects_store = cluster::ObjectStore::open(s.dir / "cluster");
    if (!objects_store) {
      fail(objects_store.error());
    }
    s.objects = std::move(*objects_store);
    s.api = std::make_unique<cluster::KubeApi>(*s.objects, cluster::KubeApi::Options{});
    auto server = cluster::ApiServer::start(io, *s.api, {});
    if (!server) {
      fail(server.error());
    }
    s.server = std::move(*server);
    auto upstream =
        proxy::Upstream::create(io, {"http://127.0.0.1:" + std::to_string(s.server->port())});
    if (!upstream) {
      fail(upstream.error());
    }
    s.kube = proxy::kube_client(std::shared_ptr<proxy::Upstream>(std::move(*upstream)));
    peer::PeerNode::Options po;
    po.identity = s.id;
    po.port = s.peer_port;
    for (int b = 0; b < 3; ++b) {
      if (b != a) {
        po.peers.push_back(
            {sites[b]->name, "127.0.0.1", links[{a, b}]->port(), sites[b]->id.public_key});
      }
    }
    auto node = peer::PeerNode::start(io, po);
    if (!node) {
      fail(node.error());
    }
    s.node = std::move(*node);
    auto records = sharing::RecordStore::open(s.dir / "sharing");
    if (!records) {
      fail(records.error());
    }
    s.records = std::move(*records);
    sharing::SharingService::Options so;
    so.site = s.name;
    s.sharing = sharing::SiteSharing::start(io, *s.node, *s.records, s.kube,
                                            sharing::kube_list_shape, so, {});
  }
  auto all_connected = [&](bool want) {
    for (const auto& s : sites) {
      for (const peer::PeerStatus& p : s->node->status()) {
        if (p.connected != want) {
          return false;
        }
      }
    }
    return true;
  };
  auto wait_until = [](const std::function<bool()>& done, std::chrono::seconds limit,
                       const char* what) {
    const auto end = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > end) {
        fail(std::string("timed out: ") + what);
      }
      std::this_thread::sleep_for(20ms);
    }
  };
  wait_until([&] { return all_connected(true); }, 20s, "sites connecting");

  // 1. paris's objects, shared with the others.
  Site& paris = *sites[0];
  call(io, paris, "POST", "/api/v1/namespaces",
       R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}})");
  for (int i = 0; i < objects; ++i) {
    json::object cm{{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata", json::object{{"name", "cm-" + std::to_string(i)}}},
                    {"data", json::object{{"origin", "paris"}}}};
    if (call(io, paris, "POST", kConfigMaps, json::serialize(cm)).status != 201) {
      fail("creating the objects");
    }
  }
  paris.sharing->service().share("namespace/bench", {"nantes", "rennes"});
  wait_until(
      [&] {
        return data_at(io, *sites[1]).size() == static_cast<std::size_t>(objects) &&
               data_at(io, *sites[2]).size() == static_cast<std::size_t>(objects);
      },
      120s, "the initial copies");

  // 2. Cut apart, the sites edit.
  for (auto& [pair, l] : links) {
    l->cut();
  }
  wait_until([&] { return all_connected(false); }, 20s, "the cut");
  std::vector<std::uint64_t> outbox_before(3);
  for (int a = 0; a < 3; ++a) {
    for (const auto& g : sites[a]->sharing->service().status()) {
      outbox_before[a] += g.outbox;
    }
    const auto r = call(io, *sites[a], "GET", kConfigMaps);
    if (r.status != 200) {
      fail("listing at " + sites[a]->name + ": " + std::to_string(r.status) + " " + r.body);
    }
    const json::value list = json::parse(r.body);
    for (const json::value& item : list.at("items").as_array()) {
      json::object o = item.as_object();
      o["apiVersion"] = "v1";
      o["kind"] = "ConfigMap";
      sites[a]->latest[std::string(o.at("metadata").at("name").as_string())] = std::move(o);
    }
  }
  std::vector<std::uint64_t> made(3);
  for (int j = 0; j < edits; ++j) {
    for (int i = 0; i < objects; ++i) {
      const int a = (i + j) % 3;
      Site& s = *sites[a];
      const std::string name = "cm-" + std::to_string(i);
      json::object& o = s.latest.at(name);
      o["data"].as_object()["edit-" + std::to_string(j)] = s.name;
      const auto r = call(io, s, "PUT", std::string(kConfigMaps) + "/" + name, json::serialize(o));
      if (r.status != 200) {
        fail("an edit: " + std::to_string(r.status) + " " + r.body);
      }
      o = json::parse(r.body).as_object();
      o["apiVersion"] = "v1";
      o["kind"] = "ConfigMap";
      ++made[a];
    }
  }
  wait_until(
      [&] {
        for (int a = 0; a < 3; ++a) {
          std::uint64_t outbox = 0;
          for (const auto& g : sites[a]->sharing->service().status()) {
            outbox += g.outbox;
          }
          if (outbox < outbox_before[a] + made[a]) {
            return false;
          }
        }
        return true;
      },
      120s, "the sites taking their edits in");

  // 3. Heal; per object, the time until the three clusters agree with every edit in, from a
  // watch on each cluster (polling lists of every object would load the machine it measures).
  std::mutex seen_mutex;
  std::map<std::string, std::array<json::object, 3>> seen;  // object → its data at each site
  std::map<std::string, double> converged;                  // object → ms after the heal
  std::atomic<bool> watching{true};
  std::optional<Clock::time_point> healed;
  for (int a = 0; a < 3; ++a) {
    const std::string rv = std::string(json::parse(call(io, *sites[a], "GET", kConfigMaps).body)
                                           .at("metadata")
                                           .at("resourceVersion")
                                           .as_string());
    asio::co_spawn(
        io,
        sites[a]->kube->stream(
            std::string(kConfigMaps) + "?watch=1&resourceVersion=" + rv,
            [&, a](std::string_view line) {
              boost::system::error_code ec;
              const json::value e = json::parse(line, ec);
              if (ec || !e.is_object() || !e.as_object().contains("object")) {
                return watching.load();
              }
              const json::object& o = e.at("object").as_object();
              const json::value* meta = o.if_contains("metadata");
              const json::value* n = meta != nullptr && meta->is_object()
                                         ? meta->as_object().if_contains("name")
                                         : nullptr;
              if (n == nullptr || !n->is_string()) {
                std::fprintf(stderr, "watch at %s: %.*s\n", sites[a]->name.c_str(),
                             static_cast<int>(line.size()), line.data());
                return watching.load();
              }
              const std::string name(n->as_string());
              const json::value* d = o.if_contains("data");
              const std::lock_guard lock(seen_mutex);
              auto& at = seen[name];
              at[a] = d != nullptr && d->is_object() ? d->as_object() : json::object();
              if (healed && !converged.contains(name) &&
                  at[0].size() == static_cast<std::size_t>(edits) + 1 && at[0] == at[1] &&
                  at[0] == at[2]) {
                converged[name] =
                    std::chrono::duration<double, std::milli>(Clock::now() - *healed).count();
              }
              return watching.load();
            }),
        asio::detached);
  }
  // Each watch resumes from its list's version: it misses nothing, even if it starts late.
  const std::uint64_t sent_before = bytes_sent(sites);
  {
    const std::lock_guard lock(seen_mutex);
    healed = Clock::now();
  }
  for (auto& [pair, l] : links) {
    l->heal();
  }
  std::optional<double> reconnected_ms;
  Clock::time_point next_trace = *healed;
  for (;;) {
    if (trace && Clock::now() >= next_trace) {
      next_trace += 100ms;
      print_trace(sites, Clock::now() - *healed);
    }
    if (!reconnected_ms && all_connected(true)) {
      reconnected_ms = std::chrono::duration<double, std::milli>(Clock::now() - *healed).count();
    }
    {
      const std::lock_guard lock(seen_mutex);
      if (converged.size() == static_cast<std::size_t>(objects)) {
        break;
      }
      if (Clock::now() - *healed > 60s) {
        std::size_t full = 0;
        for (const auto& [name, at] : seen) {
          full += at[0].size() == static_cast<std::size_t>(edits) + 1 ? 1 : 0;
        }
        for (const auto& [name, at] : seen) {
          if (!converged.contains(name)) {
            for (int a = 0; a < 3; ++a) {
              std::fprintf(
                  stderr, "%s at %s: watch %s, now %s\n", name.c_str(), sites[a]->name.c_str(),
                  json::serialize(at[a]).c_str(),
                  call(io, *sites[a], "GET", std::string(kConfigMaps) + "/" + name).body.c_str());
            }
            break;
          }
        }
        fail("no convergence within 60 s: " + std::to_string(converged.size()) + " objects, " +
             std::to_string(seen.size()) + " seen, " + std::to_string(full) + " full at paris");
      }
    }
    std::this_thread::sleep_for(reconnected_ms ? 10ms : 1ms);
  }
  watching = false;
  // Quiet: every outbox empty (all acknowledged), then count the bytes.
  wait_until(
      [&] {
        for (const auto& s : sites) {
          for (const auto& g : s->sharing->service().status()) {
            if (g.outbox != 0) {
              return false;
            }
          }
        }
        return true;
      },
      60s, "the outboxes emptying");
  const std::uint64_t heal_bytes = bytes_sent(sites) - sent_before;
  std::vector<double> times;
  for (const auto& [name, ms] : converged) {
    times.push_back(ms);
  }

  // 4. Steady state: one edit at paris, until nantes's cluster shows it.
  std::vector<double> propagation;
  for (int k = 0; k < samples; ++k) {
    const std::string name = "cm-" + std::to_string(k % objects);
    const std::string path = std::string(kConfigMaps) + "/" + name;
    json::object o = json::parse(call(io, paris, "GET", path).body).as_object();
    const std::string value = "v" + std::to_string(k);
    o["data"].as_object()["steady"] = value;
    const auto start = Clock::now();
    if (call(io, paris, "PUT", path, json::serialize(o)).status != 200) {
      fail("a steady-state edit");
    }
    for (;;) {
      const auto r = call(io, *sites[1], "GET", path);
      const json::value got = json::parse(r.body);
      const json::value* d = got.as_object().if_contains("data");
      if (d != nullptr && d->as_object().contains("steady") &&
          d->at("steady").as_string() == value) {
        break;
      }
      if (Clock::now() - start > 10s) {
        fail("a steady-state edit did not arrive within 10 s");
      }
      std::this_thread::sleep_for(1ms);
    }
    propagation.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }

  std::uint64_t writes = 0;
  std::uint64_t conflicts = 0;
  for (const auto& s : sites) {
    writes += s->sharing->bridge().counters().writes.load();
    conflicts += s->sharing->bridge().counters().write_conflicts.load();
  }
  std::fprintf(stderr, "bridge writes %llu, retried after a conflict %llu\n",
               static_cast<unsigned long long>(writes), static_cast<unsigned long long>(conflicts));
  std::printf(
      "{\"objects\":%d,\"edits_per_object\":%d,\"rtt_ms\":%d,"
      "\"reconnected_ms\":%.0f,\"convergence_ms\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
      "\"heal_bytes_sent\":%llu,\"heal_bytes_per_edit\":%.1f,"
      "\"propagation_ms\":{\"samples\":%d,\"p50\":%.1f,\"p99\":%.1f}}\n",
      objects, edits, rtt_ms, reconnected_ms.value_or(-1), percentile(times, 0.5),
      percentile(times, 0.99), percentile(times, 1.0), static_cast<unsigned long long>(heal_bytes),
      static_cast<double>(heal_bytes) / (static_cast<double>(objects) * edits), samples,
      percentile(propagation, 0.5), percentile(propagation, 0.99));

  for (auto& s : sites) {
    s->sharing.reset();
  }
  for (auto& s : sites) {
    s->node.reset();
    s->server->stop();
  }
  links.clear();
  guard.reset();
  io.stop();
  for (auto& t : threads) {
    t.join();
  }
  std::filesystem::remove_all(base);
  return 0;
}
