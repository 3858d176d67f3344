#include "archipel/cluster/deployment_controller.hpp"

#include "archipel/kube/object.hpp"
#include "archipel/kube/resource.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;

constexpr std::string_view kHashLabel = "pod-template-hash";

// A short, stable hash of the pod template (FNV-1a over its canonical JSON), like Kubernetes'
// pod-template-hash label.
std::string template_hash(const value& tpl) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : boost::json::serialize(tpl)) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out += kAlphabet[h % kAlphabet.size()];
    h /= kAlphabet.size();
  }
  return out;
}

bool owned_by(const object& pod, std::string_view uid) {
  const value* refs = kube::find_path(pod, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) {
    return false;
  }
  for (const value& r : refs->as_array()) {
    if (r.is_object()) {
      const value* u = r.as_object().if_contains("uid");
      if (u != nullptr && u->is_string() && u->as_string() == uid) {
        return true;
      }
    }
  }
  return false;
}

bool pod_ready(const object& pod) {
  const value* conds = kube::find_path(pod, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) {
    return false;
  }
  for (const value& c : conds->as_array()) {
    if (c.is_object() && c.as_object().if_contains("type") != nullptr &&
        c.as_object().at("type") == "Ready") {
      return c.as_object().if_contains("status") != nullptr && c.as_object().at("status") == "True";
    }
  }
  return false;
}

std::string label(const object& o, std::string_view key) {
  const value* v = kube::find_path(o, {"metadata", "labels"});
  if (v == nullptr || !v->is_object()) {
    return {};
  }
  const value* l = v->as_object().if_contains(key);
  return l != nullptr && l->is_string() ? std::string(l->as_string()) : std::string();
}

class DeploymentControllerImpl final : public DeploymentController {
 public:
  DeploymentControllerImpl(KubeApi& api, std::chrono::milliseconds resync)
      : api_(api),
        resync_(resync),
        deployments_(*kube::find_resource("apps", "v1", "deployments")),
        pods_(*kube::find_resource("", "v1", "pods")) {
    subscription_ = api_.store()
                        .watch(std::nullopt,
                               [this](const ObjectEvent& e) {
                                 if (e.resource == &deployments_) {
                                   mark(e.namespace_, e.name);
                                 } else if (e.resource == &pods_) {
                                   mark_owner(*e.object);
                                 }
                               })
                        .value()
                        .handle;
    thread_ = std::thread([this] { run(); });
  }

  ~DeploymentControllerImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void mark(std::string_view ns, std::string_view name) {
    {
      std::lock_guard lock(mu_);
      dirty_.insert(std::string(ns) + "/" + std::string(name));
    }
    cv_.notify_one();
  }

  void mark_owner(const object& pod) {
    const value* refs = kube::find_path(pod, {"metadata", "ownerReferences"});
    if (refs == nullptr || !refs->is_array()) {
      return;
    }
    for (const value& r : refs->as_array()) {
      if (r.is_object() && r.as_object().if_contains("kind") != nullptr &&
          r.as_object().at("kind") == "Deployment" &&
          r.as_object().if_contains("name") != nullptr && r.as_object().at("name").is_string()) {
        mark(kube::meta_string(pod, "namespace"), r.as_object().at("name").as_string());
      }
    }
  }

