#include "archipel/proxy/metrics.hpp"

#include <cstdio>

namespace archipel::proxy {

void ProxyMetrics::record(const RequestRecord& record, std::chrono::nanoseconds took) {
  const double seconds = std::chrono::duration<double>(took).count();
  std::lock_guard lock(mu_);
  ++requests_[{record.verb, record.code}];
  Histogram& h = latency_[record.verb];
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
  for (const std::string& s : record.sites) {
    ++site_answers_[s];
  }
  for (const std::string& s : record.failed) {
    ++site_failures_[s];
  }
  ++fan_out_[record.fan_out];
  failovers_ += record.failed_over ? 1 : 0;
}

void ProxyMetrics::render(base::PrometheusText& out) const {
  std::lock_guard lock(mu_);
  out.family("archipel_proxy_requests_total", "counter",
             "Requests through the front door's proxy, by verb and the HTTP code answered.");
  for (const auto& [key, n] : requests_) {
    const std::string code = std::to_string(key.second);
    out.sample("archipel_proxy_requests_total", {{"verb", key.first}, {"code", code}}, n);
  }
  out.family("archipel_proxy_request_duration_seconds", "histogram",
             "Time from a request's arrival to its answer's head, by verb.");
  for (const auto& [verb, h] : latency_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      std::snprintf(le, sizeof le, "%g", kLatencyBuckets[i]);
      out.sample("archipel_proxy_request_duration_seconds_bucket", {{"verb", verb}, {"le", le}},
                 cumulative);
    }
    out.sample("archipel_proxy_request_duration_seconds_bucket", {{"verb", verb}, {"le", "+Inf"}},
               h.count);
    out.sample("archipel_proxy_request_duration_seconds_sum", {{"verb", verb}}, h.sum);
    out.sample("archipel_proxy_request_duration_seconds_count", {{"verb", verb}}, h.count);
  }
  out.family("archipel_proxy_site_answers_total", "counter",
             "Answers a site gave to requests run on it (any HTTP code).");
  for (const auto& [site, n] : site_answers_) {
    out.sample("archipel_proxy_site_answers_total", {{"site", site}}, n);
  }
  out.family("archipel_proxy_site_failures_total", "counter",
             "Requests a site gave no answer to (unreachable, timeout) or a server error.");
  for (const auto& [site, n] : site_failures_) {
    out.sample("archipel_proxy_site_failures_total", {{"site", site}}, n);
  }
  out.family("archipel_proxy_fan_out_total", "counter",
             "Requests by the number of sites they were sent to.");
  for (const auto& [width, n] : fan_out_) {
    out.sample("archipel_proxy_fan_out_total", {{"sites", std::to_string(width)}}, n);
  }
  out.family("archipel_proxy_failovers_total", "counter",
             "Requests answered by a later alternative of their scope than the first.");
  out.sample("archipel_proxy_failovers_total", {}, failovers_);
}

}  // namespace archipel::proxy
