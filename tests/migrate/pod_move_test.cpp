// Moving a pod between two embedded clusters of this machine with the real CRIU (root): the
// cart, its items only in memory, moves cold and post-copy with every item kept; the pod
// appears at the destination with its identity, run by the destination's runtime, and is gone
// from the source; a move that fails after the restore leaves the source serving.
//
// Skipped without a working CRIU (or root), failed instead under CI=true.

#include "archipel/migrate/pod_move.hpp"

#include "archipel/cluster/api.hpp"
#include "archipel/cluster/pod_runtime.hpp"
#include "archipel/cluster/store.hpp"
#include "eventually.hpp"
#include "migrate/criu_support.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using archipel::testing::eventually;
using testing::http;
using namespace std::chrono_literals;

// An answer, retried for a while: on one machine the port is shared (SO_REUSEPORT) between the
// cart and its other copy for a moment, and a connection the kernel gives to the copy that is
// going away is reset (a client retries).
std::string answer(std::uint16_t port, const std::string& method, const std::string& path) {
  std::string out;
  eventually([&] { return !(out = http(port, method, path)).empty(); });
  return out;
}

// The cart's items, without the request counter.
std::string items(const std::string& cart) {
  return cart.substr(0, cart.find("\"served\""));
}

// A site of this machine: its embedded cluster (store, API, pod runtime), as a PodSite.
class EmbeddedSite final : public PodSite {
 public:
  EmbeddedSite(std::string name, const fs::path& dir) : name_(std::move(name)) {
    auto store = cluster::ObjectStore::open(dir / "store");
    if (!store) {
      ADD_FAILURE() << store.error();
      std::abort();
    }
    store_ = std::move(*store);
    runtime_ = cluster::PodRuntime::start(*store_, {.dir = dir / "pods"});
    cluster::KubeApi::Options o;
    o.log_path = [this](std::string_view ns, std::string_view pod, std::string_view c) {
      return runtime_->log_path(ns, pod, c);
    };
    o.container_running = [this](std::string_view ns, std::string_view pod, std::string_view c) {
      return runtime_->running(ns, pod, c);
    };
    api_ = std::make_unique<cluster::KubeApi>(*store_, o);
  }
  ~EmbeddedSite() override {
    runtime_.reset();
    api_.reset();
    store_.reset();
  }

  std::string name() const override { return name_; }

  cluster::ApiResponse call(const std::string& method, const std::string& target,
                            const std::string& body = {}) {
    return std::get<cluster::ApiResponse>(
        api_->handle({method, target, "application/json", "application/json", body}));
  }

  boost::system::result<json::object, std::string> get_pod(const std::string& ns,
                                                           const std::string& name) override {
    const auto r = call("GET", path(ns, name));
    if (r.status != 200) {
      return std::to_string(r.status) + " " + r.body;
    }
    return json::parse(r.body).as_object();
  }

  boost::system::result<void, std::string> put_pod(const json::object& pod) override {
    const json::object& meta = pod.at("metadata").as_object();
    const std::string ns(meta.at("namespace").as_string());
    const std::string name(meta.at("name").as_string());
    auto current = get_pod(ns, name);
    cluster::ApiResponse r;
    if (!current) {
      r = call("POST", "/api/v1/namespaces/" + ns + "/pods", json::serialize(pod));
    } else {
      json::object next = pod;
      next["metadata"].as_object()["resourceVersion"] =
          current->at("metadata").at("resourceVersion");
      r = call("PUT", path(ns, name), json::serialize(next));
    }
    if (r.status != 200 && r.status != 201) {
      return std::to_string(r.status) + " " + r.body;
    }
    return {};
  }

  boost::system::result<void, std::string> put_pod_status(const std::string& ns,
                                                          const std::string& name,
                                                          const json::object& status) override {
    if (fail_status_) {
      return std::string("refused by the test");
    }
    auto current = get_pod(ns, name);
    if (!current) {
      return current.error();
    }
    (*current)["status"] = status;
    const auto r = call("PUT", path(ns, name) + "/status", json::serialize(*current));
    if (r.status != 200) {
      return std::to_string(r.status) + " " + r.body;
    }
    return {};
  }

