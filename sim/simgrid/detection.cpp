// Failure detection between two sites in SimGrid: the production detector (peer::PeerHealth,
// phi accrual with its thresholds and hysteresis) fed by heartbeats that cross a simulated link.
// Per (heartbeat, jitter) point, `runs` independent pairs: each is watched for `observe` while
// the sender is alive (every move to Suspected or Down is a false positive), then the sender
// stops and the time until Down is its detection time. The link's jitter is a delay of mean
// `jitter`, exponentially distributed, on each heartbeat (in order, as on one connection).

#include "archipel/peer/failure_detector.hpp"
#include "report/plot.hpp"
#include "simgrid/engine.hpp"
#include "simgrid/studies.hpp"

#include <boost/json.hpp>
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <random>

namespace archipel::sim {
namespace {

namespace json = boost::json;
namespace sg4 = simgrid::s4u;

peer::TimePoint at(double seconds) {
  return peer::TimePoint(std::chrono::nanoseconds(std::llround(seconds * 1e9)));
}

struct Pair {
  peer::PeerHealth health;
  std::mt19937_64 rng;
  double crash_at = 0;
  double detected_after = -1;  // seconds; -1: not detected
  unsigned false_suspected = 0;
  unsigned false_down = 0;
  bool seen = false;  // Reachable once
};

// One point, in this (child) process.
json::value simulate(double heartbeat, double jitter, double latency, double observe, unsigned runs,
                     std::uint64_t seed) {
  simgrid_run::start_engine();
  auto* zone = sg4::create_full_zone("pairs");
  peer::DetectorConfig config;
  config.heartbeat_interval = std::chrono::nanoseconds(std::llround(heartbeat * 1e9));
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::pair<sg4::Host*, sg4::Host*>> hosts;
  for (unsigned r = 0; r < runs; ++r) {
    auto* a = zone->create_host("a" + std::to_string(r), 1e9);
    auto* b = zone->create_host("b" + std::to_string(r), 1e9);
    auto* link = zone->create_link("l" + std::to_string(r), 125e6)->set_latency(latency);
    zone->add_route(a->get_netpoint(), b->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(link)}, true);
    hosts.emplace_back(a, b);
    auto p = std::make_unique<Pair>(Pair{peer::PeerHealth(config), std::mt19937_64(seed + r)});
    p->crash_at = observe + std::uniform_real_distribution<double>(0, heartbeat)(p->rng);
    pairs.push_back(std::move(p));
  }
  zone->seal();
  for (unsigned r = 0; r < runs; ++r) {
    Pair* p = pairs[r].get();
    sg4::Mailbox* mailbox = sg4::Mailbox::by_name("b" + std::to_string(r));
    sg4::Actor::create("sender", hosts[r].first, [=] {
      // Heartbeats leave on time and are held up on the way by an exponentially distributed
      // delay (mean `jitter`): mostly little, sometimes a lot, in order (one connection).
      std::exponential_distribution<double> late(jitter > 0 ? 1 / jitter : 1);
      double previous = 0;
      for (std::uint64_t k = 0;; ++k) {
        const double due = std::max(
            previous, static_cast<double>(k) * heartbeat + (jitter > 0 ? late(p->rng) : 0));
        previous = due;
        if (due >= p->crash_at) {
          return;  // the site stops: no more heartbeats
        }
        sg4::this_actor::sleep_until(due);
        mailbox->put_init(new std::uint64_t(k), 64)->detach();
      }
    });
    auto listener = sg4::Actor::create("listener", hosts[r].second, [=] {
      for (;;) {
        delete mailbox->get<std::uint64_t>();
        p->health.on_heartbeat(at(sg4::Engine::get_clock()));
      }
    });
    listener->daemonize();
    mailbox->set_receiver(listener);
    // Evaluated every quarter heartbeat, as the peer channel does.
    sg4::Actor::create("evaluator", hosts[r].second, [=] {
      peer::PeerState last = peer::PeerState::kDown;
      const double give_up = p->crash_at + 60;
      for (double t = heartbeat / 4; t < give_up; t += heartbeat / 4) {
        sg4::this_actor::sleep_until(t);
        const peer::PeerState now = p->health.evaluate(at(t));
        if (t < p->crash_at && p->seen && now != last) {
          p->false_suspected += now == peer::PeerState::kSuspected ? 1 : 0;
          p->false_down += now == peer::PeerState::kDown ? 1 : 0;
        }
        p->seen = p->seen || now == peer::PeerState::kReachable;
        last = now;
        if (t >= p->crash_at && now == peer::PeerState::kDown) {
          p->detected_after = t - p->crash_at;
          return;
        }
      }
    });
  }
  sg4::Engine::get_instance()->run();
  json::array detections;
  unsigned false_suspected = 0, false_down = 0;
  for (const auto& p : pairs) {
    detections.push_back(p->detected_after);
    false_suspected += p->false_suspected;
    false_down += p->false_down;
  }
  return json::object{{"detectionSeconds", std::move(detections)},
                      {"falseSuspected", false_suspected},
                      {"falseDown", false_down}};
}

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string ms(double seconds) {
  return plot::fixed(seconds * 1000, 0) + " ms";
}

}  // namespace

