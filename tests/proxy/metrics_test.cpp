// The proxy's Prometheus metrics as a scrape shows them.

#include "archipel/proxy/metrics.hpp"

#include <gtest/gtest.h>

namespace archipel::proxy {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(ProxyMetrics, CountsRequestsSitesFanOutAndFailovers) {
  ProxyMetrics metrics;
  RequestRecord list{"list", 200, {"paris", "nantes"}, {"rennes"}, 3, false, ""};
  RequestRecord get{"get", 200, {"nantes"}, {"paris"}, 2, true, ""};
  metrics.record(list, std::chrono::milliseconds(3));
  metrics.record(list, std::chrono::milliseconds(30));
  metrics.record(get, std::chrono::microseconds(200));
  base::PrometheusText text;
  metrics.render(text);
  const std::string& t = text.text();
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_requests_total{verb="list",code="200"} 2)")) << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_requests_total{verb="get",code="200"} 1)")) << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_site_answers_total{site="nantes"} 3)")) << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_site_failures_total{site="rennes"} 2)")) << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_fan_out_total{sites="3"} 2)")) << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_failovers_total 1)")) << t;
  // Cumulative buckets: 3 ms is within 5 ms, 30 ms only from 50 ms on.
  EXPECT_TRUE(
      has_line(t, R"(archipel_proxy_request_duration_seconds_bucket{verb="list",le="0.005"} 1)"))
      << t;
  EXPECT_TRUE(
      has_line(t, R"(archipel_proxy_request_duration_seconds_bucket{verb="list",le="0.05"} 2)"))
      << t;
  EXPECT_TRUE(
      has_line(t, R"(archipel_proxy_request_duration_seconds_bucket{verb="list",le="+Inf"} 2)"))
      << t;
  EXPECT_TRUE(has_line(t, R"(archipel_proxy_request_duration_seconds_count{verb="get"} 1)")) << t;
}

}  // namespace
}  // namespace archipel::proxy
