// What the object CRDT materialises is what Kubernetes accepts: the merged objects of random
// histories (concurrent edits, conflicts annotated, deletes and re-creates) are created in the
// embedded cluster, then updated there as a site's bridge would.

#include "archipel/cluster/api.hpp"
#include "crdt/history.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace archipel::cluster {
namespace {

namespace json = boost::json;

class MaterialisedObjects : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("archipel-crdt-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    auto s = ObjectStore::open(dir_);
    ASSERT_TRUE(s) << s.error();
    store_ = std::move(*s);
    api_ = std::make_unique<KubeApi>(*store_, KubeApi::Options{});
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  ApiResponse call(const std::string& method, const std::string& target, const std::string& body) {
    ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.accept = "application/json";
    req.content_type = "application/json";
    ApiResult r = api_->handle(req);
    return std::holds_alternative<ApiResponse>(r) ? std::get<ApiResponse>(r) : ApiResponse{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<KubeApi> api_;
};

bool has_containers(const json::object& deployment) {
  const json::value* spec = deployment.if_contains("spec");
  const json::value* containers = nullptr;
  if (spec != nullptr && spec->is_object()) {
    if (const json::value* tmpl = spec->as_object().if_contains("template")) {
      if (const json::value* pod = tmpl->as_object().if_contains("spec")) {
        containers = pod->as_object().if_contains("containers");
      }
    }
  }
  return containers != nullptr && containers->is_array() && !containers->as_array().empty();
}

TEST_F(MaterialisedObjects, AreAcceptedByKubernetes) {
  ASSERT_EQ(call("POST", "/api/v1/namespaces",
                 R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}})")
                .status,
            201);
  const std::string collection = "/apis/apps/v1/namespaces/team-a/deployments";
  int checked = 0;
  for (unsigned seed = 1; seed <= 20; ++seed) {
    const crdt::history::History h = crdt::history::run_history(seed, 3, 200);
    const std::string name = "web-" + std::to_string(seed);
    bool created = false;
    for (const crdt::history::Replica& r : h.replicas) {
      std::optional<json::object> shown = r.state.materialize();
      // Absent (deleted), or left without containers by two concurrent removals: valid edits
      // that merge into an object Kubernetes refuses; the bridge's business, not the CRDT's.
      if (!shown || !has_containers(*shown)) {
        continue;
      }
      (*shown)["metadata"].as_object()["name"] = name;
      const std::string body = json::serialize(*shown);
      const ApiResponse answer =
          created ? call("PUT", collection + "/" + name, body) : call("POST", collection, body);
      EXPECT_EQ(answer.status, created ? 200 : 201) << body << "\n" << answer.body;
      created = true;
      ++checked;
    }
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace archipel::cluster
