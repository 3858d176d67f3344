#pragma once

// The proxy's Prometheus metrics: requests by verb and code, per-site answers and failures,
// latency histograms by verb, fan-out width and failovers. Thread-safe: sessions record, the
// /metrics handler renders.

#include "archipel/base/prometheus.hpp"
#include "archipel/proxy/proxy.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace archipel::proxy {

class ProxyMetrics {
 public:
  /// Upper bounds of the latency histogram buckets, in seconds (then +Inf).
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

  void record(const RequestRecord& record, std::chrono::nanoseconds took);
  void render(base::PrometheusText& out) const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kLatencyBuckets.size()> buckets{};  // not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mu_;
  // Transparent comparators: looked up with string_views, without building keys.
  std::map<std::string, std::map<unsigned, std::uint64_t>, std::less<>> requests_;  // verb, code
  std::map<std::string, Histogram, std::less<>> latency_;                           // by verb
  std::map<std::string, std::uint64_t, std::less<>> site_answers_;
  std::map<std::string, std::uint64_t, std::less<>> site_failures_;
  std::map<std::size_t, std::uint64_t> fan_out_;  // sites asked -> requests
  std::uint64_t failovers_ = 0;
};

}  // namespace archipel::proxy
