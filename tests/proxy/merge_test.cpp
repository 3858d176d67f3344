// Merging several sites' answers into one Kubernetes answer.

#include "archipel/proxy/merge.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace archipel::proxy {
namespace {

namespace json = boost::json;

SiteAnswer ok(std::string site, std::string body) {
  return SiteAnswer{std::move(site), 200, {{"Content-Type", "application/json"}}, std::move(body)};
}

std::string site_of(const json::value& item) {
  return std::string(item.at("metadata").at("annotations").at("archipel.io/site").as_string());
}

TEST(Composite, RoundTripsAndRejectsForeignTokens) {
  const SiteValues v{{"paris", "12"}, {"nantes", "ab+/="}};
  const std::string token = encode_composite(v);
  EXPECT_TRUE(is_composite(token));
  auto back = decode_composite(token);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
  EXPECT_FALSE(is_composite("12345"));
  EXPECT_FALSE(decode_composite("12345"));
  EXPECT_FALSE(decode_composite("arc1.!!!"));
  EXPECT_FALSE(decode_composite("arc1.bm90IGpzb24"));  // "not json"
}

TEST(MergeLists, ConcatenatesItemsWithTheirSiteAndACompositeVersion) {
  std::vector<SiteAnswer> answers = {
      ok("paris", R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},
                      "items":[{"metadata":{"name":"a"}}]})"),
      ok("nantes", R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9",
                       "continue":"next"},"items":[{"metadata":{"name":"b"}},
                       {"metadata":{"name":"c"}}]})")};
  std::vector<std::string> warnings;
  const Merged merged = merge_lists(answers, warnings);
  EXPECT_TRUE(warnings.empty());
  const json::value list = json::parse(merged.body);
  EXPECT_EQ(list.at("kind"), "PodList");
  const json::array& items = list.at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(site_of(items[0]), "paris");
  EXPECT_EQ(site_of(items[2]), "nantes");
  auto versions = decode_composite(list.at("metadata").at("resourceVersion").as_string());
  ASSERT_TRUE(versions);
  EXPECT_EQ(*versions, (SiteValues{{"paris", "7"}, {"nantes", "9"}}));
  auto continues = decode_composite(list.at("metadata").at("continue").as_string());
  ASSERT_TRUE(continues);
  EXPECT_EQ(*continues, (SiteValues{{"nantes", "next"}}));  // paris listed everything
}

TEST(MergeLists, TablesGetASiteColumnAndCell) {
  std::vector<SiteAnswer> answers = {
      ok("paris", R"({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},
                      "columnDefinitions":[{"name":"Name"}],
                      "rows":[{"cells":["a"],"object":{"metadata":{"name":"a"}}}]})"),
      ok("nantes", R"({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},
                       "columnDefinitions":[{"name":"Name"}],"rows":[{"cells":["b"]}]})")};
  std::vector<std::string> warnings;
  const json::value table = json::parse(merge_lists(answers, warnings).body);
  const json::array& columns = table.at("columnDefinitions").as_array();
  ASSERT_EQ(columns.size(), 2u);
  EXPECT_EQ(columns[0].at("name"), "Site");
  const json::array& rows = table.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("cells").as_array()[0], "paris");
  EXPECT_EQ(rows[1].at("cells").as_array()[0], "nantes");
  EXPECT_EQ(rows[1].at("cells").as_array()[1], "b");
  EXPECT_EQ(site_of(rows[0].at("object")), "paris");
}

TEST(MergeLists, KeepsDeeplyNestedItems) {
  std::string deep = "1";
  for (int i = 0; i < 100; ++i) {
    deep = R"({"x":)" + deep + "}";
  }
  std::vector<SiteAnswer> answers = {
      ok("paris", R"({"kind":"List","items":[{"metadata":{"name":"a"},"spec":)" + deep + "}]}"),
      ok("nantes", R"({"kind":"List","items":[]})")};
  std::vector<std::string> warnings;
  const Merged merged = merge_lists(answers, warnings);
  EXPECT_TRUE(warnings.empty());
  json::parse_options options;
  options.max_depth = 512;
  const json::value list = json::parse(merged.body, {}, options);
  EXPECT_EQ(list.at("items").as_array().size(), 1u);
}

TEST(MergeLists, ReportsAnswersThatAreNotLists) {
  std::vector<SiteAnswer> answers = {ok("paris", R"({"kind":"PodList","items":[]})"),
                                     ok("nantes", "garbage")};
  std::vector<std::string> warnings;
  const Merged merged = merge_lists(answers, warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("nantes"), std::string::npos);
  EXPECT_EQ(json::parse(merged.body).at("items").as_array().size(), 0u);
}

TEST(MergeGets, MakesAListOfEachSitesObject) {
  std::vector<SiteAnswer> answers = {
      ok("paris", R"({"kind":"Pod","metadata":{"name":"web"}})"),
      ok("nantes", R"({"kind":"Pod","metadata":{"name":"web","annotations":{"x":"y"}}})")};
  std::vector<std::string> warnings;
  const json::value list = json::parse(merge_gets(answers, warnings).body);
  EXPECT_EQ(list.at("kind"), "List");
  const json::array& items = list.at("items").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(site_of(items[0]), "paris");
  EXPECT_EQ(site_of(items[1]), "nantes");
  EXPECT_EQ(items[1].at("metadata").at("annotations").at("x"), "y");
}

TEST(MergeGets, GivesTheObjectItselfWhenOneSiteHasIt) {
  std::vector<SiteAnswer> answers = {ok("nantes", R"({"kind":"Pod","metadata":{"name":"web"}})")};
  std::vector<std::string> warnings;
  const json::value pod = json::parse(merge_gets(answers, warnings).body);
  EXPECT_EQ(pod.at("kind"), "Pod");
  EXPECT_EQ(site_of(pod), "nantes");
}

TEST(WatchEvents, CarryTheirSiteAndTheCompositeVersionSoFar) {
  SiteValues versions{{"nantes", "40"}};
  const std::string line = rewrite_watch_event(
      R"({"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"12"}}})",
      "paris", versions);
  EXPECT_EQ(versions, (SiteValues{{"nantes", "40"}, {"paris", "12"}}));
  ASSERT_EQ(line.back(), '\n');
  const json::value event = json::parse(line);
  EXPECT_EQ(event.at("type"), "ADDED");
  EXPECT_EQ(site_of(event.at("object")), "paris");
  auto rv = decode_composite(event.at("object").at("metadata").at("resourceVersion").as_string());
  ASSERT_TRUE(rv);
  EXPECT_EQ(*rv, versions);
  EXPECT_EQ(rewrite_watch_event("not an event", "paris", versions), "not an event");
}

TEST(Warnings, AreQuotedKubernetesWarnings) {
  EXPECT_EQ(warning_header("rennes: unreachable"), R"(299 - "rennes: unreachable")");
  EXPECT_EQ(warning_header("say \"hi\"\n"), R"(299 - "say \"hi\"")");
}

TEST(StatusMessage, ReadsTheStatusOrFallsBackToTheCode) {
  EXPECT_EQ(status_message(SiteAnswer{"p", 404, {}, R"({"kind":"Status","message":"gone"})"}),
            "gone");
  EXPECT_EQ(status_message(SiteAnswer{"p", 502, {}, "<html>"}), "HTTP 502");
}

}  // namespace
}  // namespace archipel::proxy
