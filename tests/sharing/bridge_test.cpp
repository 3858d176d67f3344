// Two sites, each with its own embedded cluster served over HTTP, sharing a namespace through
// the bridge: what is written into one site's Kubernetes (as kubectl would, directly) appears
// in the other's, edits come back, deletes cross, and nothing echoes back and forth.

#include "archipel/sharing/bridge.hpp"
#include "archipel/cluster/api.hpp"
#include "archipel/cluster/api_server.hpp"
#include "archipel/cluster/store.hpp"
#include "archipel/proxy/kube_client.hpp"
#include "archipel/sharing/schema.hpp"
#include "archipel/sharing/site_sharing.hpp"
#include "json_canonical.hpp"
#include "peer/two_sites.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <random>

namespace archipel::sharing {
namespace {

namespace json = boost::json;
using peer::eventually;
using peer::run_on;
using namespace std::chrono_literals;

class Site {
 public:
  Site(std::string name, boost::asio::io_context& io, peer::PeerNode& node)
      : name_(std::move(name)),
        dir_(std::filesystem::temp_directory_path() /
             ("archipel-bridge-" + name_ + "-" + std::to_string(std::random_device{}()))),
        io_(io) {
    auto objects = cluster::ObjectStore::open(dir_ / "cluster");
    EXPECT_TRUE(objects) << objects.error();
    objects_ = std::move(*objects);
    api_ = std::make_unique<cluster::KubeApi>(*objects_, cluster::KubeApi::Options{});
    auto server = cluster::ApiServer::start(io, *api_, {});
    EXPECT_TRUE(server) << server.error();
    server_ = std::move(*server);
    auto upstream =
        proxy::Upstream::create(io, {"http://127.0.0.1:" + std::to_string(server_->port())});
    EXPECT_TRUE(upstream) << upstream.error();
    kube_ = proxy::kube_client(std::shared_ptr<proxy::Upstream>(std::move(*upstream)));
    auto records = RecordStore::open(dir_ / "sharing");
    EXPECT_TRUE(records) << records.error();
    records_ = std::move(*records);
    start_sharing(node);
  }

  ~Site() {
    stop_sharing();
    server_->stop();
    std::filesystem::remove_all(dir_);
  }

  // The site's sharing (service and bridge) stops; its cluster and store stay.
  void stop_sharing() { sharing_.reset(); }

  void start_sharing(peer::PeerNode& node) {
    Bridge::Options bo;
    bo.retry = 20ms;
    bo.local_fields = local_fields;
    SharingService::Options so;
    so.site = name_;
    so.tick = 10ms;
    sharing_ = SiteSharing::start(io_, node, *records_, kube_, kube_list_shape, so, bo);
  }

  std::vector<std::string> local_fields;  // for the next start_sharing
  SharingService& service() { return sharing_->service(); }
  const Bridge::Counters& counters() { return sharing_->bridge().counters(); }

  // A request to this site's Kubernetes, as kubectl would make it.
  KubeClient::Reply call(std::string method, std::string target, std::string body = {}) {
    auto r = run_on(io_, kube_->request(std::move(method), std::move(target), std::move(body)));
    EXPECT_TRUE(r && *r) << target;
    return r && *r ? **r : KubeClient::Reply{};
  }
  std::optional<json::object> get(const std::string& target) {
    const KubeClient::Reply r = call("GET", target);
    if (r.status != 200) {
      return std::nullopt;
    }
    return json::parse(r.body).as_object();
  }

 private:
  std::string name_;
  std::filesystem::path dir_;
  boost::asio::io_context& io_;
  std::unique_ptr<cluster::ObjectStore> objects_;
  std::unique_ptr<cluster::KubeApi> api_;
  std::unique_ptr<cluster::ApiServer> server_;
  std::shared_ptr<KubeClient> kube_;
  std::unique_ptr<RecordStore> records_;
  std::unique_ptr<SiteSharing> sharing_;
};

constexpr const char* kConfigMaps = "/api/v1/namespaces/team-a/configmaps";
constexpr const char* kDeployments = "/apis/apps/v1/namespaces/team-a/deployments";

using testing::canonical;

std::string data_of(const std::optional<json::object>& o) {
  return o && o->contains("data") ? json::serialize(canonical(o->at("data"))) : "";
}

class Bridged : public peer::TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    ASSERT_TRUE(eventually([&] { return both(peer::PeerState::kReachable); }));
    paris_site_ = std::make_unique<Site>("paris", io_, *paris_);
    nantes_site_ = std::make_unique<Site>("nantes", io_, *nantes_);
    paris_site_->call("POST", "/api/v1/namespaces",
                      R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}})");
  }
  void TearDown() override {
    paris_site_.reset();
    nantes_site_.reset();
    TwoSites::TearDown();
  }
  std::unique_ptr<Site> paris_site_;
  std::unique_ptr<Site> nantes_site_;
};

