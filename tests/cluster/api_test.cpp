// The embedded cluster's API semantics, without sockets: requests straight into KubeApi over a
// real store in a temporary directory.

#include "archipel/cluster/api.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <random>

namespace archipel::cluster {
namespace {

namespace json = boost::json;

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("archipel-test-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class KubeApiTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    api_.reset();
    store_.reset();
    auto s = ObjectStore::open(dir_.path());
    ASSERT_TRUE(s) << s.error();
    store_ = std::move(*s);
    api_ = std::make_unique<KubeApi>(*store_, KubeApi::Options{});
  }

  ApiResponse call(const std::string& method, const std::string& target,
                   const std::string& body = "", const std::string& accept = "application/json") {
    ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.accept = accept;
    req.content_type = body.empty() ? "" : "application/json";
    ApiResult r = api_->handle(req);
    EXPECT_TRUE(std::holds_alternative<ApiResponse>(r)) << target;
    return std::holds_alternative<ApiResponse>(r) ? std::get<ApiResponse>(r) : ApiResponse{};
  }

  static json::object parse(const ApiResponse& r) { return json::parse(r.body).as_object(); }

  ApiResponse create_configmap(const std::string& ns, const std::string& name,
                               const std::string& labels = "{}") {
    return call("POST", "/api/v1/namespaces/" + ns + "/configmaps",
                R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
                    R"(","labels":)" + labels + R"(},"data":{"k":"v"}})");
  }

  void create_namespace(const std::string& name) {
    ASSERT_EQ(
        call("POST", "/api/v1/namespaces",
             R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + name + R"("}})")
            .status,
        201);
  }

  // A ConfigMap owned by the ConfigMap "owner" with `owner_uid`.
  static std::string owned_configmap(const std::string& name, const std::string& owner_uid) {
    return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
           R"(","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":")" +
           owner_uid + R"("}]}})";
  }

  static std::string rv_of(const json::object& o) {
    return std::string(o.at("metadata").at("resourceVersion").as_string());
  }

  TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<KubeApi> api_;
};

TEST_F(KubeApiTest, DiscoveryListsServedResourcesWithVerbsAndShortNames) {
  const json::object core = parse(call("GET", "/api/v1"));
  EXPECT_EQ(core.at("kind"), "APIResourceList");
  bool found = false;
  for (const json::value& r : core.at("resources").as_array()) {
    if (r.at("name") == "configmaps") {
      found = true;
      EXPECT_EQ(r.at("kind"), "ConfigMap");
      EXPECT_EQ(r.at("namespaced"), true);
      EXPECT_EQ(json::serialize(r.at("shortNames")), R"(["cm"])");
      EXPECT_EQ(json::serialize(r.at("verbs")),
                R"(["create","delete","deletecollection","get","list","patch","update","watch"])");
    }
  }
  EXPECT_TRUE(found);
  const json::object groups = parse(call("GET", "/apis"));
  EXPECT_EQ(groups.at("groups").as_array().at(0).at("name"), "apps");
  EXPECT_EQ(parse(call("GET", "/apis/apps/v1")).at("groupVersion"), "apps/v1");
  EXPECT_EQ(call("GET", "/apis/nope/v1").status, 404);
}

TEST_F(KubeApiTest, BootstrapsTheStandardNamespaces) {
  for (const char* ns : {"default", "kube-system", "kube-public"}) {
    EXPECT_EQ(call("GET", std::string("/api/v1/namespaces/") + ns).status, 200) << ns;
  }
}

TEST_F(KubeApiTest, CreateSetsIdentityAndGetReturnsIt) {
  const ApiResponse created = create_configmap("default", "x");
  ASSERT_EQ(created.status, 201) << created.body;
  const json::object o = parse(created);
  const json::object& m = o.at("metadata").as_object();
  EXPECT_EQ(m.at("namespace"), "default");
  EXPECT_EQ(m.at("uid").as_string().size(), 36u);
  EXPECT_FALSE(m.at("creationTimestamp").as_string().empty());
  EXPECT_EQ(parse(call("GET", "/api/v1/namespaces/default/configmaps/x")), o);
}

TEST_F(KubeApiTest, ResourceVersionIsSiteWideAndMonotonic) {
  const auto a = std::stoull(rv_of(parse(create_configmap("default", "a"))));
  create_namespace("other");
  const auto b = std::stoull(rv_of(parse(create_configmap("other", "b"))));
  EXPECT_GT(b, a + 1);  // the namespace took one in between
}

TEST_F(KubeApiTest, CreateTwiceIsAlreadyExists) {
  ASSERT_EQ(create_configmap("default", "x").status, 201);
  const ApiResponse again = create_configmap("default", "x");
  EXPECT_EQ(again.status, 409);
  const json::object s = parse(again);
  EXPECT_EQ(s.at("kind"), "Status");
  EXPECT_EQ(s.at("reason"), "AlreadyExists");
  EXPECT_EQ(s.at("message"), "configmaps \"x\" already exists");
  EXPECT_EQ(s.at("details").at("name"), "x");
}

