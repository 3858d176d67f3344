#include "archipel/dsl/plan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace archipel::dsl {
namespace {

SiteView three_sites() {
  return SiteView("paris", {{"nantes", true}, {"rennes", true}});
}

// Each alternative as "a+b".
std::vector<std::string> alternatives(const Plan& plan) {
  std::vector<std::string> out;
  for (const Alternative& alt : plan.alternatives) {
    std::string s;
    for (const PlannedSite& site : alt.sites) {
      s += (s.empty() ? "" : "+") + site.name;
    }
    out.push_back(s);
  }
  return out;
}

Plan plan_of(std::string_view text, const SiteView& view, std::string_view resource = "pods",
             std::string_view group = "") {
  auto scope = parse_scope(text);
  EXPECT_TRUE(scope) << scope.error().render();
  auto plan = evaluate(*scope, view, {resource, group});
  EXPECT_TRUE(plan) << plan.error().render();
  return plan ? *plan : Plan{};
}

using V = std::vector<std::string>;

TEST(ScopePlan, SingleSiteIsOneAlternative) {
  EXPECT_EQ(alternatives(plan_of("nantes", three_sites())), V{"nantes"});
}

TEST(ScopePlan, AndIsOneAlternativeWithEverySite) {
  EXPECT_EQ(alternatives(plan_of("paris & nantes & rennes", three_sites())),
            V{"paris+nantes+rennes"});
}

TEST(ScopePlan, OrIsOrderedAlternatives) {
  EXPECT_EQ(alternatives(plan_of("rennes | paris", three_sites())), (V{"rennes", "paris"}));
}

TEST(ScopePlan, AndDistributesOverOrLeftOperandSlowest) {
  EXPECT_EQ(alternatives(plan_of("paris & (nantes | rennes)", three_sites())),
            (V{"paris+nantes", "paris+rennes"}));
  EXPECT_EQ(alternatives(plan_of("(paris | nantes) & (rennes | .)", three_sites())),
            (V{"paris+rennes", "paris", "nantes+rennes", "nantes+paris"}));
}

TEST(ScopePlan, DotIsTheReceivingSiteAndMarkedLocal) {
  const Plan plan = plan_of(". & nantes", three_sites());
  ASSERT_EQ(plan.alternatives.size(), 1u);
  ASSERT_EQ(plan.alternatives[0].sites.size(), 2u);
  EXPECT_EQ(plan.alternatives[0].sites[0], (PlannedSite{"paris", true, true}));
  EXPECT_EQ(plan.alternatives[0].sites[1], (PlannedSite{"nantes", false, true}));
}

TEST(ScopePlan, NamingTheReceivingSiteIsTheSameAsDot) {
  EXPECT_EQ(plan_of("paris", three_sites()), plan_of(".", three_sites()));
}

TEST(ScopePlan, RepeatedSitesCollapse) {
  EXPECT_EQ(alternatives(plan_of("paris & . & paris", three_sites())), V{"paris"});
  EXPECT_EQ(alternatives(plan_of("nantes | nantes | paris", three_sites())),
            (V{"nantes", "paris"}));
  // (a|b) & (b|a): {a}, {a,b}, {b,a} = {a,b} again, {b}
  EXPECT_EQ(alternatives(plan_of("(nantes | rennes) & (rennes | nantes)", three_sites())),
            (V{"nantes+rennes", "nantes", "rennes"}));
}

TEST(ScopePlan, UnreachableSitesStayInPlaceAndAreMarked) {
  const SiteView view("paris", {{"nantes", false}, {"rennes", true}});
  const Plan plan = plan_of("nantes | rennes", view);
  ASSERT_EQ(alternatives(plan), (V{"nantes", "rennes"}));
  EXPECT_FALSE(plan.alternatives[0].sites[0].reachable);
  EXPECT_TRUE(plan.alternatives[1].sites[0].reachable);
}

TEST(ScopePlan, UnknownSiteNamesItTheColumnAndTheKnownSites) {
  auto scope = parse_scope("paris & lyon");
  ASSERT_TRUE(scope);
  auto plan = evaluate(*scope, three_sites(), {"pods", ""});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, errc::unknown_site);
  EXPECT_EQ(plan.error().message, "unknown site 'lyon' (known: nantes, paris, rennes) at column 9");
  EXPECT_EQ(plan.error().expression, "paris & lyon");
  EXPECT_EQ(plan.error().render(), plan.error().message + "\n  paris & lyon\n          ^");
}

