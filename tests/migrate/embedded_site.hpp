#pragma once
// A site of this machine for the migration tests: its embedded cluster (store, API, pod
// runtime), as a PodSite.

#include "archipel/cluster/api.hpp"
#include "archipel/cluster/pod_runtime.hpp"
#include "archipel/cluster/store.hpp"
#include "archipel/migrate/kube_pod_site.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>

namespace archipel::migrate::testing {

// A site of this machine: its embedded cluster (store, API, pod runtime), as a PodSite (its API
// called directly, through KubePodSite).
class EmbeddedSite final : public PodSite {
 public:
  EmbeddedSite(std::string name, const std::filesystem::path& dir) : name_(std::move(name)) {
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

  boost::system::result<boost::json::object, std::string> get_pod(
      const std::string& ns, const std::string& name) override {
    return pods_.get_pod(ns, name);
  }
  boost::system::result<void, std::string> put_pod(const boost::json::object& pod) override {
    return pods_.put_pod(pod);
  }
  boost::system::result<void, std::string> put_pod_status(
      const std::string& ns, const std::string& name, const boost::json::object& status) override {
    if (fail_status_) {
      return std::string("refused by the test");
    }
    return pods_.put_pod_status(ns, name, status);
  }
  boost::system::result<void, std::string> delete_pod(const std::string& ns,
                                                      const std::string& name) override {
    return pods_.delete_pod(ns, name);
  }
  std::filesystem::path log_path(const std::string& ns, const std::string& pod,
                                 const std::string& container) const override {
    return runtime_->log_path(ns, pod, container);
  }

  // The pod's running container's pid (0 when none).
  pid_t running_pid(const std::string& name) {
    auto pod = get_pod("default", name);
    if (!pod || !pod->contains("status")) {
      return 0;
    }
    const boost::json::value* list = pod->at("status").as_object().if_contains("containerStatuses");
    if (list == nullptr || list->as_array().empty()) {
      return 0;
    }
    const boost::json::object& cs = list->as_array().front().as_object();
    if (!cs.at("state").as_object().contains("running")) {
      return 0;
    }
    return static_cast<pid_t>(std::stol(std::string(cs.at("containerID").as_string()).substr(11)));
  }

  void refuse_status_updates() { fail_status_ = true; }

 private:
  std::string name_;
  std::unique_ptr<cluster::ObjectStore> store_;
  std::unique_ptr<cluster::PodRuntime> runtime_;
  std::unique_ptr<cluster::KubeApi> api_;
  KubePodSite pods_{
      name_,
      [this](const std::string& method, const std::string& target,
             const std::string& body) -> boost::system::result<KubeReply, std::string> {
        const auto r = call(method, target, body);
        return KubeReply{static_cast<unsigned>(r.status), r.body};
      },
      {}};
  bool fail_status_ = false;
};

}  // namespace archipel::migrate::testing