TEST_F(KubeApiTest, CreateInMissingNamespaceIsNotFound) {
  const ApiResponse r = create_configmap("nowhere", "x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r).at("message"), "namespaces \"nowhere\" not found");
}

TEST_F(KubeApiTest, MissingNameIsInvalidWithAFieldCause) {
  const ApiResponse r = call("POST", "/api/v1/namespaces/default/configmaps",
                             R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{}})");
  EXPECT_EQ(r.status, 422);
  const json::object s = parse(r);
  EXPECT_EQ(s.at("reason"), "Invalid");
  EXPECT_EQ(s.at("details").at("causes").at(0).at("field"), "metadata.name");
  EXPECT_EQ(s.at("details").at("kind"), "ConfigMap");
}

TEST_F(KubeApiTest, GenerateNameGetsARandomSuffix) {
  const ApiResponse r =
      call("POST", "/api/v1/namespaces/default/configmaps",
           R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"generateName":"job-"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string name(parse(r).at("metadata").at("name").as_string());
  EXPECT_EQ(name.size(), 9u);
  EXPECT_TRUE(name.starts_with("job-"));
}

TEST_F(KubeApiTest, BadInputIsRejectedAndNothingIsStored) {
  const auto before = store_->resource_version();
  struct Case {
    std::string body;
    int status;
  } cases[] = {
      {"{not json", 400},
      {"[1,2]", 400},
      {R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}})", 400},
      {R"({"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}})", 400},
      {R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}})", 422},
      {R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":1}})", 400},
      {R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a b":"1"}})", 422},
      {R"({"apiVersion":"v1","kind":"ConfigMap","metadata":"x"})", 400},
      {std::string(3 * 1024 * 1024 + 1, ' '), 413},
  };
  for (const Case& c : cases) {
    const ApiResponse r = call("POST", "/api/v1/namespaces/default/configmaps", c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80) << " -> " << r.body;
    EXPECT_EQ(parse(r).at("kind"), "Status");
  }
  EXPECT_EQ(store_->resource_version(), before);
}

TEST_F(KubeApiTest, UnsupportedContentTypeIs415) {
  ApiRequest req;
  req.method = "POST";
  req.target = "/api/v1/namespaces/default/configmaps";
  req.content_type = "application/vnd.kubernetes.protobuf";
  req.body = "x";
  EXPECT_EQ(std::get<ApiResponse>(api_->handle(req)).status, 415);
}

