// Reading Kubernetes requests the way kube-apiserver does, and finding their scope.

#include "archipel/proxy/request.hpp"

#include <gtest/gtest.h>

namespace archipel::proxy {
namespace {

TEST(Classify, ReadsCoreAndGroupResources) {
  const RequestInfo list = classify("GET", "/api/v1/namespaces/team-a/pods", false);
  EXPECT_EQ(list.verb, Verb::kList);
  EXPECT_EQ(list.group, "");
  EXPECT_EQ(list.version, "v1");
  EXPECT_EQ(list.resource, "pods");
  EXPECT_EQ(list.namespace_, "team-a");
  EXPECT_EQ(list.name, "");

  const RequestInfo get = classify("GET", "/apis/apps/v1/namespaces/a/deployments/web", false);
  EXPECT_EQ(get.verb, Verb::kGet);
  EXPECT_EQ(get.group, "apps");
  EXPECT_EQ(get.resource, "deployments");
  EXPECT_EQ(get.name, "web");
}

TEST(Classify, VerbsFollowMethodNameAndWatch) {
  EXPECT_EQ(classify("GET", "/api/v1/pods", true).verb, Verb::kWatch);
  EXPECT_EQ(classify("POST", "/api/v1/namespaces/a/configmaps", false).verb, Verb::kCreate);
  EXPECT_EQ(classify("PUT", "/api/v1/namespaces/a/configmaps/x", false).verb, Verb::kUpdate);
  EXPECT_EQ(classify("PATCH", "/api/v1/namespaces/a/configmaps/x", false).verb, Verb::kPatch);
  EXPECT_EQ(classify("DELETE", "/api/v1/namespaces/a/configmaps/x", false).verb, Verb::kDelete);
  EXPECT_EQ(classify("DELETE", "/api/v1/namespaces/a/configmaps", false).verb,
            Verb::kDeleteCollection);
  EXPECT_EQ(classify("OPTIONS", "/api/v1/pods", false).verb, Verb::kOther);
}

TEST(Classify, NamespacesAreResourcesAndHoldResources) {
  const RequestInfo ns = classify("GET", "/api/v1/namespaces/team-a", false);
  EXPECT_EQ(ns.resource, "namespaces");
  EXPECT_EQ(ns.name, "team-a");
  EXPECT_EQ(ns.namespace_, "team-a");
  const RequestInfo status = classify("PUT", "/api/v1/namespaces/team-a/status", false);
  EXPECT_EQ(status.resource, "namespaces");
  EXPECT_EQ(status.subresource, "status");
  EXPECT_EQ(classify("GET", "/api/v1/namespaces", false).verb, Verb::kList);
}

TEST(Classify, SubresourcesAndNonResourcePaths) {
  const RequestInfo log = classify("GET", "/api/v1/namespaces/a/pods/web/log", false);
  EXPECT_EQ(log.resource, "pods");
  EXPECT_EQ(log.name, "web");
  EXPECT_EQ(log.subresource, "log");
  for (const char* path :
       {"/api", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/openapi/v2", "/"}) {
    const RequestInfo info = classify("GET", path, false);
    EXPECT_FALSE(info.is_resource()) << path;
  }
  EXPECT_EQ(classify("GET", "/apis/apps/v1", false).version, "v1");
}

TEST(PathScope, TakesTheDecodedExpressionAndKeepsTheRest) {
  std::string target = "/scope/paris%20%26%20nantes/api/v1/pods?limit=500";
  auto scope = take_path_scope(target);
  ASSERT_TRUE(scope);
  ASSERT_TRUE(scope->has_value());
  EXPECT_EQ(**scope, "paris & nantes");
  EXPECT_EQ(target, "/api/v1/pods?limit=500");

  std::string bare = "/scope/paris";
  ASSERT_TRUE(take_path_scope(bare));
  EXPECT_EQ(bare, "/");
  std::string query = "/scope/paris?x=1";
  ASSERT_TRUE(take_path_scope(query));
  EXPECT_EQ(query, "/?x=1");
}

TEST(PathScope, LeavesOtherTargetsAlone) {
  std::string target = "/api/v1/scope/pods";
  auto scope = take_path_scope(target);
  ASSERT_TRUE(scope);
  EXPECT_FALSE(scope->has_value());
  EXPECT_EQ(target, "/api/v1/scope/pods");
}

TEST(PathScope, RejectsAMissingExpressionOrBadEncoding) {
  std::string empty = "/scope//api/v1/pods";
  auto e = take_path_scope(empty);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("without an expression"), std::string::npos);
  std::string bad = "/scope/paris%2/api";
  auto b = take_path_scope(bad);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("percent-encoding"), std::string::npos);
}

TEST(Query, ReadsSetsAndRemovesParameters) {
  const std::string t = "/api/v1/pods?limit=500&resourceVersion=12&watch=1";
  EXPECT_EQ(query_param(t, "resourceVersion"), "12");
  EXPECT_EQ(query_param(t, "missing"), std::nullopt);
  EXPECT_EQ(with_query_param(t, "resourceVersion", "a b/c"),
            "/api/v1/pods?limit=500&watch=1&resourceVersion=a%20b%2Fc");
  EXPECT_EQ(query_param(with_query_param(t, "continue", "x=y+z"), "continue"), "x=y+z");
  EXPECT_EQ(query_param("/p?a=b+c%21", "a"), "b c!");
  EXPECT_EQ(with_query_param("/api/v1/pods?watch=1", "watch", std::nullopt), "/api/v1/pods");
  EXPECT_EQ(with_query_param("/api/v1/pods", "limit", "5"), "/api/v1/pods?limit=5");
}

TEST(AnnotationScope, ReadsTheAnnotationOfAnObject) {
  EXPECT_EQ(
      annotation_scope(
          R"({"metadata":{"name":"x","annotations":{"archipel.io/scope":"paris & nantes"}}})"),
      "paris & nantes");
  EXPECT_EQ(annotation_scope(R"({"metadata":{"name":"x"}})"), std::nullopt);
  EXPECT_EQ(annotation_scope("not json"), std::nullopt);
  EXPECT_EQ(annotation_scope(R"({"metadata":{"annotations":{"archipel.io/scope":3}}})"),
            std::nullopt);
}

TEST(Headers, ForwardWhatShapesTheAnswerOnly) {
  EXPECT_TRUE(forwarded_request_header("Accept"));
  EXPECT_TRUE(forwarded_request_header("content-type"));
  EXPECT_FALSE(forwarded_request_header("Authorization"));
  EXPECT_FALSE(forwarded_request_header("Accept-Encoding"));
  EXPECT_FALSE(forwarded_request_header("Connection"));
  EXPECT_TRUE(forwarded_response_header("Warning"));
  EXPECT_FALSE(forwarded_response_header("Transfer-Encoding"));
  EXPECT_FALSE(forwarded_response_header("content-length"));
}

}  // namespace
}  // namespace archipel::proxy
