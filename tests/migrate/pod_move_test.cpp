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
#include "migrate/embedded_site.hpp"

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
using testing::EmbeddedSite;
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

class PodMoveTest : public ::testing::TestWithParam<MoveMode> {
 protected:
  void SetUp() override {
    testing::require_criu(criu_, [](const Criu& c) {
      return GetParam() == MoveMode::kPostCopy && !c.check().lazy_pages
                 ? std::string("no post-copy (userfaultfd) here")
                 : std::string();
    });
    if (!criu_) {
      return;
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