TEST_F(KubeApiTest, UnknownPathsAndVerbsGetStatusErrors) {
  EXPECT_EQ(call("GET", "/api/v1/widgets").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/configmaps/x").status, 404);  // namespaced, no namespace
  EXPECT_EQ(call("PUT", "/api/v1/namespaces/default/configmaps").status, 405);
  EXPECT_EQ(parse(call("PUT", "/api/v1/namespaces/default/configmaps")).at("reason"),
            "MethodNotAllowed");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/x").status, 404);
}

TEST_F(KubeApiTest, UpdateWithStaleResourceVersionIsConflict) {
  json::object o = parse(create_configmap("default", "x"));
  const std::string rv1 = rv_of(o);
  o["data"].as_object()["k"] = "v2";
  const ApiResponse ok = call("PUT", "/api/v1/namespaces/default/configmaps/x", json::serialize(o));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(rv_of(parse(ok)), rv1);
  o["data"].as_object()["k"] = "v3";  // still carries rv1
  const ApiResponse stale =
      call("PUT", "/api/v1/namespaces/default/configmaps/x", json::serialize(o));
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(parse(stale).at("reason"), "Conflict");
  EXPECT_EQ(parse(call("GET", "/api/v1/namespaces/default/configmaps/x")).at("data").at("k"), "v2");
}

TEST_F(KubeApiTest, UpdateKeepsIdentityAndANoOpKeepsTheResourceVersion) {
  json::object o = parse(create_configmap("default", "x"));
  const json::value uid = o.at("metadata").at("uid");
  json::object changed = o;
  changed["metadata"].as_object()["uid"] = "forged";
  changed["data"].as_object()["k"] = "v2";
  const json::object after =
      parse(call("PUT", "/api/v1/namespaces/default/configmaps/x", json::serialize(changed)));
  EXPECT_EQ(after.at("metadata").at("uid"), uid);
  const json::object again =
      parse(call("PUT", "/api/v1/namespaces/default/configmaps/x", json::serialize(after)));
  EXPECT_EQ(rv_of(again), rv_of(after));
}

TEST_F(KubeApiTest, UpdateNameMustMatchTheUrl) {
  json::object o = parse(create_configmap("default", "x"));
  EXPECT_EQ(call("PUT", "/api/v1/namespaces/default/configmaps/y", json::serialize(o)).status, 400);
}

TEST_F(KubeApiTest, ListFiltersByLabelsAndReturnsItsResourceVersion) {
  create_configmap("default", "a", R"({"app":"web"})");
  create_configmap("default", "b", R"({"app":"db"})");
  const json::object list =
      parse(call("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dweb"));
  EXPECT_EQ(list.at("kind"), "ConfigMapList");
  ASSERT_EQ(list.at("items").as_array().size(), 1u);
  EXPECT_EQ(list.at("items").at(0).at("metadata").at("name"), "a");
  EXPECT_EQ(list.at("metadata").at("resourceVersion"),
            json::value(std::to_string(store_->resource_version())));
  EXPECT_EQ(call("GET", "/api/v1/configmaps?labelSelector=app%20in%20(").status, 400);
}

TEST_F(KubeApiTest, ListAcrossNamespacesAndByFieldSelector) {
  create_namespace("other");
  create_configmap("default", "a");
  create_configmap("other", "b");
  EXPECT_EQ(parse(call("GET", "/api/v1/configmaps")).at("items").as_array().size(), 2u);
  const json::object list =
      parse(call("GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother"));
  ASSERT_EQ(list.at("items").as_array().size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/configmaps?fieldSelector=data.k%3Dv").status, 400);
}

TEST_F(KubeApiTest, PagedListIsConsistentAcrossWrites) {
  for (int i = 0; i < 5; ++i) {
    create_configmap("default", "cm-" + std::to_string(i));
  }
  json::object page = parse(call("GET", "/api/v1/namespaces/default/configmaps?limit=2"));
  const json::value rv = page.at("metadata").at("resourceVersion");
  std::vector<std::string> names;
  create_configmap("default", "cm-9");  // after the first page: not in this list
  for (;;) {
    for (const json::value& item : page.at("items").as_array()) {
      names.emplace_back(item.at("metadata").at("name").as_string());
    }
    const json::value* next = page.at("metadata").as_object().if_contains("continue");
    if (next == nullptr) {
      break;
    }
    EXPECT_EQ(page.at("metadata").at("resourceVersion"), rv);
    page = parse(call("GET", "/api/v1/namespaces/default/configmaps?limit=2&continue=" +
                                 std::string(next->as_string())));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cm-0", "cm-1", "cm-2", "cm-3", "cm-4"}));
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps?limit=2&continue=garbage").status,
            400);
}

TEST_F(KubeApiTest, WatchFromAResourceVersionReplaysWhatFollowed) {
  const std::string rv = rv_of(parse(create_configmap("default", "a")));
  create_configmap("default", "b");
  ASSERT_EQ(call("DELETE", "/api/v1/namespaces/default/configmaps/a").status, 200);
  ApiRequest req;
  req.method = "GET";
  req.target = "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=" + rv;
  ApiResult r = api_->handle(req);
  ASSERT_TRUE(std::holds_alternative<WatchRequest>(r));
  std::vector<std::string> live;
  auto sub = api_->start_watch(std::get<WatchRequest>(r),
                               [&](const ObjectEvent& e) { live.push_back(e.name); });
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->backlog.size(), 2u);
  EXPECT_EQ(sub->backlog[0].type, EventType::kAdded);
  EXPECT_EQ(sub->backlog[0].name, "b");
  EXPECT_EQ(sub->backlog[1].type, EventType::kDeleted);
  EXPECT_EQ(sub->backlog[1].name, "a");
  create_configmap("default", "c");
  EXPECT_EQ(live, std::vector<std::string>{"c"});
  EXPECT_EQ(KubeApi::encode_event(sub->backlog[1]).rfind("{\"type\":\"DELETED\",\"object\":", 0),
            0u);
}

TEST_F(KubeApiTest, WatchFromBeforeTheHistoryIsGone) {
  create_configmap("default", "a");
  open();  // history starts empty at every open
  ApiRequest req;
  req.method = "GET";
  req.target = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1";
  auto sub =
      api_->start_watch(std::get<WatchRequest>(api_->handle(req)), [](const ObjectEvent&) {});
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, 410);
  EXPECT_EQ(sub.error().reason, "Expired");
}

TEST_F(KubeApiTest, WatchWithoutResourceVersionStartsWithTheCurrentObjects) {
  create_configmap("default", "a", R"({"app":"web"})");
  create_configmap("default", "b", R"({"app":"db"})");
  ApiRequest req;
  req.method = "GET";
  req.target = "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dweb";
  auto sub =
      api_->start_watch(std::get<WatchRequest>(api_->handle(req)), [](const ObjectEvent&) {});
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->backlog.size(), 1u);
  EXPECT_EQ(sub->backlog[0].name, "a");
}

