// Detection time after a cut and false Down over time, for the phi accrual detector at 100 ms
// heartbeats, side by side with a fixed timeout (Down after 3 missed heartbeats: 300 ms of
// silence). Simulated time (the sans-IO core on a fake clock): heartbeats sent every 100 ms
// arrive after 20 ms ± JITTER (uniform); the link is cut at a random moment; the state is
// evaluated every 10 ms. Deterministic for a seed. Target (issue #4): p99 ≤ 500 ms.
// Usage: failure_detector_bench [CUTS=10000] [JITTER_MS=10]

#include "archipel/peer/failure_detector.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

using namespace std::chrono_literals;
using archipel::peer::DetectorConfig;
using archipel::peer::Duration;
using archipel::peer::PeerHealth;
using archipel::peer::PeerState;
using archipel::peer::TimePoint;

TimePoint at(Duration d) {
  return TimePoint(d);
}

struct Result {
  std::vector<double> phi_down_ms;
  std::vector<double> phi_suspect_ms;
  std::vector<double> timeout_down_ms;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  const int cuts = argc > 1 ? std::atoi(argv[1]) : 10000;
  const Duration jitter = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 10);
  Result r;
  long long false_downs_phi = 0;
  long long false_downs_timeout = 0;
  const Duration warmup = 30s;

  for (int run = 0; run < cuts; ++run) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(run) + 1);
    std::uniform_int_distribution<long long> j(-jitter.count(), jitter.count());
    const Duration cut = warmup + Duration(std::uniform_int_distribution<long long>(
                                      0, std::chrono::nanoseconds(100ms).count())(rng));
    std::vector<TimePoint> arrivals;
    for (Duration sent = 0ms; sent < cut; sent += 100ms) {
      arrivals.push_back(at(sent + 20ms + Duration(j(rng))));
    }
    std::sort(arrivals.begin(), arrivals.end());
    PeerHealth phi(DetectorConfig{});
    std::optional<TimePoint> last;
    bool suspected = false;
    std::size_t next = 0;
    for (Duration t = 0ms; t < cut + 5s; t += 10ms) {
      // Heartbeats sent before the cut still arrive (they were in flight).
      while (next < arrivals.size() && arrivals[next] <= at(t)) {
        phi.on_heartbeat(arrivals[next]);
        last = arrivals[next++];
      }
      const PeerState s = phi.evaluate(at(t));
      const bool timeout_down = last && at(t) - *last >= 300ms;
      if (t < cut) {
        if (t > 2s) {  // after the first heartbeats
          false_downs_phi += s == PeerState::kDown;
          false_downs_timeout += timeout_down;
        }
        continue;
      }
      const double since = std::chrono::duration<double, std::milli>(t - cut).count();
      if (!suspected && s != PeerState::kReachable) {
        suspected = true;
        r.phi_suspect_ms.push_back(since);
      }
      if (s == PeerState::kDown) {
        r.phi_down_ms.push_back(since);
        break;
      }
    }
    // The fixed timeout, on the same arrivals.
    const TimePoint last_before_cut = arrivals.back();
    const Duration timeout_at = std::max(last_before_cut - at(0ms) + 300ms, cut);
    const Duration rounded = (timeout_at / 10ms + (timeout_at % 10ms > 0ms ? 1 : 0)) * 10ms;
    r.timeout_down_ms.push_back(std::chrono::duration<double, std::milli>(rounded - cut).count());
  }

  std::printf(
      "failure detection after a cut: %d cuts, heartbeats every 100 ms, latency 20 ms ± %lld ms\n",
      cuts,
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(jitter).count()));
  std::printf("%-34s %8s %8s %8s %8s\n", "detector", "p50 ms", "p90 ms", "p99 ms", "max ms");
  auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("%-34s %8.0f %8.0f %8.0f %8.0f\n", name, percentile(v, 0.5), percentile(v, 0.9),
                percentile(v, 0.99), percentile(v, 1.0));
  };
  row("phi accrual: Down (phi >= 8)", r.phi_down_ms);
  row("phi accrual: Suspected (phi >= 3)", r.phi_suspect_ms);
  row("fixed timeout 300 ms: Down", r.timeout_down_ms);
  std::printf(
      "false Down during %d x %.0f s before the cuts: phi %lld, fixed timeout %lld (evaluations)\n",
      cuts, std::chrono::duration<double>(warmup).count(), false_downs_phi, false_downs_timeout);
  return 0;
}
