#include "archipel/migrate/kube_pod_site.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace archipel::migrate {
namespace {

namespace json = boost::json;

std::string pod_path(const std::string& ns, const std::string& name) {
  return "/api/v1/namespaces/" + ns + "/pods/" + name;
}

// "404 pods \"x\" not found": the status, then the message of a Status answer (or the body).
std::string failure(const KubeReply& r) {
  boost::system::error_code ec;
  const json::value v = json::parse(r.body, ec);
  const json::value* message = ec ? nullptr : v.find_pointer("/message", ec);
  if (message != nullptr && message->is_string()) {
    return std::to_string(r.status) + " " + std::string(message->as_string());
  }
  return std::to_string(r.status) + " " + r.body.substr(0, 200);
}

}  // namespace

KubePodSite::KubePodSite(std::string name, KubeCall call, std::filesystem::path pods_dir)
    : name_(std::move(name)), call_(std::move(call)), pods_dir_(std::move(pods_dir)) {}

boost::system::result<KubeReply, std::string> KubePodSite::call(const std::string& method,
                                                                const std::string& target,
                                                                const std::string& body) {
  return call_(method, target, body);
}

boost::system::result<json::object, std::string> KubePodSite::get_pod(const std::string& ns,
                                                                      const std::string& name) {
  auto r = call("GET", pod_path(ns, name));
  if (!r) {
    return r.error();
  }
  if (r->status != 200) {
    return failure(*r);
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) {
    return "the pod " + ns + "/" + name + " came back as no JSON object";
  }
  return std::move(v.as_object());
}

boost::system::result<void, std::string> KubePodSite::put_pod(const json::object& pod) {
  const json::value* meta = pod.if_contains("metadata");
  if (meta == nullptr || !meta->is_object() || !meta->as_object().contains("namespace") ||
      !meta->as_object().contains("name")) {
    return std::string("a pod without a namespace and a name");
  }
  const std::string ns(meta->at("namespace").as_string());
  const std::string name(meta->at("name").as_string());
  auto current = call("GET", pod_path(ns, name));
  if (!current) {
    return current.error();
  }
  boost::system::result<KubeReply, std::string> r;
  if (current->status == 404) {
    r = call("POST", "/api/v1/namespaces/" + ns + "/pods", json::serialize(pod));
    if (r && r->status == 404) {
      // The pod's namespace does not exist on this site yet (the pod arrives from another
      // site): it is created, as the pod's own site has it.
      const json::object namespace_object{
          {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", ns}}}};
      auto made = call("POST", "/api/v1/namespaces", json::serialize(namespace_object));
      if (made && (made->status == 201 || made->status == 409)) {
        r = call("POST", "/api/v1/namespaces/" + ns + "/pods", json::serialize(pod));
      }
    }
  } else if (current->status == 200) {
    json::object next = pod;
    boost::system::error_code ec;
    const json::value now = json::parse(current->body, ec);
    const json::value* rv = ec ? nullptr : now.find_pointer("/metadata/resourceVersion", ec);
    if (rv != nullptr) {
      next["metadata"].as_object()["resourceVersion"] = *rv;
    }
    r = call("PUT", pod_path(ns, name), json::serialize(next));
  } else {
    return failure(*current);
  }
  if (!r) {
    return r.error();
  }
  if (r->status != 200 && r->status != 201) {
    return failure(*r);
  }
  return {};
}

boost::system::result<void, std::string> KubePodSite::put_pod_status(const std::string& ns,
                                                                     const std::string& name,
                                                                     const json::object& status) {
  auto current = get_pod(ns, name);
  if (!current) {
    return current.error();
  }
  (*current)["status"] = status;
  auto r = call("PUT", pod_path(ns, name) + "/status", json::serialize(*current));
  if (!r) {
    return r.error();
  }
  if (r->status != 200) {
    return failure(*r);
  }
  return {};
}

boost::system::result<void, std::string> KubePodSite::delete_pod(const std::string& ns,
                                                                 const std::string& name) {
  auto r = call("DELETE", pod_path(ns, name));
  if (!r) {
    return r.error();
  }
  if (r->status != 200 && r->status != 202 && r->status != 404) {
    return failure(*r);
  }
  return {};
}

boost::system::result<std::vector<json::object>, std::string> KubePodSite::list_pods() {
  auto r = call("GET", "/api/v1/pods");
  if (!r) {
    return r.error();
  }
  if (r->status != 200) {
    return failure(*r);
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  const json::value* items = ec ? nullptr : v.find_pointer("/items", ec);
  if (items == nullptr || !items->is_array()) {
    return std::string("the pod list came back as no PodList");
  }
  std::vector<json::object> pods;
  for (json::value& item : v.as_object()["items"].as_array()) {
    if (item.is_object()) {
      pods.push_back(std::move(item.as_object()));
    }
  }
  return pods;
}

std::filesystem::path KubePodSite::log_path(const std::string& ns, const std::string& pod,
                                            const std::string& container) const {
  return pods_dir_ / ns / pod / (container + ".log");
}

}  // namespace archipel::migrate