StudyOutcome run_detection(const Study& study, const DetectionStudy& d,
                           const StudyProgress& progress) {
  StudyOutcome out;
  json::array points;
  const std::size_t total = d.heartbeats.size() * d.jitters.size();
  std::size_t done = 0;
  const double hours = d.runs * d.observe.count() / 3600;
  plot::LineChart detection{"heartbeat interval (ms)", "median detection time (ms)", false, {}};
  plot::LineChart false_down{"jitter (ms)", "false Down per site-hour", false, {}};
  plot::LineChart false_suspected{"jitter (ms)", "false Suspected per site-hour", false, {}};
  std::map<double, plot::Series> by_jitter;
  std::map<double, plot::Series> down_by_heartbeat, suspected_by_heartbeat;
  std::string table =
      "<table><tr><th>heartbeat</th><th>jitter</th><th>detection median</th><th>min</th>"
      "<th>max</th><th>false Suspected</th><th>false Down</th></tr>";
  for (Seconds h : d.heartbeats) {
    for (Seconds j : d.jitters) {
      const std::string what = "heartbeat " + ms(h.count()) + ", jitter " + ms(j.count());
      if (progress) {
        progress(done++, total, what);
      }
      auto result = simgrid_run::in_child([&] {
        return simulate(h.count(), j.count(), d.latency.count(), d.observe.count(), d.runs,
                        study.seed * 1'000'003 + done);
      });
      if (!result) {
        out.checks.push_back({what, 0, false, result.error()});
        continue;
      }
      const json::object& r = result->as_object();
      std::vector<double> detections;
      for (const json::value& v : r.at("detectionSeconds").as_array()) {
        if (v.to_number<double>() >= 0) {
          detections.push_back(v.to_number<double>());
        }
      }
      const double med = median(detections);
      const auto fs = r.at("falseSuspected").to_number<unsigned>();
      const auto fd = r.at("falseDown").to_number<unsigned>();
      const double hb_ms = h.count() * 1000, j_ms = j.count() * 1000;
      auto& series = by_jitter[j_ms];
      series.label = "jitter " + ms(j.count());
      series.points.emplace_back(hb_ms, med * 1000);
      auto& down = down_by_heartbeat[hb_ms];
      down.label = "heartbeat " + ms(h.count());
      down.points.emplace_back(j_ms, fd / hours);
      auto& suspected = suspected_by_heartbeat[hb_ms];
      suspected.label = down.label;
      suspected.points.emplace_back(j_ms, fs / hours);
      const auto [lo, hi] =
          detections.empty() ? std::pair<double, double>{0, 0}
                             : std::pair{*std::min_element(detections.begin(), detections.end()),
                                         *std::max_element(detections.begin(), detections.end())};
      table += "<tr><td>" + ms(h.count()) + "</td><td>" + ms(j.count()) + "</td><td>" + ms(med) +
               "</td><td>" + ms(lo) + "</td><td>" + ms(hi) + "</td><td>" + std::to_string(fs) +
               "</td><td>" + std::to_string(fd) + "</td></tr>";
      points.push_back(json::object{{"heartbeatMs", hb_ms},
                                    {"jitterMs", j_ms},
                                    {"detectionMedianMs", med * 1000},
                                    {"detectionMinMs", lo * 1000},
                                    {"detectionMaxMs", hi * 1000},
                                    {"detected", detections.size()},
                                    {"falseSuspected", fs},
                                    {"falseDown", fd},
                                    {"detectionsSeconds", r.at("detectionSeconds")}});
      for (const auto& c : d.checks) {
        if (c.heartbeat != h || c.jitter != j) {
          continue;
        }
        if (c.detection_below) {
          const bool ok = detections.size() == d.runs && med < c.detection_below->count();
          out.checks.push_back({what + ": detection below " + ms(c.detection_below->count()), 0, ok,
                                "median " + ms(med) + ", " + std::to_string(detections.size()) +
                                    " of " + std::to_string(d.runs) + " stops detected"});
        }
        if (c.false_down_at_most) {
          out.checks.push_back(
              {what + ": at most " + std::to_string(*c.false_down_at_most) + " false Down", 0,
               fd <= *c.false_down_at_most,
               std::to_string(fd) + " false Down in " + plot::fixed(hours, 1) + " site-hours"});
        }
      }
    }
  }
  table += "</table>";
  for (auto& [j, s] : by_jitter) {
    detection.series.push_back(std::move(s));
  }
  for (auto& [h, s] : down_by_heartbeat) {
    false_down.series.push_back(std::move(s));
  }
  for (auto& [h, s] : suspected_by_heartbeat) {
    false_suspected.series.push_back(std::move(s));
  }
  out.results = json::object{{"latencyMs", d.latency.count() * 1000},
                             {"observeSeconds", d.observe.count()},
                             {"runs", d.runs},
                             {"points", std::move(points)}};
  out.html =
      "<h2>Detection time</h2><p>From the moment a site stops until its peer's detector "
      "says Down (median of " +
      std::to_string(d.runs) + " pairs per point; link latency " + ms(d.latency.count()) +
      ").</p>" + plot::line_chart(detection) +
      "<h2>False positives</h2><p>Moves to Down, and to Suspected, while the other site "
      "was alive, per site-hour (" +
      plot::fixed(hours, 1) + " site-hours watched per point).</p>" + plot::line_chart(false_down) +
      plot::line_chart(false_suspected) + "<h2>Every point</h2>" + table;
  return out;
}

}  // namespace archipel::sim
