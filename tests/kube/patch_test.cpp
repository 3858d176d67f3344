#include "archipel/kube/patch.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace archipel::kube {
namespace {

using boost::json::parse;
using boost::json::serialize;

std::string merge(const char* target, const char* patch) {
  return serialize(apply_merge_patch(parse(target), parse(patch)));
}

std::string json_patch(const char* target, const char* patch) {
  auto r = apply_json_patch(parse(target), parse(patch));
  return r ? serialize(*r) : "error: " + r.error();
}

std::string smp(const char* target, const char* patch, const char* kind = "Pod") {
  auto r = apply_strategic_merge_patch(parse(target), parse(patch), kind);
  return r ? serialize(*r) : "error: " + r.error();
}

TEST(MergePatch, FollowsRfc7386) {
  EXPECT_EQ(merge(R"({"a":"b","c":{"d":"e","f":"g"}})", R"({"a":"z","c":{"f":null}})"),
            R"({"a":"z","c":{"d":"e"}})");
  EXPECT_EQ(merge(R"({"a":[1,2]})", R"({"a":[3]})"), R"({"a":[3]})");
  EXPECT_EQ(merge(R"({"a":"b"})", R"({"b":{"c":null}})"), R"({"a":"b","b":{}})");
  EXPECT_EQ(merge(R"({"a":"b"})", R"(["c"])"), R"(["c"])");
}

TEST(JsonPatch, AppliesEveryOperation) {
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"add","path":"/b","value":2}])"),
            R"({"a":1,"b":2})");
  EXPECT_EQ(json_patch(R"({"a":[1,3]})", R"([{"op":"add","path":"/a/1","value":2}])"),
            R"({"a":[1,2,3]})");
  EXPECT_EQ(json_patch(R"({"a":[1]})", R"([{"op":"add","path":"/a/-","value":2}])"),
            R"({"a":[1,2]})");
  EXPECT_EQ(json_patch(R"({"a":1,"b":2})", R"([{"op":"remove","path":"/a"}])"), R"({"b":2})");
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"replace","path":"/a","value":3}])"), R"({"a":3})");
  EXPECT_EQ(json_patch(R"({"a":{"b":1}})", R"([{"op":"move","from":"/a/b","path":"/c"}])"),
            R"({"a":{},"c":1})");
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"copy","from":"/a","path":"/b"}])"),
            R"({"a":1,"b":1})");
  EXPECT_EQ(json_patch(R"({"a/b":1})", R"([{"op":"test","path":"/a~1b","value":1}])"),
            R"({"a/b":1})");
}

TEST(JsonPatch, FailsWithoutPartialEffectVisibleToTheCaller) {
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"test","path":"/a","value":2}])"),
            "error: test /a: test failed");
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"remove","path":"/b"}])"),
            "error: remove /b: the path does not exist");
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"replace","path":"/x/y","value":1}])"),
            "error: replace /x/y: the path does not exist");
  EXPECT_EQ(json_patch(R"({"a":1})", R"([{"op":"frobnicate","path":"/a"}])"),
            "error: unknown JSON patch operation \"frobnicate\"");
  EXPECT_EQ(json_patch(R"({"a":1})", R"({"op":"add"})"),
            "error: a JSON patch must be an array of operations");
  EXPECT_EQ(json_patch(R"({"a":[1]})", R"([{"op":"add","path":"/a/5","value":1}])"),
            "error: add /a/5: invalid array index '5'");
}

TEST(StrategicMergePatch, MergesContainersByName) {
  EXPECT_EQ(smp(R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"}]}})",
                R"({"spec":{"containers":[{"name":"b","image":"z"}]}})"),
            R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"z"}]}})");
}

TEST(StrategicMergePatch, MergesDeploymentTemplateEnvByName) {
  EXPECT_EQ(
      smp(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"1"}]}]}}}})",
          R"({"spec":{"template":{"spec":{"containers":[{"name":"a","env":[{"name":"Y","value":"2"}]}]}}}})",
          "Deployment"),
      R"({"spec":{"template":{"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}]}]}}}})");
}

TEST(StrategicMergePatch, DeletesListElementsWithPatchDelete) {
  EXPECT_EQ(smp(R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
                R"({"spec":{"containers":[{"name":"a","$patch":"delete"}]}})"),
            R"({"spec":{"containers":[{"name":"b"}]}})");
}

TEST(StrategicMergePatch, ReplacesListsWithoutMergeKeys) {
  EXPECT_EQ(
      smp(R"({"spec":{"tolerations":[{"key":"a"}]}})", R"({"spec":{"tolerations":[{"key":"b"}]}})"),
      R"({"spec":{"tolerations":[{"key":"b"}]}})");
}

TEST(StrategicMergePatch, HonoursSetElementOrder) {
  EXPECT_EQ(smp(R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
                R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}})"),
            R"({"spec":{"containers":[{"name":"b"},{"name":"a"}]}})");
}

TEST(StrategicMergePatch, MergesFinalizersAsASetAndDeletesFromPrimitiveLists) {
  EXPECT_EQ(smp(R"({"metadata":{"finalizers":["a","b"]}})",
                R"({"metadata":{"finalizers":["b","c"]}})", "ConfigMap"),
            R"({"metadata":{"finalizers":["a","b","c"]}})");
  EXPECT_EQ(smp(R"({"metadata":{"finalizers":["a","b"]}})",
                R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})", "ConfigMap"),
            R"({"metadata":{"finalizers":["b"]}})");
}

TEST(StrategicMergePatch, ReplacesMapsWithPatchReplaceAndNullDeletes) {
  EXPECT_EQ(
      smp(R"({"data":{"a":"1","b":"2"}})", R"({"data":{"$patch":"replace","c":"3"}})", "ConfigMap"),
      R"({"data":{"c":"3"}})");
  EXPECT_EQ(smp(R"({"data":{"a":"1","b":"2"}})", R"({"data":{"a":null}})", "ConfigMap"),
            R"({"data":{"b":"2"}})");
}

TEST(StrategicMergePatch, MergesServicePortsByPort) {
  EXPECT_EQ(smp(R"({"spec":{"ports":[{"port":80,"name":"http"},{"port":443}]}})",
                R"({"spec":{"ports":[{"port":80,"name":"web"}]}})", "Service"),
            R"({"spec":{"ports":[{"port":80,"name":"web"},{"port":443}]}})");
}

}  // namespace
}  // namespace archipel::kube