TEST(ScopePlan, UnknownSiteInAnUnusedBindingIsNotAnError) {
  EXPECT_EQ(alternatives(plan_of("secrets: lyon, *: nantes", three_sites(), "pods")), V{"nantes"});
}

TEST(ScopePlan, PicksTheMostSpecificBinding) {
  const char* scope = "*: rennes, deployments: nantes, deployments.apps: paris";
  EXPECT_EQ(alternatives(plan_of(scope, three_sites(), "deployments", "apps")), V{"paris"});
  EXPECT_EQ(alternatives(plan_of(scope, three_sites(), "deployments", "extensions")), V{"nantes"});
  EXPECT_EQ(alternatives(plan_of(scope, three_sites(), "pods")), V{"rennes"});
  EXPECT_EQ(plan_of(scope, three_sites(), "deployments", "apps").binding, 2);
}

TEST(ScopePlan, SubresourcesFollowTheirResource) {
  EXPECT_EQ(alternatives(plan_of("pods: nantes, *: rennes", three_sites(), "pods/log")),
            V{"nantes"});
}

TEST(ScopePlan, NoMatchingBindingRunsOnTheReceivingSiteOnly) {
  const Plan plan = plan_of("pods: nantes", three_sites(), "configmaps");
  EXPECT_EQ(plan.binding, -1);
  EXPECT_EQ(alternatives(plan), V{"paris"});
  EXPECT_TRUE(plan.alternatives[0].sites[0].local);
}

TEST(ScopePlan, RejectsExpansionBeyondTheAlternativesLimit) {
  std::vector<SiteView::Site> peers;
  std::string text;
  for (int i = 0; i < 9; ++i) {  // (a0|b0) & … & (a8|b8): 2^9 = 512 alternatives
    peers.push_back({"a" + std::to_string(i), true});
    peers.push_back({"b" + std::to_string(i), true});
    text +=
        (i ? " & " : "") + std::string("(a") + std::to_string(i) + " | b" + std::to_string(i) + ")";
  }
  const SiteView view("here", peers);
  auto scope = parse_scope(text);
  ASSERT_TRUE(scope);
  auto plan = evaluate(*scope, view, {"pods", ""});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, errc::too_many_alternatives);
}

TEST(ScopePlan, AcceptsTheLargestScopeOfDistinctSites) {
  std::vector<SiteView::Site> peers;
  std::string text;
  for (std::size_t i = 0; i < kMaxSites; ++i) {
    peers.push_back({"s" + std::to_string(i), true});
    text += (i ? "|" : "") + std::string("s") + std::to_string(i);
  }
  const SiteView view("here", peers);
  auto scope = parse_scope(text);
  ASSERT_TRUE(scope);
  auto plan = evaluate(*scope, view, {"pods", ""});
  ASSERT_TRUE(plan) << plan.error().render();
  EXPECT_EQ(plan->alternatives.size(), kMaxSites);
}

TEST(SiteView, LocalSiteIsAlwaysKnownAndReachable) {
  const SiteView view("paris", {{"paris", false}, {"nantes", true}, {"nantes", false}});
  ASSERT_NE(view.find("paris"), nullptr);
  EXPECT_TRUE(view.find("paris")->reachable);
  EXPECT_EQ(view.sites().size(), 2u);
  EXPECT_TRUE(view.find("nantes")->reachable);  // the first entry wins
  EXPECT_EQ(view.find("lyon"), nullptr);
}

TEST(ScopePlan, DescribeMarksLocalAndUnreachableSites) {
  const SiteView view("paris", {{"nantes", false}, {"rennes", true}});
  EXPECT_EQ(describe(plan_of(". & (nantes | rennes)", view)),
            "1. paris (here) + nantes (unreachable)\n2. paris (here) + rennes\n");
  EXPECT_EQ(describe(plan_of("rennes", view)), "rennes\n");
}

}  // namespace
}  // namespace archipel::dsl
