#include "archipel/kube/selector.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace archipel::kube {
namespace {

boost::json::object with_labels(const char* labels_json) {
  return boost::json::parse(std::string(R"({"metadata":{"name":"x","labels":)") + labels_json +
                            "}}")
      .as_object();
}

bool selects(const char* selector, const char* labels) {
  auto s = LabelSelector::parse(selector);
  EXPECT_TRUE(s) << s.error();
  return s->matches(with_labels(labels));
}

TEST(LabelSelector, EmptySelectsEverything) {
  EXPECT_TRUE(selects("", "{}"));
  EXPECT_TRUE(LabelSelector::parse("  ")->empty());
}

TEST(LabelSelector, EqualityAndInequality) {
  EXPECT_TRUE(selects("app=web", R"({"app":"web"})"));
  EXPECT_TRUE(selects("app==web", R"({"app":"web"})"));
  EXPECT_FALSE(selects("app=web", R"({"app":"db"})"));
  EXPECT_TRUE(selects("app!=web", R"({"app":"db"})"));
  EXPECT_TRUE(selects("app!=web", R"({})"));  // absent is not equal
  EXPECT_FALSE(selects("app!=web", R"({"app":"web"})"));
}

TEST(LabelSelector, SetBasedRequirements) {
  EXPECT_TRUE(selects("env in (prod, staging)", R"({"env":"staging"})"));
  EXPECT_FALSE(selects("env in (prod,staging)", R"({"env":"dev"})"));
  EXPECT_FALSE(selects("env in (prod)", R"({})"));
  EXPECT_TRUE(selects("env notin (prod)", R"({"env":"dev"})"));
  EXPECT_TRUE(selects("env notin (prod)", R"({})"));
  EXPECT_FALSE(selects("env notin (prod,dev)", R"({"env":"dev"})"));
}

TEST(LabelSelector, ExistenceRequirements) {
  EXPECT_TRUE(selects("tier", R"({"tier":"x"})"));
  EXPECT_FALSE(selects("tier", R"({})"));
  EXPECT_TRUE(selects("!tier", R"({})"));
  EXPECT_FALSE(selects("!tier", R"({"tier":""})"));
}

TEST(LabelSelector, AllRequirementsMustHold) {
  EXPECT_TRUE(selects("app=web,env in (prod),!legacy", R"({"app":"web","env":"prod"})"));
  EXPECT_FALSE(
      selects("app=web,env in (prod),!legacy", R"({"app":"web","env":"prod","legacy":"1"})"));
}

TEST(LabelSelector, AcceptsPrefixedKeys) {
  EXPECT_TRUE(selects("app.kubernetes.io/name=web", R"({"app.kubernetes.io/name":"web"})"));
}

TEST(LabelSelector, RejectsMalformedSelectorsWithTheSelectorQuoted) {
  for (const char* bad :
       {"app=web,", "env in (prod", "env within (a)", "=x", "a b=c", "app=we b", "-app=x"}) {
    auto s = LabelSelector::parse(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().find(bad), std::string::npos) << s.error();
  }
}

TEST(FieldSelector, MatchesSupportedFields) {
  const std::vector<std::string_view> fields = {"metadata.name", "status.phase"};
  auto s = FieldSelector::parse("metadata.name=x,status.phase!=Running", fields);
  ASSERT_TRUE(s) << s.error();
  EXPECT_TRUE(s->matches(
      boost::json::parse(R"({"metadata":{"name":"x"},"status":{"phase":"Pending"}})").as_object()));
  EXPECT_FALSE(s->matches(
      boost::json::parse(R"({"metadata":{"name":"x"},"status":{"phase":"Running"}})").as_object()));
  EXPECT_FALSE(s->matches(boost::json::parse(R"({"metadata":{"name":"y"}})").as_object()));
}

TEST(FieldSelector, RejectsUnsupportedFieldAsKubernetesDoes) {
  auto s = FieldSelector::parse("spec.replicas=3", {"metadata.name"});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "field label not supported: spec.replicas");
}

}  // namespace
}  // namespace archipel::kube
