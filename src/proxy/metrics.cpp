#include "archipel/proxy/metrics.hpp"

#include <cstdio>

namespace archipel::proxy {

void ProxyMetrics::record(const RequestRecord& record, std::chrono::nanoseconds took) {
  const double seconds = std::chrono::duration<double>(took).count();
  std::lock_guard lock(mu_);
  // Found without building a key: after the first request of a kind, recording allocates
  // nothing.
  auto r = requests_.find(record.verb);
  if (r == requests_.end()) {
    r = requests_.emplace(record.verb, std::map<unsigned, std::uint64_t>()).first;
  }
  ++r->second[record.code];
  auto l = latency_.find(record.verb);
  if (l == latency_.end()) {
    l = latency_.emplace(record.verb, Histogram{}).first;
  }
  Histogram& h = l->second;
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
  auto count = [](auto& counts, const std::string& key) {
    auto it = counts.find(key);
    if (it == counts.end()) {
      it = counts.emplace(key, 0).first;
    }
    ++it->second;
  };
  for (const std::string& s : record.sites) {
    count(site_answers_, s);
  }
  for (const std::string& s : record.failed) {
    count(site_failures_, s);
  }
  ++fan_out_[record.fan_out];
  failovers_ += record.failed_over ? 1 : 0;
}

void ProxyMetrics::render(base::PrometheusText& out) const {
  std::lock_guard lock(mu_);
  out.family("archipel_proxy_requests_total", "counter",
             "Requests through the front door's proxy, by verb and the HTTP code answered.");
  for (const auto& [verb, codes] : requests_) {
    for (const auto& [code, n] : codes) {
      const std::string text = std::to_string(code);
      out.sample("archipel_proxy_requests_total", {{"verb", verb}, {"code", text}}, n);
    }
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