TEST_F(KubeApiTest, DeletingANamespaceDeletesWhatItHolds) {
  create_namespace("team");
  create_configmap("team", "a");
  create_configmap("default", "keep");
  const ApiResponse r = call("DELETE", "/api/v1/namespaces/team");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r).at("status").at("phase"), "Terminating");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/team").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/team/configmaps/a").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/keep").status, 200);
}

TEST_F(KubeApiTest, DeletingAnOwnerDeletesItsDependents) {
  const json::object owner = parse(create_configmap("default", "owner"));
  const std::string uid(owner.at("metadata").at("uid").as_string());
  ASSERT_EQ(
      call("POST", "/api/v1/namespaces/default/configmaps", owned_configmap("dep", uid)).status,
      201);
  ASSERT_EQ(call("DELETE", "/api/v1/namespaces/default/configmaps/owner").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/dep").status, 404);
}

TEST_F(KubeApiTest, ADependentCreatedAfterItsOwnerWasDeletedIsCollected) {
  // A controller that read its owner, then created a dependent after the owner's deletion had
  // already collected the others: the dependent must not stay behind.
  const json::object owner = parse(create_configmap("default", "owner"));
  const std::string uid(owner.at("metadata").at("uid").as_string());
  ASSERT_EQ(call("DELETE", "/api/v1/namespaces/default/configmaps/owner").status, 200);
  ASSERT_EQ(
      call("POST", "/api/v1/namespaces/default/configmaps", owned_configmap("late", uid)).status,
      201);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/late").status, 404);
}

TEST_F(KubeApiTest, ADependentIsKeptWhileItsOwnerLivesAndCollectedWhenItsOwnerUidDangles) {
  const json::object owner = parse(create_configmap("default", "owner"));
  const std::string uid(owner.at("metadata").at("uid").as_string());
  ASSERT_EQ(
      call("POST", "/api/v1/namespaces/default/configmaps", owned_configmap("kept", uid)).status,
      201);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/kept").status, 200);
  // Same name, another incarnation: the reference names the uid, so it dangles.
  ASSERT_EQ(call("POST", "/api/v1/namespaces/default/configmaps",
                 owned_configmap("stale", "00000000-0000-0000-0000-000000000000"))
                .status,
            201);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/stale").status, 404);
}

TEST_F(KubeApiTest, DeletePreconditionMismatchIsConflict) {
  create_configmap("default", "a");
  const ApiResponse r = call("DELETE", "/api/v1/namespaces/default/configmaps/a",
                             R"({"preconditions":{"resourceVersion":"1"}})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/a").status, 200);
}

TEST_F(KubeApiTest, DeleteCollectionHonoursTheSelector) {
  create_configmap("default", "a", R"({"app":"web"})");
  create_configmap("default", "b", R"({"app":"db"})");
  const json::object deleted =
      parse(call("DELETE", "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dweb"));
  EXPECT_EQ(deleted.at("items").as_array().size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/a").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/b").status, 200);
}

TEST_F(KubeApiTest, ObjectsAndResourceVersionSurviveReopening) {
  const auto rv = std::stoull(rv_of(parse(create_configmap("default", "a"))));
  open();
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/a").status, 200);
  EXPECT_GT(std::stoull(rv_of(parse(create_configmap("default", "b")))), rv);
}

TEST_F(KubeApiTest, SecretStringDataIsStoredAsBase64Data) {
  const ApiResponse r = call(
      "POST", "/api/v1/namespaces/default/secrets",
      R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"pw":"hunter2"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const json::object o = parse(r);
  EXPECT_EQ(o.at("data").at("pw"), "aHVudGVyMg==");
  EXPECT_FALSE(o.contains("stringData"));
  EXPECT_EQ(o.at("type"), "Opaque");
}

TEST_F(KubeApiTest, TablesCarryKubernetesColumns) {
  create_configmap("default", "a");
  const json::object t =
      parse(call("GET", "/api/v1/namespaces/default/configmaps", "",
                 "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
  EXPECT_EQ(t.at("kind"), "Table");
  EXPECT_EQ(json::serialize(t.at("columnDefinitions").at(1).at("name")), R"("Data")");
  EXPECT_EQ(t.at("rows").at(0).at("cells").at(0), "a");
  EXPECT_EQ(t.at("rows").at(0).at("cells").at(1), 1);
  EXPECT_EQ(t.at("rows").at(0).at("object").at("kind"), "PartialObjectMetadata");
}

TEST_F(KubeApiTest, HealthEndpointsAnswerOk) {
  for (const char* path : {"/healthz", "/livez", "/readyz"}) {
    const ApiResponse r = call("GET", path);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok");
  }
}

}  // namespace
}  // namespace archipel::cluster
