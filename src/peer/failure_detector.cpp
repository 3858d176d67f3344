#include "archipel/peer/failure_detector.hpp"

#include <algorithm>
#include <cmath>

namespace archipel::peer {
namespace {

double to_ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
Duration from_ms(double ms) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

void PhiAccrualDetector::heartbeat(TimePoint now, bool record_interval) {
  if (last_ && record_interval && now > *last_) {
    const double sample = to_ms(now - *last_);
    samples_.push_back(sample);
    sum_ += sample;
    sum_squares_ += sample * sample;
    if (samples_.size() > config_.window) {
      const double old = samples_.front();
      samples_.pop_front();
      sum_ -= old;
      sum_squares_ -= old * old;
    }
  }
  last_ = now;
}

Duration PhiAccrualDetector::mean() const noexcept {
  // Before any sample, the configured interval stands in for the mean.
  return samples_.empty() ? config_.heartbeat_interval
                          : from_ms(sum_ / static_cast<double>(samples_.size()));
}

Duration PhiAccrualDetector::stddev() const noexcept {
  double sd = 0;
  if (samples_.size() > 1) {
    const double n = static_cast<double>(samples_.size());
    const double m = sum_ / n;
    sd = std::sqrt(std::max(0.0, sum_squares_ / n - m * m));
  }
  return std::max(from_ms(sd), config_.min_stddev);
}

double PhiAccrualDetector::phi(TimePoint now) const {
  if (!last_) {
    return 0;
  }
  const double elapsed = to_ms(now - *last_);
  const double m = to_ms(mean());
  const double sd = to_ms(stddev());
  // Logistic approximation of the normal distribution's tail (error < 0.0002).
  const double y = (elapsed - m) / sd;
  const double e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  const double p_later = elapsed > m ? e / (1.0 + e) : 1.0 - 1.0 / (1.0 + e);
  return -std::log10(std::max(p_later, 1e-300));
}

const char* to_string(PeerState s) noexcept {
  switch (s) {
    case PeerState::kReachable: return "Reachable";
    case PeerState::kSuspected: return "Suspected";
    case PeerState::kDown: return "Down";
  }
  return "Unknown";
}

void PeerHealth::on_heartbeat(TimePoint now, std::optional<Duration> rtt) {
  // The gap that ends an outage is not a normal inter-arrival time.
  detector_.heartbeat(now, state_ != PeerState::kDown);
  if (state_ == PeerState::kDown) {
    ++recovering_;
  }
  if (rtt) {
    rtt_ = rtt_ ? *rtt_ + (*rtt - *rtt_) / 8 : *rtt;
  }
}

PeerState PeerHealth::evaluate(TimePoint now) {
  if (!detector_.last_heartbeat()) {
    return state_;  // never heard from: Down
  }
  const double p = detector_.phi(now);
  switch (state_) {
    case PeerState::kReachable:
    case PeerState::kSuspected:
      state_ = p >= config_.down_phi      ? PeerState::kDown
               : p >= config_.suspect_phi ? PeerState::kSuspected
                                          : PeerState::kReachable;
      if (state_ == PeerState::kDown) {
        recovering_ = 0;
      }
      break;
    case PeerState::kDown:
      if (recovering_ >= config_.recovery_heartbeats && p < config_.suspect_phi) {
        state_ = PeerState::kReachable;
        recovering_ = 0;
      } else if (p >= config_.suspect_phi) {
        recovering_ = 0;  // heartbeats stopped again before recovery completed
      }
      break;
  }
  return state_;
}

bool IsolationTracker::update(std::span<const PeerState> peers) {
  if (peers.empty()) {
    isolated_ = false;  // a site alone by configuration is not cut off from anyone
    return isolated_;
  }
  const bool all_down =
      std::all_of(peers.begin(), peers.end(), [](PeerState s) { return s == PeerState::kDown; });
  const bool any_reachable = std::any_of(peers.begin(), peers.end(),
                                         [](PeerState s) { return s == PeerState::kReachable; });
  if (all_down) {
    isolated_ = true;
  } else if (any_reachable) {
    isolated_ = false;
  }  // otherwise (some Suspected, none Reachable): keep the previous verdict
  return isolated_;
}

}  // namespace archipel::peer