  void run() {
    auto next_resync = std::chrono::steady_clock::now();
    for (;;) {
      std::set<std::string> work;
      {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, next_resync, [this] { return stopping_ || !dirty_.empty(); });
        if (stopping_) {
          return;
        }
        work.swap(dirty_);
      }
      if (std::chrono::steady_clock::now() >= next_resync) {
        next_resync = std::chrono::steady_clock::now() + resync_;
        if (auto all = api_.store().list(deployments_, "", 0, {}, {})) {
          for (const object& d : all->items) {
            work.insert(std::string(kube::meta_string(d, "namespace")) + "/" +
                        std::string(kube::meta_string(d, "name")));
          }
        }
      }
      for (const std::string& key : work) {
        const std::size_t slash = key.find('/');
        reconcile(key.substr(0, slash), key.substr(slash + 1));
      }
    }
  }

  ApiResponse call(const std::string& method, const std::string& target, const std::string& body) {
    ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.content_type = body.empty() ? "" : "application/json";
    ApiResult r = api_.handle(req);
    return std::holds_alternative<ApiResponse>(r) ? std::get<ApiResponse>(r) : ApiResponse{500};
  }

  void reconcile(const std::string& ns, const std::string& name) {
    auto d = api_.store().get(deployments_, ns, name);
    if (!d || !kube::meta_string(*d, "deletionTimestamp").empty()) {
      return;
    }
    const std::string uid(kube::meta_string(*d, "uid"));
    const value* tpl = kube::find_path(*d, {"spec", "template"});
    if (tpl == nullptr || !tpl->is_object()) {
      return;
    }
    std::int64_t desired = 1;
    if (const value* r = kube::find_path(*d, {"spec", "replicas"}); r != nullptr && r->is_int64()) {
      desired = std::max<std::int64_t>(0, r->as_int64());
    }
    const std::string hash = template_hash(*tpl);

    std::vector<object> current;
    std::vector<object> old;
    std::vector<object> terminating;
    if (auto pods = api_.store().list(pods_, ns, 0, {},
                                      [&](const object& p) { return owned_by(p, uid); })) {
      for (object& p : pods->items) {
        if (!kube::meta_string(p, "deletionTimestamp").empty()) {
          terminating.push_back(std::move(p));
        } else if (label(p, kHashLabel) == hash) {
          current.push_back(std::move(p));
        } else {
          old.push_back(std::move(p));
        }
      }
    }
    const auto ready = [](const std::vector<object>& ps) {
      return static_cast<std::int64_t>(std::count_if(ps.begin(), ps.end(), pod_ready));
    };
    const std::int64_t total = static_cast<std::int64_t>(current.size() + old.size());
    const std::string pods_url = "/api/v1/namespaces/" + ns + "/pods";

    // Scale the current template up, one surge pod above desired while old pods remain.
    if (static_cast<std::int64_t>(current.size()) < desired && total < desired + 1) {
      create_pod(*d, *tpl, hash, uid, pods_url);
    }
    // Retire old pods once enough current ones are ready (never below desired ready pods),
    // or at once when the old ones are not ready anyway.
    if (!old.empty()) {
      std::stable_partition(old.begin(), old.end(), [](const object& p) { return !pod_ready(p); });
      if (!pod_ready(old.front()) || ready(current) + ready(old) > desired ||
          ready(current) >= desired) {
        delete_pod(pods_url, old.front());
      }
    }
    // Scale down the current template: newest first.
    if (static_cast<std::int64_t>(current.size()) > desired) {
      std::sort(current.begin(), current.end(), [](const object& a, const object& b) {
        return kube::meta_string(a, "creationTimestamp") >
               kube::meta_string(b, "creationTimestamp");
      });
      for (std::size_t i = 0; i < current.size() - static_cast<std::size_t>(desired); ++i) {
        delete_pod(pods_url, current[i]);
      }
    }
    update_status(*d, desired, current, old, ready(current) + ready(old));
  }

  void create_pod(const object& d, const value& tpl, const std::string& hash,
                  const std::string& uid, const std::string& pods_url) {
    object pod;
    pod["apiVersion"] = "v1";
    pod["kind"] = "Pod";
    object meta;
    if (const value* m = tpl.as_object().if_contains("metadata"); m != nullptr && m->is_object()) {
      meta = m->as_object();
    }
    const std::string name(kube::meta_string(d, "name"));
    meta["generateName"] = name + "-" + hash + "-";
    meta.erase("name");
    value& labels = meta["labels"];
    if (!labels.is_object()) {
      labels = object();
    }
    labels.as_object()[kHashLabel] = hash;
    meta["ownerReferences"] = array{object{{"apiVersion", "apps/v1"},
                                           {"kind", "Deployment"},
                                           {"name", name},
                                           {"uid", uid},
                                           {"controller", true},
                                           {"blockOwnerDeletion", true}}};
    pod["metadata"] = std::move(meta);
    const value* spec = tpl.as_object().if_contains("spec");
    pod["spec"] = spec != nullptr ? *spec : value(object());
    const ApiResponse r = call("POST", pods_url, boost::json::serialize(pod));
    if (r.status != 201) {
      spdlog::warn("deployments: {}/{}: cannot create a pod: {}", kube::meta_string(d, "namespace"),
                   name, r.body);
    }
  }

  void delete_pod(const std::string& pods_url, const object& pod) {
    (void)call("DELETE", pods_url + "/" + std::string(kube::meta_string(pod, "name")), "");
  }

  void update_status(const object& d, std::int64_t desired, const std::vector<object>& current,
                     const std::vector<object>& old, std::int64_t ready_total) {
    object status;
    const value* gen = kube::find_path(d, {"metadata", "generation"});
    status["observedGeneration"] = gen != nullptr && gen->is_int64() ? gen->as_int64() : 1;
    status["replicas"] = static_cast<std::int64_t>(current.size() + old.size());
    status["updatedReplicas"] = static_cast<std::int64_t>(current.size());
    status["readyReplicas"] = ready_total;
    status["availableReplicas"] = ready_total;
    status["unavailableReplicas"] = std::max<std::int64_t>(0, desired - ready_total);
    const bool available = ready_total >= desired;
    const bool complete =
        available && old.empty() && static_cast<std::int64_t>(current.size()) == desired;
    status["conditions"] = array{
        object{{"type", "Available"},
               {"status", available ? "True" : "False"},
               {"reason", available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable"}},
        object{{"type", "Progressing"},
               {"status", "True"},
               {"reason", complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated"}}};
    const value* old_status = d.if_contains("status");
    if (old_status != nullptr && *old_status == status) {
      return;
    }
    object next = d;
    next["status"] = std::move(status);
    (void)call("PUT",
               "/apis/apps/v1/namespaces/" + std::string(kube::meta_string(d, "namespace")) +
                   "/deployments/" + std::string(kube::meta_string(d, "name")) + "/status",
               boost::json::serialize(next));
  }

  KubeApi& api_;
  std::chrono::milliseconds resync_;
  const kube::ResourceType& deployments_;
  const kube::ResourceType& pods_;
  std::shared_ptr<void> subscription_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> dirty_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<DeploymentController> DeploymentController::start(
    KubeApi& api, std::chrono::milliseconds resync) {
  return std::make_unique<DeploymentControllerImpl>(api, resync);
}

}  // namespace archipel::cluster