  boost::system::result<void, std::string> delete_pod(const std::string& ns,
                                                      const std::string& name) override {
    const auto r = call("DELETE", path(ns, name));
    if (r.status != 200 && r.status != 202 && r.status != 404) {
      return std::to_string(r.status) + " " + r.body;
    }
    return {};
  }

  fs::path log_path(const std::string& ns, const std::string& pod,
                    const std::string& container) const override {
    return runtime_->log_path(ns, pod, container);
  }

  // The pod's running container's pid (0 when none).
  pid_t running_pid(const std::string& name) {
    auto pod = get_pod("default", name);
    if (!pod || !pod->contains("status")) {
      return 0;
    }
    const json::value* list = pod->at("status").as_object().if_contains("containerStatuses");
    if (list == nullptr || list->as_array().empty()) {
      return 0;
    }
    const json::object& cs = list->as_array().front().as_object();
    if (!cs.at("state").as_object().contains("running")) {
      return 0;
    }
    return static_cast<pid_t>(std::stol(std::string(cs.at("containerID").as_string()).substr(11)));
  }

  void refuse_status_updates() { fail_status_ = true; }

 private:
  static std::string path(const std::string& ns, const std::string& name) {
    return "/api/v1/namespaces/" + ns + "/pods/" + name;
  }

  std::string name_;
  std::unique_ptr<cluster::ObjectStore> store_;
  std::unique_ptr<cluster::PodRuntime> runtime_;
  std::unique_ptr<cluster::KubeApi> api_;
  bool fail_status_ = false;
};

class PodMoveTest : public ::testing::TestWithParam<MoveMode> {
 protected:
  void SetUp() override {
    std::string missing;
    bool required = false;
    criu_ = testing::usable_criu(missing, required);
    if (criu_ && GetParam() == MoveMode::kPostCopy && !criu_->check().lazy_pages) {
      missing = "no post-copy (userfaultfd) here";
    }
    if (!missing.empty()) {
      if (required) {
        FAIL() << missing;
      }
      GTEST_SKIP() << missing;
    }
    dir_ = fs::temp_directory_path() /
           ("archipel-pod-move-test-" + std::to_string(std::random_device{}()));
    paris_ = std::make_unique<EmbeddedSite>("paris", dir_ / "paris");
    nantes_ = std::make_unique<EmbeddedSite>("nantes", dir_ / "nantes");
    port_ = static_cast<std::uint16_t>(20000 + std::random_device{}() % 20000);
  }

  void TearDown() override {
    paris_.reset();
    nantes_.reset();
    std::error_code ec;
    if (std::getenv("ARCHIPEL_TEST_KEEP") == nullptr) {  // set it to look at CRIU's logs
      fs::remove_all(dir_, ec);
    }
  }

  // The cart runs at paris with a few items in it.
  void start_cart() {
    const json::object pod{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", json::object{{"name", "cart"},
                                  {"namespace", "default"},
                                  {"labels", json::object{{"app", "cart"}}},
                                  {"annotations", json::object{{kMigrateAnnotation, "criu"}}}}},
        {"spec", json::object{
                     {"containers",
                      json::array{json::object{
                          {"name", "cart"},
                          {"image", "cart"},
                          {"command", json::array{CART_BIN, "--port", std::to_string(port_)}}}}}}}};
    ASSERT_TRUE(paris_->put_pod(pod).has_value());
    ASSERT_TRUE(eventually([&] { return http(port_, "GET", "/healthz") == "\"ok\""; }));
    // (The cart may answer before the runtime has written the pod's status.)
    ASSERT_TRUE(eventually([&] { return paris_->running_pid("cart") != 0; }));
    for (const char* item : {"apple", "apple", "pear", "fig"}) {
      ASSERT_FALSE(http(port_, "POST", std::string("/items/") + item).empty());
    }
  }

  MoveRequest request() const {
    return {.namespace_name = "default",
            .pod = "cart",
            .mode = GetParam(),
            .work = dir_ / "move",
            .page_server_port = static_cast<std::uint16_t>(port_ + 1)};
  }

  std::optional<Criu> criu_;
  fs::path dir_;
  std::unique_ptr<EmbeddedSite> paris_;
  std::unique_ptr<EmbeddedSite> nantes_;
  std::uint16_t port_ = 0;
};

