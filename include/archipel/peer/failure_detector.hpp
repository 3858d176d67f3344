#pragma once

// Failure detection of peer sites, sans-IO: heartbeat arrivals and the current time go in,
// suspicion levels and state changes come out. No clock is read here and nothing is sent, so
// the same code runs over real sockets, in tests with a fake clock, and in SimGrid simulations.
//
// PhiAccrualDetector is the phi accrual detector of Hayashibara et al.: phi = -log10(P(a
// heartbeat arrives later than now)), from a window of inter-arrival times modelled as a normal
// distribution (with the logistic approximation of its tail, as Akka and Cassandra use).
// PeerHealth turns phi into Reachable / Suspected / Down with hysteresis; IsolationTracker
// declares the site Isolated when every peer is Down.

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <span>

namespace archipel::peer {

using Duration = std::chrono::nanoseconds;
/// Time as the caller's monotonic clock gives it (steady_clock in production, fake in tests).
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

struct DetectorConfig {
  Duration heartbeat_interval = std::chrono::milliseconds(100);  ///< the sender's period
  double suspect_phi = 3.0;  ///< phi at or above which a peer is Suspected
  double down_phi = 8.0;     ///< phi at or above which a peer is Down
  std::size_t window = 200;  ///< inter-arrival samples kept
  /// Floor of the standard deviation: a perfectly regular link must not make one late
  /// heartbeat look like a failure.
  Duration min_stddev = std::chrono::milliseconds(25);
  /// Heartbeats in a row needed to come back from Down (hysteresis against flapping links).
  std::size_t recovery_heartbeats = 2;
};

class PhiAccrualDetector {
 public:
  explicit PhiAccrualDetector(const DetectorConfig& config) : config_(config) {}

  /// Records a heartbeat received at `now`. When `record_interval` is false (the first
  /// heartbeat after an outage) the gap is not taken as a sample of normal inter-arrivals.
  void heartbeat(TimePoint now, bool record_interval = true);

  /// Suspicion that the peer failed, given no heartbeat since the last one; 0 before any.
  [[nodiscard]] double phi(TimePoint now) const;

  [[nodiscard]] std::optional<TimePoint> last_heartbeat() const noexcept { return last_; }
  [[nodiscard]] Duration mean() const noexcept;
  [[nodiscard]] Duration stddev() const noexcept;

 private:
  DetectorConfig config_;
  std::optional<TimePoint> last_;
  std::deque<double> samples_;  // inter-arrival times, in milliseconds
  double sum_ = 0;
  double sum_squares_ = 0;
};

enum class PeerState { kReachable, kSuspected, kDown };

[[nodiscard]] const char* to_string(PeerState s) noexcept;

/// One peer's health: the detector, the state with hysteresis, and the round-trip time.
class PeerHealth {
 public:
  explicit PeerHealth(const DetectorConfig& config) : config_(config), detector_(config) {}

  /// A heartbeat arrived at `now`; `rtt` when the heartbeat answered one of ours.
  void on_heartbeat(TimePoint now, std::optional<Duration> rtt = std::nullopt);

  /// Re-evaluates the state at `now` (call it periodically, e.g. every heartbeat interval) and
  /// returns it. A peer never heard from is Down.
  PeerState evaluate(TimePoint now);

  [[nodiscard]] PeerState state() const noexcept { return state_; }
  [[nodiscard]] double phi(TimePoint now) const { return detector_.phi(now); }
  /// Smoothed round-trip time (EWMA, 1/8 like TCP's SRTT); nullopt before the first sample.
  [[nodiscard]] std::optional<Duration> rtt() const noexcept { return rtt_; }

 private:
  DetectorConfig config_;
  PhiAccrualDetector detector_;
  PeerState state_ = PeerState::kDown;
  std::size_t recovering_ = 0;  // heartbeats in a row since Down
  std::optional<Duration> rtt_;
};

/// Whether this site is cut off: Isolated when it has peers and every one is Down; it stops
/// being isolated as soon as one peer is Reachable again.
class IsolationTracker {
 public:
  /// Returns whether the site is isolated after this evaluation, given every peer's state.
  bool update(std::span<const PeerState> peers);
  [[nodiscard]] bool isolated() const noexcept { return isolated_; }

 private:
  bool isolated_ = false;
};

}  // namespace archipel::peer