TEST_F(Bridged, ANamespaceSharedWithASiteFollowsEditsBothWaysWithoutEchoes) {
  // Made before the namespace is shared: the first list carries it.
  paris_site_->call(
      "POST", kConfigMaps,
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app"},"data":{"color":"red"}})");
  paris_site_->service().share("namespace/team-a", {"nantes"});

  // nantes had no such namespace: it is created with the object.
  ASSERT_TRUE(eventually([&] {
    return data_of(nantes_site_->get(std::string(kConfigMaps) + "/app")) == R"({"color":"red"})";
  }));

  // An edit at nantes comes back to paris; one made later at paris goes to nantes.
  auto app = nantes_site_->get(std::string(kConfigMaps) + "/app");
  ASSERT_TRUE(app);
  (*app)["data"].as_object()["size"] = "xl";
  EXPECT_EQ(
      nantes_site_->call("PUT", std::string(kConfigMaps) + "/app", json::serialize(*app)).status,
      200U);
  ASSERT_TRUE(eventually([&] {
    return data_of(paris_site_->get(std::string(kConfigMaps) + "/app")) ==
           R"({"color":"red","size":"xl"})";
  }));

  // A Deployment, with the defaults paris's cluster gave it, arrives whole.
  paris_site_->call("POST", kDeployments, R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","labels":{"app":"web"}},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},
          "spec":{"containers":[{"name":"web","image":"nginx","ports":[{"containerPort":80}]}]}}}})");
  ASSERT_TRUE(eventually(
      [&] { return nantes_site_->get(std::string(kDeployments) + "/web").has_value(); }));
  auto at_paris = paris_site_->get(std::string(kDeployments) + "/web");
  auto at_nantes = nantes_site_->get(std::string(kDeployments) + "/web");
  ASSERT_TRUE(at_paris && at_nantes);
  EXPECT_EQ(json::serialize(canonical(at_paris->at("spec"))),
            json::serialize(canonical(at_nantes->at("spec"))));

  // A delete crosses too.
  EXPECT_EQ(paris_site_->call("DELETE", std::string(kConfigMaps) + "/app").status, 200U);
  ASSERT_TRUE(eventually([&] { return !nantes_site_->get(std::string(kConfigMaps) + "/app"); }));

  // No echo: once a later marker has arrived, the Deployment was written once at nantes (its
  // resourceVersion has not moved since), and paris wrote nothing back into its own cluster.
  const std::string rv = std::string(at_nantes->at("metadata").at("resourceVersion").as_string());
  paris_site_->call("POST", kConfigMaps,
                    R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"marker"}})");
  ASSERT_TRUE(eventually(
      [&] { return nantes_site_->get(std::string(kConfigMaps) + "/marker").has_value(); }));
  auto later = nantes_site_->get(std::string(kDeployments) + "/web");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->at("metadata").at("resourceVersion").as_string(), rv);
  EXPECT_EQ(paris_site_->counters().writes.load(), 1U);  // nantes's edit of app, nothing else
}

TEST_F(Bridged, AChangeMadeWhileTheBridgeWasNotWatchingIsFoundByTheNextList) {
  paris_site_->call(
      "POST", kConfigMaps,
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app"},"data":{"k":"v"}})");
  paris_site_->service().share("namespace/team-a", {"nantes"});
  ASSERT_TRUE(
      eventually([&] { return nantes_site_->get(std::string(kConfigMaps) + "/app").has_value(); }));

  // paris's sharing stops; meanwhile a user deletes the object in its cluster and creates
  // another; sharing starts again from its store: the first list shows both changes.
  paris_site_->stop_sharing();
  EXPECT_EQ(paris_site_->call("DELETE", std::string(kConfigMaps) + "/app").status, 200U);
  paris_site_->call("POST", kConfigMaps,
                    R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"}})");
  paris_site_->start_sharing(*paris_);
  ASSERT_TRUE(
      eventually([&] { return nantes_site_->get(std::string(kConfigMaps) + "/new").has_value(); }));
  ASSERT_TRUE(eventually([&] { return !nantes_site_->get(std::string(kConfigMaps) + "/app"); }));
}

TEST_F(Bridged, AFieldASiteKeepsToItselfIsNeitherSentNorOverwritten) {
  // As with an autoscaler at each site: spec.replicas is each site's own.
  for (Site* s : {paris_site_.get(), nantes_site_.get()}) {
    s->stop_sharing();
    s->local_fields = {"spec.replicas"};
  }
  paris_site_->start_sharing(*paris_);
  nantes_site_->start_sharing(*nantes_);
  paris_site_->call("POST", kDeployments, R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web"},
      "spec":{"replicas":4,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},
          "spec":{"containers":[{"name":"web","image":"nginx:1"}]}}}})");
  paris_site_->service().share("namespace/team-a", {"nantes"});
  const std::string web = std::string(kDeployments) + "/web";
  ASSERT_TRUE(eventually([&] { return nantes_site_->get(web).has_value(); }));
  auto replicas = [](const std::optional<json::object>& d) {
    return d ? d->at("spec").at("replicas").as_int64() : -1;
  };
  EXPECT_EQ(replicas(nantes_site_->get(web)), 1);  // its cluster's default, not paris's 4

  // nantes scales its copy; paris changes the image: the image crosses, the scales stay.
  auto at_nantes = nantes_site_->get(web);
  (*at_nantes)["spec"].as_object()["replicas"] = 7;
  EXPECT_EQ(nantes_site_->call("PUT", web, json::serialize(*at_nantes)).status, 200U);
  auto at_paris = paris_site_->get(web);
  (*at_paris)["spec"]
      .as_object()["template"]
      .as_object()["spec"]
      .as_object()["containers"]
      .as_array()[0]
      .as_object()["image"] = "nginx:2";
  EXPECT_EQ(paris_site_->call("PUT", web, json::serialize(*at_paris)).status, 200U);
  auto image = [](const std::optional<json::object>& d) {
    return d ? std::string(d->at("spec")
                               .at("template")
                               .at("spec")
                               .at("containers")
                               .at(0)
                               .at("image")
                               .as_string())
             : std::string();
  };
  ASSERT_TRUE(eventually([&] { return image(nantes_site_->get(web)) == "nginx:2"; }));
  EXPECT_EQ(replicas(nantes_site_->get(web)), 7);
  EXPECT_EQ(replicas(paris_site_->get(web)), 4);
}

}  // namespace
}  // namespace archipel::sharing
