// The pod runtime and migration: pods CRIU may migrate run in their own pid namespace, and a
// pod whose processes a migration restores is left alone until they are there, then taken
// over instead of started.

#include "archipel/cluster/pod_runtime.hpp"
#include "archipel/base/process.hpp"
#include "archipel/cluster/store.hpp"
#include "archipel/kube/resource.hpp"
#include "eventually.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

namespace archipel::cluster {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using archipel::testing::eventually;
using namespace std::chrono_literals;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The pid namespaces' pids of a process, outermost first ("NSpid:" in /proc/PID/status).
std::vector<long> ns_pids(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::vector<long> out;
  while (std::getline(in, line)) {
    if (line.starts_with("NSpid:")) {
      std::istringstream fields(line.substr(6));
      long v = 0;
      while (fields >> v) {
        out.push_back(v);
      }
    }
  }
  return out;
}

class PodRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("archipel-pod-runtime-test-" + std::to_string(std::random_device{}()));
    auto store = ObjectStore::open(dir_ / "store");
    ASSERT_TRUE(store.has_value()) << store.error();
    store_ = std::move(*store);
    runtime_ = PodRuntime::start(*store_, {.dir = dir_ / "pods"});
  }

  void TearDown() override {
    runtime_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const kube::ResourceType& pods() { return *kube::find_resource("", "v1", "pods"); }

  void put(const json::object& pod) {
    const std::string name(pod.at("metadata").at("name").as_string());
    auto r = store_->mutate(pods(), "default", name, [&](const json::object* current) {
      json::object next = pod;
      auto& meta = next["metadata"].as_object();
      meta["namespace"] = "default";
      meta["uid"] = current != nullptr ? current->at("metadata").at("uid") : json::value("uid-1");
      return Result<Change>(Change{Change::Kind::kPut, std::move(next)});
    });
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  std::optional<json::object> get(const std::string& name) {
    return store_->get(pods(), "default", name);
  }

  // The pid in the first container's status, once it runs.
  pid_t running_pid(const std::string& name) {
    auto pod = get(name);
    if (!pod) {
      return 0;
    }
    const json::value* status = pod->if_contains("status");
    if (status == nullptr || !status->as_object().contains("containerStatuses")) {
      return 0;
    }
    const json::object& cs = status->at("containerStatuses").as_array().at(0).as_object();
    if (!cs.at("state").as_object().contains("running")) {
      return 0;
    }
    return static_cast<pid_t>(std::stol(std::string(cs.at("containerID").as_string()).substr(11)));
  }

  static json::object pod(const std::string& name, json::object annotations) {
    return json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", json::object{{"name", name}, {"annotations", std::move(annotations)}}},
        {"spec", json::object{{"containers", json::array{json::object{
                                                 {"name", "main"},
                                                 {"image", "sleep"},
                                                 {"command", json::array{"sleep", "300"}}}}}}}};
  }

  fs::path dir_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<PodRuntime> runtime_;
};

TEST_F(PodRuntimeTest, AMigratablePodRunsAsPidOneOfItsOwnPidNamespace) {
  put(pod("cart", {{"archipel.io/migrate", "criu"}}));
  ASSERT_TRUE(eventually([&] { return running_pid("cart") != 0; }));
  const std::vector<long> pids = ns_pids(running_pid("cart"));
  ASSERT_EQ(pids.size(), 2U) << "not in a pid namespace of its own";
  EXPECT_EQ(pids[1], 1);
  EXPECT_EQ(::getsid(running_pid("cart")), running_pid("cart")) << "not its session's leader";
}

// As pid 1 of its namespace, a program leaving SIGTERM at its default would ignore it (the
// kernel's rule for an init) and live out the grace period: the runtime kills it as SIGTERM
// would anywhere else.
TEST_F(PodRuntimeTest, AMigratablePodThatDoesNotHandleSigtermStopsAtOnceWhenDeleted) {
  json::object p = pod("cart", {{"archipel.io/migrate", "criu"}});
  put(p);
  ASSERT_TRUE(eventually([&] { return running_pid("cart") != 0; }));
  const pid_t pid = running_pid("cart");
  auto& meta = p["metadata"].as_object();
  meta["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  meta["deletionGracePeriodSeconds"] = 600;
  put(p);
  EXPECT_TRUE(eventually([&] { return !get("cart").has_value(); }, 20s))
      << "still waiting out the grace period";
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST_F(PodRuntimeTest, AnOrdinaryPodSharesTheSitesPidNamespace) {
  put(pod("plain", {}));
  ASSERT_TRUE(eventually([&] { return running_pid("plain") != 0; }));
  EXPECT_EQ(ns_pids(running_pid("plain")).size(), ns_pids(::getpid()).size());
}

TEST_F(PodRuntimeTest, APodBeingRestoredIsLeftAloneThenItsRestoredProcessIsTakenOver) {
  // What a migration does at the destination: the process is restored (here: started, as CRIU
  // would leave it, in its own pid namespace and session), the pod is written with the
  // restoring annotation and a status naming the process, then the annotation goes.
  const fs::path outside = dir_ / "restored.log";
  auto restored = base::start_process({.argv = {"sleep", "300"},
                                       .env = {"PATH=/usr/bin:/bin"},
                                       .log = outside,
                                       .own_pid_namespace = true});
  ASSERT_TRUE(restored.has_value()) << restored.error();

  json::object p = pod("cart", {{"archipel.io/restoring", "migration-1"}});
  put(p);
  std::this_thread::sleep_for(500ms);  // the runtime has seen it (it polls every 100 ms)
  EXPECT_EQ(running_pid("cart"), 0) << "the runtime started a pod being restored";

  const std::string now = [] {
    char buf[32];
    const std::time_t t = std::time(nullptr);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return std::string(buf);
  }();
  p["metadata"].as_object()["annotations"] = json::object{{"archipel.io/migrated-from", "paris"}};
  p["status"] =
      json::object{{"phase", "Running"},
                   {"containerStatuses",
                    json::array{json::object{
                        {"name", "main"},
                        {"restartCount", 0},
                        {"containerID", "archipel://" + std::to_string(*restored)},
                        {"state", json::object{{"running", json::object{{"startedAt", now}}}}}}}}};
  put(p);
  ASSERT_TRUE(eventually([&] {
    auto got = get("cart");
    return got && got->at("status").as_object().contains("startTime");  // the runtime wrote it
  }));
  EXPECT_EQ(running_pid("cart"), *restored) << "the runtime did not take the restored process";
  EXPECT_TRUE(read(runtime_->log_path("default", "cart", "main")).empty());
  EXPECT_FALSE(fs::exists(runtime_->log_path("default", "cart", "main")))
      << "the runtime started the container itself";

  // It is the pod's now: deleting the pod stops it.
  auto deleted = store_->mutate(pods(), "default", "cart", [](const json::object*) {
    return Result<Change>(Change{Change::Kind::kDelete, {}});
  });
  ASSERT_TRUE(deleted.has_value());
  // (This test started it, so it reaps it; CRIU's restored processes are init's to reap.)
  EXPECT_TRUE(eventually([&] { return ::waitpid(*restored, nullptr, WNOHANG) == *restored; }));
}

}  // namespace
}  // namespace archipel::cluster
