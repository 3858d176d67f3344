// The Prometheus text format as scrapers parse it.

#include "archipel/base/prometheus.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace archipel::base {
namespace {

TEST(PrometheusText, WritesHelpTypeAndSamplesWithLabels) {
  PrometheusText t;
  t.family("archipel_peer_phi", "gauge", "Suspicion level.");
  t.sample("archipel_peer_phi", {{"peer", "nantes"}}, 0.5);
  t.sample("archipel_site_isolated", {}, std::uint64_t{1});
  EXPECT_EQ(t.text(),
            "# HELP archipel_peer_phi Suspicion level.\n"
            "# TYPE archipel_peer_phi gauge\n"
            "archipel_peer_phi{peer=\"nantes\"} 0.5\n"
            "archipel_site_isolated 1\n");
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  PrometheusText t;
  t.family("m", "counter", "a \\ b\nc");
  t.sample("m", {{"path", "a\"b\\c\nd"}, {"x", "y"}}, std::uint64_t{3});
  EXPECT_EQ(t.text(),
            "# HELP m a \\\\ b\\nc\n"
            "# TYPE m counter\n"
            "m{path=\"a\\\"b\\\\c\\nd\",x=\"y\"} 3\n");
}

TEST(PrometheusText, WritesSpecialFloatsAsPrometheusSpellsThem) {
  PrometheusText t;
  t.sample("a", {}, std::numeric_limits<double>::infinity());
  t.sample("b", {}, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(t.text(), "a +Inf\nb NaN\n");
}

}  // namespace
}  // namespace archipel::base