TEST_P(PodMoveTest, TheCartMovesWithEveryItemAndRunsAtItsDestinationOnly) {
  start_cart();
  const std::string before = http(port_, "GET", "/items");
  const pid_t source = paris_->running_pid("cart");
  ASSERT_NE(source, 0);

  auto moved = move_pod(*criu_, *paris_, *nantes_, request());
  ASSERT_TRUE(moved.has_value()) << moved.error();
  EXPECT_GT(moved->downtime_ms, 0);

  // nantes runs it: the restored process, taken over by its runtime, with the pod's identity.
  ASSERT_TRUE(eventually([&] { return nantes_->running_pid("cart") == moved->pid; }));
  const auto got = nantes_->get_pod("default", "cart");
  ASSERT_TRUE(got.has_value()) << got.error();
  const json::object& pod = *got;
  EXPECT_EQ(pod.at("metadata").at("labels").at("app"), "cart");
  const json::object& notes = pod.at("metadata").at("annotations").as_object();
  EXPECT_EQ(notes.at(kMigratedFromAnnotation), "paris");
  EXPECT_FALSE(notes.contains(kRestoringAnnotation));
  EXPECT_FALSE(notes.contains(kMigratingToAnnotation));
  EXPECT_EQ(items(answer(port_, "GET", "/items")), items(before)) << "items lost in the move";
  EXPECT_NE(answer(port_, "POST", "/items/plum").find("\"plum\":1"), std::string::npos);

  // paris does not: its pod and its process are gone, and nothing restarted it.
  EXPECT_TRUE(eventually([&] { return !paris_->get_pod("default", "cart").has_value(); }));
  EXPECT_TRUE(eventually([&] { return ::kill(source, 0) != 0; }))  // gone, and reaped
      << "the source's process still runs";
}

TEST_P(PodMoveTest, AMoveThatFailsAfterTheRestoreLeavesTheSourceServing) {
  start_cart();
  const std::string before = http(port_, "GET", "/items");
  const pid_t source = paris_->running_pid("cart");
  nantes_->refuse_status_updates();  // nantes cannot take the restored process over

  auto moved = move_pod(*criu_, *paris_, *nantes_, request());
  ASSERT_FALSE(moved.has_value());
  EXPECT_NE(moved.error().find("the pod goes on at paris"), std::string::npos) << moved.error();

  EXPECT_EQ(paris_->running_pid("cart"), source);
  EXPECT_EQ(items(answer(port_, "GET", "/items")), items(before));
  EXPECT_FALSE(paris_->get_pod("default", "cart")
                   ->at("metadata")
                   .at("annotations")
                   .as_object()
                   .contains(kMigratingToAnnotation));
  EXPECT_TRUE(eventually([&] { return !nantes_->get_pod("default", "cart").has_value(); }));
}

TEST_P(PodMoveTest, APodThatDidNotOptInIsNotTouched) {
  const json::object pod{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", "plain"}, {"namespace", "default"}}},
      {"spec", json::object{{"containers", json::array{json::object{
                                               {"name", "main"},
                                               {"image", "sleep"},
                                               {"command", json::array{"sleep", "300"}}}}}}}};
  ASSERT_TRUE(paris_->put_pod(pod).has_value());
  ASSERT_TRUE(eventually([&] { return paris_->running_pid("plain") != 0; }));
  const pid_t pid = paris_->running_pid("plain");
  MoveRequest r = request();
  r.pod = "plain";

  auto moved = move_pod(*criu_, *paris_, *nantes_, r);
  ASSERT_FALSE(moved.has_value());
  EXPECT_NE(moved.error().find("is not annotated archipel.io/migrate: criu"), std::string::npos)
      << moved.error();
  EXPECT_EQ(paris_->running_pid("plain"), pid);
  EXPECT_FALSE(
      paris_->get_pod("default", "plain")->at("metadata").as_object().contains("annotations"));
  EXPECT_FALSE(nantes_->get_pod("default", "plain").has_value());
}

INSTANTIATE_TEST_SUITE_P(Modes, PodMoveTest,
                         ::testing::Values(MoveMode::kCold, MoveMode::kPostCopy),
                         [](const ::testing::TestParamInfo<MoveMode>& p) {
                           return p.param == MoveMode::kCold ? "Cold" : "PostCopy";
                         });

}  // namespace
}  // namespace archipel::migrate
