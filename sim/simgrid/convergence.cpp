// Sharing at scale in SimGrid: the production replication protocol (sharing::GroupReplica, the
// object CRDT under it) between simulated sites. Per (federation size, sharing degree) point,
// the sites are put into groups of `degree` at random (`groups_per_site` groups each); every
// site edits the object of its groups (its own key of a ConfigMap's data) at random times;
// each message crosses the sites' access links (a star: a pair's latency is the sum of both
// access latencies), in order per pair, as on a connection. Measured: per edit, the time until
// every other member shows it; per site, bytes and messages sent and the bytes of its durable
// state (the records the replicas ask to persist).

#include "archipel/crdt/clock.hpp"
#include "archipel/sharing/replica.hpp"
#include "archipel/sharing/schema.hpp"
#include "report/plot.hpp"
#include "simgrid/engine.hpp"
#include "simgrid/studies.hpp"

#include <boost/json.hpp>
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace archipel::sim {
namespace {

namespace json = boost::json;
namespace sg4 = simgrid::s4u;

constexpr double kEpochSeconds = 1.7e9;       // the simulated wall clock starts here (for the HLC)
constexpr std::uint64_t kEnvelopeBytes = 48;  // framing, stream id, group id: on the wire too

struct Envelope {
  std::string from;
  std::string group;
  std::uint64_t seq = 0;    // per (sender, receiver): the connection's order
  std::uint64_t epoch = 0;  // which connection between the two (a cut ends one)
  std::string bytes;
};

struct Edit {
  double at = 0;
  std::uint64_t value = 0;
  std::set<std::string> pending;  // members that do not show it yet
  double done_at = -1;
};

struct Site {
  std::string name;
  sg4::Host* host = nullptr;
  sg4::Mailbox* mailbox = nullptr;
  std::map<std::string, std::unique_ptr<sharing::GroupReplica>> replicas;  // by group
  std::map<std::string, std::vector<std::string>> others;                  // by group
  std::map<sharing::ObjectKey, json::object> kube;
  crdt::HybridClock clock;
  std::map<std::string, std::uint64_t> epoch;  // by peer: the current connection
  std::map<std::string, std::uint64_t> seq_out;
  std::map<std::string, std::uint64_t> seq_in;
  std::map<std::string, std::map<std::uint64_t, std::unique_ptr<Envelope>>> held;
  std::map<std::string, std::size_t> state;  // durable record sizes, by group + key
  std::uint64_t bytes_sent = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t counter = 0;
  std::uint64_t refused = 0;  // messages a replica refused (must stay 0)
};

class Federation {
 public:
  std::vector<std::unique_ptr<Site>> sites;
  std::map<std::string, Site*> by_name;
  std::map<std::pair<std::string, std::string>, std::vector<Edit>> edits;  // (group, site)
  std::set<std::string> cut_off;  // while the partition lasts

  // The peers `s` loses (or gets back) when the partition starts (or heals), with the groups
  // it shares with each.
  std::map<std::string, std::vector<std::string>> across_cut(const Site& s,
                                                             const std::set<std::string>& cut) {
    std::map<std::string, std::vector<std::string>> out;
    const bool mine = cut.contains(s.name);
    for (const auto& [g, others] : s.others) {
      for (const std::string& o : others) {
        if (mine != cut.contains(o)) {
          out[o].push_back(g);
        }
      }
    }
    return out;
  }

  void disconnect(Site& s, const std::string& peer, const std::vector<std::string>& groups) {
    for (const std::string& g : groups) {
      s.replicas.at(g)->disconnected(peer);
    }
    ++s.epoch[peer];
    s.seq_out[peer] = 0;
    s.seq_in[peer] = 0;
    s.held[peer].clear();
  }

  void reconnect(Site& s, const std::string& peer, const std::vector<std::string>& groups,
                 double now) {
    for (const std::string& g : groups) {
      s.replicas.at(g)->connected(peer);
      settle(s, g, now);
    }
  }

  static std::string key_of(const std::string& group) { return "/configmaps/" + group + "/shared"; }

  void send(Site& s, const std::string& group, sharing::PeerMessage m) {
    auto e = std::make_unique<Envelope>();
    e->from = s.name;
    e->group = group;
    e->seq = s.seq_out[m.peer]++;
    e->epoch = s.epoch[m.peer];
    e->bytes = std::move(m.bytes);
    const std::uint64_t size = e->bytes.size() + kEnvelopeBytes;
    s.bytes_sent += size;
    s.messages_sent += 1;
    by_name.at(m.peer)->mailbox->put_init(e.release(), size)->detach();
  }

  // What a replica asks after a call: persist, write to the local Kubernetes (whose watch
  // echoes it back), send.
  void settle(Site& s, const std::string& group, double now) {
    sharing::GroupReplica& r = *s.replicas.at(group);
    for (int round = 0; round < 4; ++round) {
      for (sharing::Record& rec : r.take_records()) {
        if (rec.value) {
          s.state[group + rec.key] = rec.key.size() + rec.value->size();
        } else {
          s.state.erase(group + rec.key);
        }
      }
      auto writes = r.take_local_writes();
      for (sharing::LocalWrite& w : writes) {
        if (w.object) {
          s.kube[w.key] = *w.object;
          shown(s, group, *w.object, now);
        } else {
          s.kube.erase(w.key);
        }
        r.local_change(w.key, w.object, s.clock.now(wall_ms(now)));
      }
      for (sharing::PeerMessage& m : r.take_messages()) {
        send(s, group, std::move(m));
      }
      if (writes.empty()) {
        break;
      }
    }
  }

  // `s` now shows `object`: the edits it holds are done at `s`.
  void shown(const Site& s, const std::string& group, const json::object& object, double now) {
    const json::value* data = object.if_contains("data");
    if (data == nullptr || !data->is_object()) {
      return;
    }
    for (const auto& [site, value] : data->as_object()) {
      if (!value.is_string()) {
        continue;
      }
      const std::uint64_t v = std::stoull(std::string(value.as_string()));
      auto it = edits.find({group, std::string(site)});
      if (it == edits.end()) {
        continue;
      }
      for (Edit& e : it->second) {
        if (e.value > v) {
          break;
        }
        if (e.pending.erase(s.name) > 0 && e.pending.empty()) {
          e.done_at = now;
        }
      }
    }
  }

  void edit(Site& s, const std::string& group, double now) {
    const sharing::ObjectKey key = key_of(group);
    auto it = s.kube.find(key);
    json::object object =
        it != s.kube.end()
            ? it->second
            : json::object{{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", json::object{{"name", "shared"}, {"namespace", group}}},
                           {"data", json::object{}}};
    const std::uint64_t value = ++s.counter;
    object["data"].as_object()[s.name] = std::to_string(value);
    s.kube[key] = object;
    Edit e;
    e.at = now;
    e.value = value;
    e.pending.insert(s.others.at(group).begin(), s.others.at(group).end());
    edits[{group, s.name}].push_back(std::move(e));
    sharing::GroupReplica& r = *s.replicas.at(group);
    r.local_change(key, object, s.clock.now(wall_ms(now)));
    r.flush();
    settle(s, group, now);
  }

  void deliver(Site& s, std::unique_ptr<Envelope> e, double now) {
    if (e->epoch != s.epoch[e->from] || cut_off.contains(e->from) != cut_off.contains(s.name)) {
      return;  // sent on a connection a cut has ended, or across the cut: lost with it
    }
    auto& next = s.seq_in[e->from];
    if (e->seq != next) {  // ahead of one still on its way: kept until its turn
      s.held[e->from][e->seq] = std::move(e);
      return;
    }
    const std::string from = e->from;
    process(s, *e, now);
    ++next;
    auto& waiting = s.held[from];
    for (auto it = waiting.find(next); it != waiting.end(); it = waiting.find(next)) {
      process(s, *it->second, now);
      waiting.erase(it);
      ++next;
    }
  }

  void process(Site& s, const Envelope& e, double now) {
    auto r = s.replicas.find(e.group);
    if (r == s.replicas.end()) {
      ++s.refused;
      return;
    }
    auto received = r->second->receive(
        e.from, std::span(reinterpret_cast<const std::byte*>(e.bytes.data()), e.bytes.size()));
    if (!received) {
      ++s.refused;
    }
    settle(s, e.group, now);
  }

  static std::uint64_t wall_ms(double now) {
    return static_cast<std::uint64_t>((kEpochSeconds + now) * 1000);
  }
};

// Names of one length at every federation size ("s00042"), so that sizes compare on what the
// protocol sends rather than on how long the names are.
std::string padded(const char* prefix, unsigned i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%05u", prefix, i);
  return buf;
}

json::value simulate(unsigned n, unsigned degree, const ConvergenceStudy& c, std::uint64_t seed) {
  simgrid_run::start_engine();
  std::mt19937_64 rng(seed);
  Federation f;
  auto add = [&](sg4::Host* host, std::string name) {
    auto site = std::make_unique<Site>();
    site->name = std::move(name);
    site->host = host;
    site->mailbox = sg4::Mailbox::by_name(site->name);
    f.by_name[site->name] = site.get();
    f.sites.push_back(std::move(site));
  };
  if (!c.platform.empty()) {  // the platform file's hosts are the sites
    sg4::Engine::get_instance()->load_platform(c.platform.string());
    auto hosts = sg4::Engine::get_instance()->get_all_hosts();
    std::sort(hosts.begin(), hosts.end(),
              [](const sg4::Host* a, const sg4::Host* b) { return a->get_name() < b->get_name(); });
    for (sg4::Host* host : hosts) {
      add(host, host->get_name());
    }
    n = static_cast<unsigned>(f.sites.size());
    if (degree > n) {
      return json::object{{"error", "degree " + std::to_string(degree) + " above the " +
                                        std::to_string(n) + " sites of the platform"}};
    }
  } else {
    auto* zone = sg4::create_star_zone("edge");
    std::uniform_real_distribution<double> access(c.access_latency_min.count(),
                                                  c.access_latency_max.count());
    for (unsigned i = 0; i < n; ++i) {
      const std::string name = padded("s", i);
      sg4::Host* host = zone->create_host(name, 1e9);
      auto* link = zone->create_link(name + "-access", c.bandwidth_bytes_per_second)
                       ->set_latency(access(rng));
      zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr, {sg4::LinkInRoute(link)},
                      true);
      add(host, name);
    }
    zone->seal();
  }
  // Groups: `groups_per_site` random partitions of the sites into groups of `degree` (a last,
  // smaller remainder joins the previous group).
  unsigned group_count = 0;
  for (unsigned round = 0; round < c.groups_per_site; ++round) {
    std::vector<unsigned> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::vector<unsigned>> groups;
    for (unsigned i = 0; i < n; i += degree) {
      std::vector<unsigned> g(order.begin() + i, order.begin() + std::min(n, i + degree));
      if (g.size() < degree && !groups.empty()) {
        groups.back().insert(groups.back().end(), g.begin(), g.end());
      } else {
        groups.push_back(std::move(g));
      }
    }
    for (const auto& members : groups) {
      const std::string id = padded("g", group_count++);
      sharing::GroupSpec spec{id, {}, 0, ""};
      for (unsigned m : members) {
        spec.members.push_back(f.sites[m]->name);
      }
      for (unsigned m : members) {
        Site& s = *f.sites[m];
        s.replicas[id] =
            std::make_unique<sharing::GroupReplica>(s.name, spec, sharing::kube_list_shape);
        for (const std::string& other : spec.members) {
          if (other != s.name) {
            s.others[id].push_back(other);
          }
        }
      }
    }
  }
  std::uniform_real_distribution<double> when(0, c.duration.count());
  for (auto& site : f.sites) {
    Site* s = site.get();
    std::vector<std::pair<double, std::string>> plan;
    std::vector<std::string> groups;
    for (const auto& [g, r] : s->replicas) {
      groups.push_back(g);
    }
    std::uniform_int_distribution<std::size_t> pick(0, groups.size() - 1);
    for (unsigned e = 0; e < c.edits_per_site; ++e) {
      plan.emplace_back(when(rng), groups[pick(rng)]);
    }
    std::sort(plan.begin(), plan.end());
    auto receiver = sg4::Actor::create(s->name, s->host, [s, &f] {
      for (const auto& [g, r] : s->replicas) {
        for (const std::string& other : s->others.at(g)) {
          r->connected(other);
        }
        f.settle(*s, g, 0);
      }
      for (;;) {
        std::unique_ptr<Envelope> e(s->mailbox->get<Envelope>());
        f.deliver(*s, std::move(e), sg4::Engine::get_clock());
      }
    });
    receiver->daemonize();
    s->mailbox->set_receiver(receiver);
    sg4::Actor::create(s->name + "-editor", s->host, [s, &f, plan] {
      for (const auto& [at, group] : plan) {
        sg4::this_actor::sleep_until(at);
        f.edit(*s, group, at);
      }
    });
  }
  std::set<std::string> cut;
  if (c.partition) {
    std::vector<std::string> names;
    for (const auto& site : f.sites) {
      names.push_back(site->name);
    }
    std::shuffle(names.begin(), names.end(), rng);
    const auto count = std::max<std::size_t>(
        1, static_cast<std::size_t>(c.partition->fraction * static_cast<double>(n)));
    cut.insert(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(count));
    const double from = c.partition->at.count();
    const double to = from + c.partition->length.count();
    for (auto& site : f.sites) {
      Site* s = site.get();
      auto lost = f.across_cut(*s, cut);
      if (lost.empty()) {
        continue;
      }
      // Each site acts on its own connections, at the same instants.
      sg4::Actor::create(s->name + "-links", s->host, [s, &f, lost, cut, from, to] {
        sg4::this_actor::sleep_until(from);
        f.cut_off = cut;
        for (const auto& [peer, groups] : lost) {
          f.disconnect(*s, peer, groups);
        }
        sg4::this_actor::sleep_until(to);
        f.cut_off.clear();
        for (const auto& [peer, groups] : lost) {
          f.reconnect(*s, peer, groups, to);
        }
      });
    }
  }
  const double end = c.duration.count() + c.drain.count();
  sg4::Actor::create("clock", f.sites.front()->host, [end] { sg4::this_actor::sleep_until(end); });
  sg4::Engine::get_instance()->run();

  std::vector<double> times;
  unsigned unfinished = 0;
  for (const auto& [key, list] : f.edits) {
    for (const Edit& e : list) {
      if (e.done_at >= 0) {
        times.push_back(e.done_at - e.at);
      } else if (!e.pending.empty()) {
        ++unfinished;
      }
    }
  }
  // Edits made before the heal and not everywhere by then: timed from the heal.
  std::vector<double> resync;
  if (c.partition) {
    const double heal = c.partition->at.count() + c.partition->length.count();
    for (const auto& [key, list] : f.edits) {
      for (const Edit& e : list) {
        if (e.at < heal && e.done_at >= heal) {
          resync.push_back(e.done_at - heal);
        }
      }
    }
  }
  std::sort(resync.begin(), resync.end());
  std::sort(times.begin(), times.end());
  auto quantile = [](const std::vector<double>& v, double p) {
    return v.empty() ? 0.0
                     : v[std::min(v.size() - 1,
                                  static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  };
  auto q = [&](double p) {
    return times.empty()
               ? 0.0
               : times[std::min(times.size() - 1,
                                static_cast<std::size_t>(p * static_cast<double>(times.size())))];
  };
  double bytes = 0, bytes_max = 0, messages = 0, state = 0, state_max = 0;
  std::uint64_t refused = 0;
  for (const auto& s : f.sites) {
    bytes += static_cast<double>(s->bytes_sent);
    bytes_max = std::max(bytes_max, static_cast<double>(s->bytes_sent));
    messages += static_cast<double>(s->messages_sent);
    double st = 0;
    for (const auto& [k, size] : s->state) {
      st += static_cast<double>(size);
    }
    state += st;
    state_max = std::max(state_max, st);
    refused += s->refused;
  }
  return json::object{{"sites", n},
                      {"degree", degree},
                      {"groups", group_count},
                      {"edits", times.size() + unfinished},
                      {"unfinished", unfinished},
                      {"convergeP50Ms", q(0.5) * 1000},
                      {"convergeP99Ms", q(0.99) * 1000},
                      {"convergeMaxMs", times.empty() ? 0.0 : times.back() * 1000},
                      {"bytesPerSite", bytes / n},
                      {"bytesPerSiteMax", bytes_max},
                      {"messagesPerSite", messages / n},
                      {"stateBytesPerSite", state / n},
                      {"stateBytesPerSiteMax", state_max},
                      {"refused", refused},
                      {"cutOff", cut.size()},
                      {"resyncEdits", resync.size()},
                      {"resyncP50Ms", quantile(resync, 0.5) * 1000},
                      {"resyncP99Ms", quantile(resync, 0.99) * 1000}};
}

std::string num(double v, int digits = 0) {
  return plot::fixed(v, digits);
}

}  // namespace

StudyOutcome run_convergence(const Study& study, const ConvergenceStudy& c,
                             const StudyProgress& progress) {
  StudyOutcome out;
  json::array points;
  const std::size_t total = c.sites.size() * c.degrees.size();
  std::size_t done = 0;
  plot::LineChart converge{"sites in the federation", "convergence p99 (ms)", true, {}};
  plot::LineChart traffic{"sites in the federation", "bytes sent per site", true, {}};
  plot::LineChart memory{"sites in the federation", "durable state per site (bytes)", true, {}};
  plot::LineChart by_degree{"sharing degree (sites per group)", "bytes sent per site", false, {}};
  std::map<unsigned, plot::Series> conv_series, traffic_series, memory_series;
  std::map<unsigned, plot::Series> degree_series;  // by federation size
  std::map<unsigned, std::vector<double>> bytes_at_degree;
  std::map<unsigned, std::vector<double>> state_at_degree;
  std::string table =
      "<table><tr><th>sites</th><th>degree</th><th>groups</th><th>edits</th><th>p50 ms</th>"
      "<th>p99 ms</th><th>max ms</th><th>not converged</th><th>bytes/site</th>"
      "<th>messages/site</th><th>state bytes/site</th><th>cut off</th>"
      "<th>after the heal: edits</th><th>p50 ms</th><th>p99 ms</th></tr>";
  for (unsigned n : c.sites) {
    for (unsigned k : c.degrees) {
      const std::string what =
          (c.platform.empty() ? std::to_string(n) + " sites"
                              : "the sites of " + c.platform.filename().string()) +
          ", degree " + std::to_string(k);
      if (progress) {
        progress(done++, total, what);
      }
      auto result = simgrid_run::in_child(
          [&] { return simulate(n, k, c, study.seed * 1'000'003 + n * 1009 + k); });
      if (!result) {
        out.checks.push_back({what, 0, false, result.error()});
        continue;
      }
      const json::object& r = result->as_object();
      auto get = [&](const char* key) { return r.at(key).to_number<double>(); };
      conv_series[k].label = "degree " + std::to_string(k);
      const double size = get("sites");  // a platform file says how many
      conv_series[k].points.emplace_back(size, get("convergeP99Ms"));
      traffic_series[k].label = conv_series[k].label;
      traffic_series[k].points.emplace_back(size, get("bytesPerSite"));
      memory_series[k].label = conv_series[k].label;
      memory_series[k].points.emplace_back(size, get("stateBytesPerSite"));
      degree_series[n].label = num(size) + " sites";
      degree_series[n].points.emplace_back(k, get("bytesPerSite"));
      bytes_at_degree[k].push_back(get("bytesPerSite"));
      state_at_degree[k].push_back(get("stateBytesPerSite"));
      table += "<tr><td>" + num(size) + "</td><td>" + std::to_string(k) + "</td><td>" +
               num(get("groups")) + "</td><td>" + num(get("edits")) + "</td><td>" +
               num(get("convergeP50Ms"), 1) + "</td><td>" + num(get("convergeP99Ms"), 1) +
               "</td><td>" + num(get("convergeMaxMs"), 1) + "</td><td>" + num(get("unfinished")) +
               "</td><td>" + num(get("bytesPerSite")) + "</td><td>" +
               num(get("messagesPerSite"), 1) + "</td><td>" + num(get("stateBytesPerSite")) +
               "</td><td>" + num(get("cutOff")) + "</td><td>" + num(get("resyncEdits")) +
               "</td><td>" + num(get("resyncP50Ms"), 1) + "</td><td>" + num(get("resyncP99Ms"), 1) +
               "</td></tr>";
      if (get("refused") > 0 || get("unfinished") > 0) {
        out.checks.push_back({what + ": every edit reaches every member", 0, false,
                              num(get("unfinished")) + " edits not everywhere, " +
                                  num(get("refused")) + " messages refused"});
      }
      for (const auto& check : c.checks) {
        if (check.resync_p99_below) {
          const double bound = check.resync_p99_below->count() * 1000;
          out.checks.push_back({what + ": after the heal, p99 below " + num(bound) + " ms", 0,
                                get("resyncP99Ms") < bound,
                                "p99 " + num(get("resyncP99Ms"), 1) + " ms over " +
                                    num(get("resyncEdits")) + " edits made during the cut"});
        }
        if (check.converge_p99_below) {
          const double bound = check.converge_p99_below->count() * 1000;
          out.checks.push_back({what + ": convergence p99 below " + num(bound) + " ms", 0,
                                get("convergeP99Ms") < bound,
                                "p99 " + num(get("convergeP99Ms"), 1) + " ms"});
        }
      }
      points.push_back(*result);
    }
  }
  table += "</table>";
  // A figure per site that must not depend on the federation's size, at each degree.
  auto flat = [&](const std::map<unsigned, std::vector<double>>& by_degree_values, const char* what,
                  double within) {
    for (const auto& [k, values] : by_degree_values) {
      const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      const double spread = *lo > 0 ? (*hi - *lo) / *lo : 0;
      out.checks.push_back(
          {"degree " + std::to_string(k) + ": " + what +
               " per site flat across federation sizes (within " + num(within * 100) + "%)",
           0, spread <= within,
           "from " + num(*lo) + " to " + num(*hi) + " bytes (" + num(spread * 100, 1) + "%)"});
    }
  };
  for (const auto& check : c.checks) {
    if (check.bytes_flat_within) {
      flat(bytes_at_degree, "bytes sent", *check.bytes_flat_within);
    }
    if (check.state_flat_within) {
      flat(state_at_degree, "durable state", *check.state_flat_within);
    }
  }
  for (auto& [k, s] : conv_series) {
    converge.series.push_back(std::move(s));
  }
  for (auto& [k, s] : traffic_series) {
    traffic.series.push_back(std::move(s));
  }
  for (auto& [k, s] : memory_series) {
    memory.series.push_back(std::move(s));
  }
  for (auto& [n, s] : degree_series) {
    by_degree.series.push_back(std::move(s));
  }
  out.results = json::object{{"editsPerSite", c.edits_per_site},
                             {"groupsPerSite", c.groups_per_site},
                             {"points", std::move(points)}};
  out.html =
      "<h2>Convergence time</h2><p>Per edit, from the edit until every other member of its "
      "group shows it (99th percentile over every edit of the run).</p>" +
      plot::line_chart(converge) +
      "<h2>Traffic and state per site</h2><p>What a site sends (every byte of the sharing "
      "protocol, with its framing) and what it keeps (its durable records), against the size of "
      "the federation: flat lines mean they depend on the sites a site shares with, not on how "
      "many sites there are.</p>" +
      plot::line_chart(traffic) + plot::line_chart(memory) +
      "<p>Against the sharing degree: a site's traffic grows with the number of sites it shares "
      "with.</p>" +
      plot::line_chart(by_degree) + "<h2>Every point</h2>" + table;
  return out;
}

}  // namespace archipel::sim
