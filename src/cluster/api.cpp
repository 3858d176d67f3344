// The Kubernetes API of the embedded cluster: routing, discovery, and the verbs on objects.
// Semantics follow kube-apiserver (see docs/embedded-cluster.md for what is and is not served).

#include "archipel/cluster/api.hpp"

#include "archipel/kube/object.hpp"
#include "archipel/kube/patch.hpp"
#include "cluster/openapi.hpp"
#include "cluster/table.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;
using kube::ResourceType;
using kube::Status;

constexpr std::string_view kGitVersion = "v1.31.0-archipel";

std::string to_json(const object& o) {
  return boost::json::serialize(o);
}

ApiResponse json_response(int status, const object& body) {
  ApiResponse r;
  r.status = status;
  r.body = to_json(body);
  return r;
}

// --- discovery -------------------------------------------------------------------------------

object api_versions() {
  object o;
  o["kind"] = "APIVersions";
  o["versions"] = array{"v1"};
  object cidr;
  cidr["clientCIDR"] = "0.0.0.0/0";
  cidr["serverAddress"] = "";
  o["serverAddressByClientCIDRs"] = array{cidr};
  return o;
}

std::vector<std::string_view> groups() {
  std::vector<std::string_view> out;
  for (const ResourceType& t : kube::resource_types()) {
    if (!t.group.empty() && std::find(out.begin(), out.end(), t.group) == out.end()) {
      out.push_back(t.group);
    }
  }
  return out;
}

object api_group(std::string_view group) {
  object version;
  version["groupVersion"] = std::string(group) + "/v1";
  version["version"] = "v1";
  object g;
  g["name"] = group;
  g["versions"] = array{version};
  g["preferredVersion"] = version;
  return g;
}

object api_group_list() {
  object o;
  o["kind"] = "APIGroupList";
  o["apiVersion"] = "v1";
  array list;
  for (std::string_view g : groups()) {
    list.push_back(api_group(g));
  }
  o["groups"] = std::move(list);
  return o;
}

array string_array(std::span<const std::string_view> items) {
  array out;
  for (std::string_view s : items) {
    out.emplace_back(s);
  }
  return out;
}

object api_resource_list(std::string_view group) {
  object o;
  o["kind"] = "APIResourceList";
  o["apiVersion"] = "v1";
  o["groupVersion"] = group.empty() ? std::string("v1") : std::string(group) + "/v1";
  array resources;
  for (const ResourceType& t : kube::resource_types()) {
    if (t.group != group) {
      continue;
    }
    object r;
    r["name"] = t.plural;
    r["singularName"] = t.singular;
    r["namespaced"] = t.namespaced;
    r["kind"] = t.kind;
    array verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
    if (t.deletecollection) {
      verbs.emplace_back("deletecollection");
    }
    std::sort(verbs.begin(), verbs.end(),
              [](const value& a, const value& b) { return a.as_string() < b.as_string(); });
    r["verbs"] = std::move(verbs);
    if (!t.short_names.empty()) {
      r["shortNames"] = string_array(t.short_names);
    }
    if (!t.categories.empty()) {
      r["categories"] = string_array(t.categories);
    }
    resources.push_back(std::move(r));
    for (std::string_view sub : t.subresources) {
      object s;
      s["name"] = std::string(t.plural) + "/" + std::string(sub);
      s["singularName"] = "";
      s["namespaced"] = t.namespaced;
      s["kind"] = t.kind;
      s["verbs"] = sub == "log" ? array{"get"} : array{"get", "patch", "update"};
      if (sub == "scale") {
        s["group"] = "autoscaling";
        s["version"] = "v1";
        s["kind"] = "Scale";
      }
      resources.push_back(std::move(s));
    }
  }
  o["resources"] = std::move(resources);
  return o;
}

object version_info() {
  object o;
  o["major"] = "1";
  o["minor"] = "31";
  o["gitVersion"] = kGitVersion;
  o["gitCommit"] = "";
  o["gitTreeState"] = "clean";
  o["buildDate"] = "";
  o["goVersion"] = "";
  o["compiler"] = "archipel";
  o["platform"] = "linux/amd64";
  return o;
}

// --- routing ---------------------------------------------------------------------------------

struct Route {
  const ResourceType* type = nullptr;
  std::string ns;           // request namespace ("" for cluster-scoped or all namespaces)
  std::string name;         // "" for a collection
  std::string subresource;  // "status", "log", or ""
};

// Resolves the path segments after /api/v1 or /apis/GROUP/VERSION.
std::optional<Route> route(std::string_view group, std::string_view version,
                           const std::vector<std::string>& s) {
  if (s.empty()) {
    return std::nullopt;
  }
  Route r;
  if (s[0] == "namespaces" && s.size() >= 3) {
    if (const ResourceType* t = kube::find_resource(group, version, s[2]);
        t != nullptr && t->namespaced && s.size() <= 5) {
      r.type = t;
      r.ns = s[1];
      r.name = s.size() >= 4 ? s[3] : "";
      r.subresource = s.size() == 5 ? s[4] : "";
      return r;
    }
  }
  const ResourceType* t = kube::find_resource(group, version, s[0]);
  if (t == nullptr || s.size() > 3 || (t->namespaced && s.size() > 1)) {
    return std::nullopt;
  }
  r.type = t;
  r.name = s.size() >= 2 ? s[1] : "";
  r.subresource = s.size() == 3 ? s[2] : "";
  return r;
}

bool wants_table(std::string_view accept) {
  return accept.find("as=Table") != std::string_view::npos;
}

bool accepts_json(std::string_view accept) {
  return accept.empty() || accept.find("application/json") != std::string_view::npos ||
         accept.find("*/*") != std::string_view::npos;
}

bool is_json(std::string_view content_type) {
  return content_type.empty() || content_type.starts_with("application/json") ||
         content_type.starts_with("*/*");
}

std::optional<std::uint64_t> parse_rv(std::string_view text) {
  if (text.empty() || text.size() > 19) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::vector<std::string_view> selectable_fields(const ResourceType& t) {
  std::vector<std::string_view> f = {"metadata.name", "metadata.namespace"};
  if (t.kind == "Pod") {
    f.push_back("status.phase");
    f.push_back("spec.nodeName");
  }
  return f;
}

}  // namespace

// --- the API ---------------------------------------------------------------------------------

struct KubeApi::Impl {
  KubeApi& api;

  using Params = std::vector<std::pair<std::string, std::string>>;

  static std::string param(const Params& p, std::string_view key) {
    for (const auto& [k, v] : p) {
      if (k == key) {
        return v;
      }
    }
    return {};
  }

  static bool flag(const Params& p, std::string_view key) {
    // As Go's strconv.ParseBool, which kube-apiserver uses ("watch=True" from the Python client).
    const std::string v = param(p, key);
    return v == "1" || v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE";
  }

  ApiResult handle(const ApiRequest& req) {
    auto url = boost::urls::parse_origin_form(req.target);
    if (!url) {
      return status_response(Status::bad_request("malformed request target"));
    }
    std::vector<std::string> segments;
    for (auto seg : url->segments()) {
      segments.emplace_back(seg);
    }
    Params params;
    for (auto p : url->params()) {
      params.emplace_back(p.key, p.has_value ? std::string(p.value) : std::string());
    }
    const std::string path = url->path();

    if (req.method == "GET") {
      if (path == "/version" || path == "/version/") {
        return json_response(200, version_info());
      }
      if (path == "/healthz" || path == "/livez" || path == "/readyz") {
        ApiResponse r;
        r.content_type = "text/plain; charset=utf-8";
        r.body = "ok";
        return r;
      }
      if (path == "/api" || path == "/api/") {
        return json_response(200, api_versions());
      }
      if (path == "/openapi/v3" || path == "/openapi/v3/") {
        return json_response(200, openapi_v3_root());
      }
      if (path.starts_with("/openapi/v3/")) {
        if (auto doc = openapi_v3_document(std::string_view(path).substr(12))) {
          return json_response(200, *doc);
        }
      }
      if (path == "/apis" || path == "/apis/") {
        return json_response(200, api_group_list());
      }
      if (path == "/api/v1" || path == "/api/v1/") {
        return json_response(200, api_resource_list(""));
      }
      if (segments.size() == 2 && segments[0] == "apis") {
        const auto gs = groups();
        if (std::find(gs.begin(), gs.end(), segments[1]) != gs.end()) {
          object g = api_group(segments[1]);
          g["kind"] = "APIGroup";
          g["apiVersion"] = "v1";
          return json_response(200, g);
        }
      }
      if (segments.size() == 3 && segments[0] == "apis" && segments[2] == "v1") {
        const auto gs = groups();
        if (std::find(gs.begin(), gs.end(), segments[1]) != gs.end()) {
          return json_response(200, api_resource_list(segments[1]));
        }
      }
    }

    std::optional<Route> r;
    if (segments.size() >= 2 && segments[0] == "api" && segments[1] == "v1") {
      r = route("", "v1", {segments.begin() + 2, segments.end()});
    } else if (segments.size() >= 3 && segments[0] == "apis") {
      r = route(segments[1], segments[2], {segments.begin() + 3, segments.end()});
    }
    if (!r) {
      return status_response(Status::no_route(path));
    }
    if (!accepts_json(req.accept)) {
      return status_response(
          Status::not_acceptable("only the following media types are accepted: application/json"));
    }
    return dispatch(req, *r, params);
  }

  // 200 with the object, or its Status.
  static ApiResult respond(const Result<object>& r) {
    return r ? ApiResult(json_response(200, *r)) : ApiResult(status_response(r.error()));
  }

  ApiResult dispatch(const ApiRequest& req, const Route& r, const Params& params) {
    const ResourceType& t = *r.type;
    if (!r.subresource.empty() && std::find(t.subresources.begin(), t.subresources.end(),
                                            r.subresource) == t.subresources.end()) {
      return status_response(Status::no_route(req.target));
    }
    if (r.name.empty()) {
      if (req.method == "GET") {
        return flag(params, "watch") ? watch(req, r, params) : list(req, r, params);
      }
      if (req.method == "POST") {
        return create(req, r);
      }
      if (req.method == "DELETE" && t.deletecollection) {
        return delete_collection(r, params);
      }
    } else if (r.subresource == "log") {
      if (req.method == "GET") {
        return logs(r, params);
      }
    } else if (r.subresource == "scale") {
      if (req.method == "GET" || req.method == "PUT" || req.method == "PATCH") {
        return scale(req, r);
      }
    } else {  // the object itself, or its status
      if (req.method == "GET") {
        return get(req, r);
      }
      if (req.method == "PUT") {
        return update(req, r);
      }
      if (req.method == "PATCH") {
        return patch(req, r);
      }
      if (req.method == "DELETE" && r.subresource.empty()) {
        return remove(req, r);
      }
    }
    return status_response(Status::method_not_allowed(
        "the server does not allow this method on the requested resource"));
  }

  // Reads a request body as a JSON object, with Kubernetes' errors.
  Result<object> body_object(const ApiRequest& req) {
    if (req.body.size() > api.options_.max_body_bytes) {
      return Status::too_large("Request entity too large: limit is " +
                               std::to_string(api.options_.max_body_bytes));
    }
    if (!is_json(req.content_type)) {
      return Status::unsupported_media_type(
          "the body of the request was in an unknown format - "
          "accepted media types include: application/json");
    }
    boost::system::error_code ec;
    value v = boost::json::parse(req.body, ec);
    if (ec) {
      return Status::bad_request("the body of the request could not be decoded as JSON: " +
                                 ec.message());
    }
    if (!v.is_object()) {
      return Status::bad_request("the body of the request must be a JSON object");
    }
    return std::move(v.as_object());
  }

  // The body of a create or update: a JSON object of the route's kind.
  Result<object> written_object(const ApiRequest& req, const ResourceType& t) {
    auto body = body_object(req);
    if (!body) {
      return body.error();
    }
    if (auto bad = check_type(*body, t)) {
      return *bad;
    }
    return body;
  }

  // The checks every written object passes; fills in kind and apiVersion when absent.
  std::optional<Status> check_type(object& o, const ResourceType& t) {
    const value* kind = o.if_contains("kind");
    const value* api_version = o.if_contains("apiVersion");
    if (kind != nullptr && (!kind->is_string() || kind->as_string() != t.kind)) {
      return Status::bad_request(
          "the kind of the object (" + (kind->is_string() ? std::string(kind->as_string()) : "?") +
          ") does not match the expected kind (" + std::string(t.kind) + ")");
    }
    if (api_version != nullptr &&
        (!api_version->is_string() || api_version->as_string() != t.api_version())) {
      return Status::bad_request(
          "the API version in the data (" +
          (api_version->is_string() ? std::string(api_version->as_string()) : "?") +
          ") does not match the expected API version (" + t.api_version() + ")");
    }
    o["kind"] = t.kind;
    o["apiVersion"] = t.api_version();
    if (const value* m = o.if_contains("metadata"); m != nullptr && !m->is_object()) {
      return Status::bad_request("metadata must be an object");
    }
    return validate_content(o, t);
  }

  // Kind-specific shape checks that a Kubernetes decoder or validator would make.
  static std::optional<Status> validate_content(object& o, const ResourceType& t) {
    std::vector<kube::StatusCause> causes;
    const std::string name(kube::meta_string(o, "name"));
    if (t.kind == "ConfigMap" || t.kind == "Secret") {
      for (const char* field : {"data", "stringData", "binaryData"}) {
        const value* d = o.if_contains(field);
        if (d == nullptr || d->is_null()) {
          continue;
        }
        if (!d->is_object()) {
          return Status::bad_request(std::string(t.kind) + "." + field + " must be an object");
        }
        for (const auto& kv : d->as_object()) {
          if (!kv.value().is_string()) {
            return Status::bad_request(std::string(t.kind) + "." + field + "." +
                                       std::string(kv.key()) + " must be a string");
          }
          const std::string_view key = kv.key();
          const bool ok =
              !key.empty() && key.size() <= 253 && std::all_of(key.begin(), key.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                       c == '.';
              });
          if (!ok) {
            causes.push_back({"FieldValueInvalid",
                              "Invalid value: \"" + std::string(key) +
                                  "\": a valid config key must consist of alphanumeric "
                                  "characters, '-', '_' or '.'",
                              std::string(field) + "[" + std::string(key) + "]"});
          }
        }
      }
      if (t.kind == "Secret") {
        if (const value* d = o.if_contains("data"); d != nullptr && d->is_object()) {
          for (const auto& kv : d->as_object()) {
            std::string decoded;
            if (!kube::base64_decode(kv.value().as_string(), decoded)) {
              return Status::bad_request("Secret.data." + std::string(kv.key()) +
                                         ": illegal base64 data");
            }
          }
        }
      }
    }
    if (!causes.empty()) {
      return Status::invalid(t.group, t.kind, name, std::move(causes));
    }
    return std::nullopt;
  }

  // Secret.stringData is write-only: merged into data (base64) as kube-apiserver does.
  static void fold_string_data(object& o) {
    value* sd = o.if_contains("stringData");
    if (sd == nullptr) {
      return;
    }
    if (sd->is_object()) {
      value& data = o["data"];
      if (!data.is_object()) {
        data = object();
      }
      for (const auto& kv : sd->as_object()) {
        data.as_object()[kv.key()] = kube::base64_encode(kv.value().as_string());
      }
    }
    o.erase("stringData");
  }

  // Validates a pod's containers and fills in what Kubernetes defaults.
  std::optional<Status> pod_defaults(object& o, const std::string& name) {
    value& spec_v = o["spec"];
    if (!spec_v.is_object()) {
      return Status::invalid("", "Pod", name,
                             {{"FieldValueRequired", "Required value", "spec.containers"}});
    }
    object& spec = spec_v.as_object();
    std::vector<kube::StatusCause> causes;
    const value* containers = spec.if_contains("containers");
    if (containers == nullptr || !containers->is_array() || containers->as_array().empty()) {
      causes.push_back({"FieldValueRequired", "Required value", "spec.containers"});
    } else {
      std::vector<std::string_view> names;
      for (std::size_t i = 0; i < containers->as_array().size(); ++i) {
        const value& c = containers->as_array()[i];
        const std::string field = "spec.containers[" + std::to_string(i) + "]";
        if (!c.is_object()) {
          causes.push_back({"FieldValueInvalid", "Invalid value: must be an object", field});
          continue;
        }
        const value* n = c.as_object().if_contains("name");
        if (n == nullptr || !n->is_string() || !kube::is_dns1123_label(n->as_string())) {
          causes.push_back(
              {"FieldValueRequired", "Required value: a DNS-1123 label", field + ".name"});
        } else if (std::find(names.begin(), names.end(), n->as_string()) != names.end()) {
          causes.push_back({"FieldValueDuplicate",
                            "Duplicate value: \"" + std::string(n->as_string()) + "\"",
                            field + ".name"});
        } else {
          names.push_back(n->as_string());
        }
        const value* image = c.as_object().if_contains("image");
        if (image == nullptr || !image->is_string() || image->as_string().empty()) {
          causes.push_back({"FieldValueRequired", "Required value", field + ".image"});
        }
      }
    }
    if (const value* p = spec.if_contains("restartPolicy")) {
      if (!p->is_string() || (p->as_string() != "Always" && p->as_string() != "OnFailure" &&
                              p->as_string() != "Never")) {
        causes.push_back(
            {"FieldValueNotSupported",
             "Unsupported value: supported values: \"Always\", \"OnFailure\", \"Never\"",
             "spec.restartPolicy"});
      }
    }
    if (!causes.empty()) {
      return Status::invalid("", "Pod", name, std::move(causes));
    }
    if (!spec.contains("restartPolicy")) {
      spec["restartPolicy"] = "Always";
    }
    if (!spec.contains("terminationGracePeriodSeconds")) {
      spec["terminationGracePeriodSeconds"] = 30;
    }
    if (!spec.contains("dnsPolicy")) {
      spec["dnsPolicy"] = "ClusterFirst";
    }
    spec["nodeName"] = api.options_.node_name;
    o["status"] = object{{"phase", "Pending"}};
    return std::nullopt;
  }

  // Validates a Deployment's selector and template (its pods must be creatable) and fills in
  // Kubernetes' defaults.
  std::optional<Status> deployment_defaults(object& o, const std::string& name) {
    value& spec_v = o["spec"];
    if (!spec_v.is_object()) {
      spec_v = object();
    }
    object& spec = spec_v.as_object();
    std::vector<kube::StatusCause> causes;
    const value* match = nullptr;
    if (const value* sel = spec.if_contains("selector"); sel != nullptr && sel->is_object()) {
      match = sel->as_object().if_contains("matchLabels");
    }
    if (match == nullptr || !match->is_object() || match->as_object().empty()) {
      causes.push_back({"FieldValueRequired", "Required value", "spec.selector"});
    }
    const value* tpl = spec.if_contains("template");
    object pod;
    if (tpl == nullptr || !tpl->is_object()) {
      causes.push_back({"FieldValueRequired", "Required value", "spec.template"});
    } else {
      pod = tpl->as_object();
      if (match != nullptr && match->is_object()) {
        const value* labels = pod.contains("metadata") && pod["metadata"].is_object()
                                  ? pod["metadata"].as_object().if_contains("labels")
                                  : nullptr;
        for (const auto& kv : match->as_object()) {
          const value* l = labels != nullptr && labels->is_object()
                               ? labels->as_object().if_contains(kv.key())
                               : nullptr;
          if (l == nullptr || *l != kv.value()) {
            causes.push_back({"FieldValueInvalid",
                              "Invalid value: `selector` does not match template `labels`",
                              "spec.template.metadata.labels"});
            break;
          }
        }
      }
      if (auto bad = pod_defaults(pod, name)) {
        for (kube::StatusCause c : bad->causes) {
          c.field = "spec.template." + c.field;
          causes.push_back(std::move(c));
        }
      }
    }
    if (const value* r = spec.if_contains("replicas");
        r != nullptr && (!r->is_int64() || r->as_int64() < 0)) {
      causes.push_back({"FieldValueInvalid", "Invalid value: must be greater than or equal to 0",
                        "spec.replicas"});
    }
    if (!causes.empty()) {
      return Status::invalid("apps", "Deployment", name, std::move(causes));
    }
    if (!spec.contains("replicas")) {
      spec["replicas"] = 1;
    }
    if (!spec.contains("revisionHistoryLimit")) {
      spec["revisionHistoryLimit"] = 10;
    }
    if (!spec.contains("progressDeadlineSeconds")) {
      spec["progressDeadlineSeconds"] = 600;
    }
    if (!spec.contains("strategy")) {
      spec["strategy"] =
          object{{"type", "RollingUpdate"},
                 {"rollingUpdate", object{{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}};
    }
    return std::nullopt;
  }

  // autoscaling/v1 Scale of a Deployment: what kubectl scale reads and writes.
  ApiResult scale(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    auto to_scale = [&](const object& d) {
      std::int64_t replicas = 0;
      std::int64_t observed = 0;
      if (const value* s = d.if_contains("spec"); s != nullptr && s->is_object()) {
        if (const value* v = s->as_object().if_contains("replicas");
            v != nullptr && v->is_int64()) {
          replicas = v->as_int64();
        }
      }
      if (const value* s = d.if_contains("status"); s != nullptr && s->is_object()) {
        if (const value* v = s->as_object().if_contains("replicas");
            v != nullptr && v->is_int64()) {
          observed = v->as_int64();
        }
      }
      object scale;
      scale["kind"] = "Scale";
      scale["apiVersion"] = "autoscaling/v1";
      object m;
      for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
        m[k] = std::string(kube::meta_string(d, k));
      }
      scale["metadata"] = std::move(m);
      scale["spec"] = object{{"replicas", replicas}};
      scale["status"] = object{{"replicas", observed}};
      return scale;
    };
    if (req.method == "GET") {
      auto d = api.store_.get(t, r.ns, r.name);
      if (!d) {
        return status_response(Status::not_found(t.group, t.plural, r.name));
      }
      return json_response(200, to_scale(*d));
    }
    boost::system::error_code ec;
    const value doc = boost::json::parse(req.body, ec);
    if (ec || !doc.is_object()) {
      return status_response(
          Status::bad_request("the body of the request could not be decoded as JSON"));
    }
    auto stored = api.store_.mutate(t, r.ns, r.name, [&](const object* current) -> Result<Change> {
      if (current == nullptr) {
        return Status::not_found(t.group, t.plural, r.name);
      }
      value scaled = to_scale(*current);
      if (req.method == "PUT") {
        scaled = doc;
      } else if (req.content_type.starts_with("application/json-patch+json")) {
        auto p = kube::apply_json_patch(scaled, doc);
        if (!p) {
          return Status::unprocessable(p.error());
        }
        scaled = std::move(*p);
      } else {
        scaled = kube::apply_merge_patch(scaled, doc);
      }
      const value* replicas =
          scaled.is_object() && scaled.as_object().contains("spec") && scaled.at("spec").is_object()
              ? scaled.at("spec").as_object().if_contains("replicas")
              : nullptr;
      if (replicas == nullptr || !replicas->is_int64() || replicas->as_int64() < 0) {
        return Status::invalid(
            "autoscaling", "Scale", r.name,
            {{"FieldValueInvalid", "Invalid value: must be greater than or equal to 0",
              "spec.replicas"}});
      }
      object next = *current;
      next["spec"].as_object()["replicas"] = replicas->as_int64();
      return next_version(t, current, std::move(next), "", false);
    });
    if (!stored) {
      return status_response(stored.error());
    }
    return json_response(200, to_scale(*stored));
  }

  ApiResult logs(const Route& r, const Params& params) {
    auto pod = api.store_.get(*r.type, r.ns, r.name);
    if (!pod) {
      return status_response(Status::not_found("", "pods", r.name));
    }
    std::vector<std::string> names;
    if (const value* spec = pod->if_contains("spec"); spec != nullptr && spec->is_object()) {
      if (const value* cs = spec->as_object().if_contains("containers");
          cs != nullptr && cs->is_array()) {
        for (const value& c : cs->as_array()) {
          const value* n = c.is_object() ? c.as_object().if_contains("name") : nullptr;
          if (n != nullptr && n->is_string()) {
            names.emplace_back(n->as_string());
          }
        }
      }
    }
    std::string container = param(params, "container");
    if (container.empty()) {
      if (names.size() != 1) {
        std::string list;
        for (const std::string& n : names) {
          list += (list.empty() ? "" : " ") + n;
        }
        return status_response(Status::bad_request("a container name must be specified for pod " +
                                                   r.name + ", choose one of: [" + list + "]"));
      }
      container = names.front();
    } else if (std::find(names.begin(), names.end(), container) == names.end()) {
      return status_response(
          Status::bad_request("container " + container + " is not valid for pod " + r.name));
    }
    if (!api.options_.log_path) {
      return status_response(Status::bad_request("this cluster runs no pods: no logs to serve"));
    }
    const auto path = api.options_.log_path(r.ns, r.name, container);
    std::error_code ec;
    const std::uintmax_t size =
        std::filesystem::exists(path, ec) ? std::filesystem::file_size(path, ec) : 0;
    std::uintmax_t offset = 0;
    std::string text;
    {
      std::ifstream in(path, std::ios::binary);
      std::ostringstream all;
      all << in.rdbuf();
      text = all.str();
    }
    if (const std::string tail = param(params, "tailLines"); !tail.empty()) {
      auto n = parse_rv(tail);
      if (!n) {
        return status_response(Status::bad_request("tailLines must be a number"));
      }
      std::size_t pos = text.size();
      std::uint64_t lines = 0;
      if (pos > 0 && text[pos - 1] == '\n') {
        --pos;
      }
      while (pos > 0 && lines < *n) {
        --pos;
        if (text[pos] == '\n') {
          ++lines;
        }
      }
      if (lines == *n && pos < text.size() && text[pos] == '\n') {
        ++pos;
      }
      if (*n == 0) {
        pos = text.size();
      }
      offset = pos;
    }
    if (flag(params, "follow")) {
      LogFollow f;
      f.path = path;
      f.offset = std::min<std::uintmax_t>(offset, size);
      auto running = api.options_.container_running;
      const std::string ns = r.ns;
      const std::string name = r.name;
      f.still_running = [running, ns, name, container] {
        return running && running(ns, name, container);
      };
      return f;
    }
    ApiResponse resp;
    resp.content_type = "text/plain";
    resp.body = text.substr(std::min<std::size_t>(offset, text.size()));
    return resp;
  }

  std::optional<Status> check_name(const ResourceType& t, const object& o, std::string_view name) {
    const bool label_only = t.kind == "Namespace" || t.kind == "Service";
    if (name.empty()) {
      return Status::invalid(
          t.group, t.kind, name,
          {{"FieldValueRequired", "Required value: name or generateName is required",
            "metadata.name"}});
    }
    if (label_only ? !kube::is_dns1123_label(name) : !kube::is_dns1123_subdomain(name)) {
      const std::string rule =
          label_only
              ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character"
              : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character";
      return Status::invalid(
          t.group, t.kind, name,
          {{"FieldValueInvalid", "Invalid value: \"" + std::string(name) + "\": " + rule,
            "metadata.name"}});
    }
    (void)o;
    return std::nullopt;
  }

  static bool tracks_generation(const ResourceType& t) {
    return t.kind == "Deployment" || t.kind == "Pod";
  }

  static bool has_status_subresource(const ResourceType& t) {
    return std::find(t.subresources.begin(), t.subresources.end(), "status") !=
           t.subresources.end();
  }

  std::optional<Status> namespace_exists(const ResourceType& t, std::string_view ns) {
    if (!t.namespaced) {
      return std::nullopt;
    }
    const ResourceType* namespaces = kube::find_resource("", "v1", "namespaces");
    if (!api.store_.get(*namespaces, "", ns)) {
      return Status::not_found("", "namespaces", ns);
    }
    return std::nullopt;
  }

  ApiResult create(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    auto body = written_object(req, t);
    if (!body) {
      return status_response(body.error());
    }
    object o = std::move(*body);
    object& m = kube::metadata(o);
    std::string name(kube::meta_string(o, "name"));
    if (name.empty()) {
      const std::string_view prefix = kube::meta_string(o, "generateName");
      if (!prefix.empty()) {
        name = std::string(prefix) + kube::random_suffix();
        m["name"] = name;
      }
    }
    if (auto bad = check_name(t, o, name)) {
      return status_response(*bad);
    }
    if (t.namespaced) {
      const std::string_view ns = kube::meta_string(o, "namespace");
      if (!ns.empty() && ns != r.ns) {
        return status_response(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the "
            "request"));
      }
      m["namespace"] = r.ns;
      if (auto missing = namespace_exists(t, r.ns)) {
        return status_response(*missing);
      }
    } else {
      m.erase("namespace");
    }
    m["uid"] = kube::random_uuid();
    m["creationTimestamp"] = kube::rfc3339(api.options_.clock());
    m.erase("resourceVersion");
    m.erase("deletionTimestamp");
    m.erase("generation");
    if (tracks_generation(t)) {
      m["generation"] = 1;
    }
    if (t.kind == "Secret") {
      fold_string_data(o);
      if (!o.contains("type")) {
        o["type"] = "Opaque";
      }
    }
    if (t.kind == "Namespace") {
      o["spec"] = object{{"finalizers", array{"kubernetes"}}};
      o["status"] = object{{"phase", "Active"}};
    } else if (has_status_subresource(t)) {
      o.erase("status");
    }
    if (t.kind == "Pod") {
      if (auto bad = pod_defaults(o, name)) {
        return status_response(*bad);
      }
    }
    if (t.kind == "Deployment") {
      if (auto bad = deployment_defaults(o, name)) {
        return status_response(*bad);
      }
    }
    auto stored = api.store_.mutate(t, r.ns, name, [&](const object* current) -> Result<Change> {
      if (current != nullptr) {
        return Status::already_exists(t.group, t.plural, name);
      }
      return Change{Change::Kind::kPut, o};
    });
    if (!stored) {
      return status_response(stored.error());
    }
    if (owners_gone(r.ns, *stored)) {
      collect_orphan(t, r.ns, name);
    }
    return json_response(201, *stored);
  }

  // True when an object names owners and none of them exists any more: its owner was deleted
  // while it was being created (a controller racing the deletion of what drives it). The garbage
  // collector of Kubernetes deletes such dependents; a collection that ran before this object was
  // stored could not see it, so the check runs after storing it. Owners of kinds this cluster does
  // not serve are taken to exist.
  bool owners_gone(std::string_view ns, const object& o) {
    const value* refs = kube::find_path(o, {"metadata", "ownerReferences"});
    if (refs == nullptr || !refs->is_array() || refs->as_array().empty()) {
      return false;
    }
    for (const value& ref : refs->as_array()) {
      if (!ref.is_object()) {
        return false;
      }
      const object& r = ref.as_object();
      auto text = [&](std::string_view key) -> std::string_view {
        const value* v = r.if_contains(key);
        return v != nullptr && v->is_string() ? std::string_view(v->as_string()) : "";
      };
      const ResourceType* owner = kube::find_kind(text("apiVersion"), text("kind"));
      if (owner == nullptr) {
        return false;
      }
      auto current = api.store_.get(*owner, owner->namespaced ? ns : "", text("name"));
      if (current && kube::meta_string(*current, "uid") == text("uid")) {
        return false;
      }
    }
    return true;
  }

  void collect_orphan(const ResourceType& t, std::string_view ns, const std::string& name) {
    if (t.kind == "Pod" && api.options_.graceful_pod_deletion) {
      (void)start_graceful_delete(t, Route{&t, std::string(ns), name, ""}, {}, -1);
    } else if (auto deleted = delete_one(t, ns, name, {})) {
      collect_dependents(ns, kube::meta_string(*deleted, "uid"), false);
    }
  }

  ApiResult get(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    auto o = api.store_.get(t, r.ns, r.name);
    if (!o) {
      return status_response(Status::not_found(t.group, t.plural, r.name));
    }
    if (wants_table(req.accept)) {
      std::vector<object> items;
      items.push_back(std::move(*o));
      return json_response(
          200, make_table(t, items, api.store_.resource_version(), api.options_.clock(),
                          req.target.find("includeObject=Object") != std::string::npos));
    }
    return json_response(200, *o);
  }

  Result<std::pair<kube::LabelSelector, kube::FieldSelector>> selectors(const ResourceType& t,
                                                                        const Params& params) {
    auto labels = kube::LabelSelector::parse(param(params, "labelSelector"));
    if (!labels) {
      return Status::bad_request(labels.error());
    }
    auto fields = kube::FieldSelector::parse(param(params, "fieldSelector"), selectable_fields(t));
    if (!fields) {
      return Status::bad_request(fields.error());
    }
    return std::make_pair(std::move(*labels), std::move(*fields));
  }

  ApiResult list(const ApiRequest& req, const Route& r, const Params& params) {
    const ResourceType& t = *r.type;
    auto sel = selectors(t, params);
    if (!sel) {
      return status_response(sel.error());
    }
    std::size_t limit = 0;
    if (const std::string l = param(params, "limit"); !l.empty()) {
      auto v = parse_rv(l);
      if (!v) {
        return status_response(Status::bad_request("limit must be a non-negative integer"));
      }
      limit = static_cast<std::size_t>(*v);
    }
    // A plain list (no selector, no table) splices the stored JSON without parsing it.
    const bool plain = sel->first.empty() && sel->second.empty() && !wants_table(req.accept);
    auto page = api.store_.list(
        t, r.ns, limit, param(params, "continue"),
        plain ? std::function<bool(const object&)>()
              : [&](const object& o) { return sel->first.matches(o) && sel->second.matches(o); },
        plain ? ListForm::kJson : ListForm::kObjects);
    if (!page) {
      return status_response(page.error());
    }
    if (wants_table(req.accept)) {
      object table = make_table(t, page->items, page->resource_version, api.options_.clock(),
                                req.target.find("includeObject=Object") != std::string::npos);
      if (!page->continue_token.empty()) {
        table["metadata"].as_object()["continue"] = page->continue_token;
      }
      return json_response(200, table);
    }
    object meta;
    meta["resourceVersion"] = std::to_string(page->resource_version);
    if (!page->continue_token.empty()) {
      meta["continue"] = page->continue_token;
    }
    object head;
    head["kind"] = t.list_kind();
    head["apiVersion"] = t.api_version();
    head["metadata"] = std::move(meta);
    head["items"] = array();
    // {"kind":…,"metadata":{…},"items":[]} with the items spliced in before the last "]}".
    std::string body = boost::json::serialize(head);
    body.resize(body.size() - 2);
    bool first = true;
    auto append = [&](std::string_view item) {
      body += first ? "" : ",";
      body += item;
      first = false;
    };
    for (const std::string& item : page->raw) {
      append(item);
    }
    for (const object& o : page->items) {
      append(boost::json::serialize(o));
    }
    body += "]}";
    ApiResponse response;
    response.body = std::move(body);
    return response;
  }

  ApiResult watch(const ApiRequest& req, const Route& r, const Params& params) {
    const ResourceType& t = *r.type;
    auto sel = selectors(t, params);
    if (!sel) {
      return status_response(sel.error());
    }
    WatchRequest w;
    w.type = &t;
    w.namespace_ = r.ns;
    w.labels = std::move(sel->first);
    w.fields = std::move(sel->second);
    w.bookmarks = flag(params, "allowWatchBookmarks");
    w.as_table = wants_table(req.accept);
    w.include_object = param(params, "includeObject") == "Object";
    w.clock = api.options_.clock;
    const std::string rv = param(params, "resourceVersion");
    if (rv.empty() || rv == "0") {
      w.initial_list = true;  // "any" / "most recent": the current state as ADDED, then changes
    } else if (auto v = parse_rv(rv)) {
      w.since = *v;
    } else {
      return status_response(Status::bad_request("invalid resourceVersion \"" + rv + "\""));
    }
    if (const std::string timeout = param(params, "timeoutSeconds"); !timeout.empty()) {
      auto v = parse_rv(timeout);
      if (!v) {
        return status_response(Status::bad_request("timeoutSeconds must be a number"));
      }
      w.timeout = std::chrono::seconds(std::min<std::uint64_t>(*v, 86400));
    }
    return w;
  }

  // Parses DeleteOptions (optional body) for its preconditions.
  Result<std::pair<std::string, std::string>> delete_preconditions(const ApiRequest& req) {
    if (req.body.empty()) {
      return std::make_pair(std::string(), std::string());
    }
    auto body = body_object(req);
    if (!body) {
      return body.error();
    }
    std::string uid;
    std::string rv;
    if (const value* p = body->if_contains("preconditions"); p != nullptr && p->is_object()) {
      if (const value* u = p->as_object().if_contains("uid"); u != nullptr && u->is_string()) {
        uid = u->as_string();
      }
      if (const value* v = p->as_object().if_contains("resourceVersion");
          v != nullptr && v->is_string()) {
        rv = v->as_string();
      }
    }
    return std::make_pair(uid, rv);
  }

  // The object an update (PUT or PATCH) stores, given the current one: identity and status are
  // kept, generation follows spec changes, a stale resourceVersion is a Conflict, and a write that
  // changes nothing is no write at all.
  Result<Change> next_version(const ResourceType& t, const object* current_ptr, object o,
                              const std::string& wanted_rv, bool status_only) {
    const object* current = current_ptr;
    const std::string name(kube::meta_string(*current, "name"));
    if (!wanted_rv.empty() && wanted_rv != kube::meta_string(*current, "resourceVersion")) {
      return Status::conflict(t.group, t.plural, name,
                              "the object has been modified; please apply your changes to the "
                              "latest version and try again");
    }
    object next;
    if (status_only) {
      next = *current;
      if (const value* s = o.if_contains("status")) {
        next["status"] = *s;
      } else {
        next.erase("status");
      }
    } else {
      next = o;
      object& m = kube::metadata(next);
      const object& cm = current->at("metadata").as_object();
      for (const char* kept : {"uid", "creationTimestamp", "deletionTimestamp", "namespace"}) {
        if (const value* v = cm.if_contains(kept)) {
          m[kept] = *v;
        } else {
          m.erase(kept);
        }
      }
      if (has_status_subresource(t) || t.kind == "Namespace") {
        if (const value* s = current->if_contains("status")) {
          next["status"] = *s;
        } else {
          next.erase("status");
        }
      }
      if (t.kind == "Namespace" && !next.contains("spec")) {
        next["spec"] = current->contains("spec") ? current->at("spec") : value(object());
      }
      if (tracks_generation(t)) {
        std::int64_t generation = 1;
        if (const value* g = cm.if_contains("generation"); g != nullptr && g->is_int64()) {
          generation = g->as_int64();
        }
        const value* new_spec = next.if_contains("spec");
        const value* old_spec = current->if_contains("spec");
        const bool changed = (new_spec == nullptr) != (old_spec == nullptr) ||
                             (new_spec != nullptr && *new_spec != *old_spec);
        m["generation"] = changed ? generation + 1 : generation;
      }
    }
    // A write that changes nothing keeps the object and its resourceVersion, as Kubernetes.
    object comparable = next;
    kube::metadata(comparable)["resourceVersion"] = current->at("metadata").at("resourceVersion");
    if (comparable == *current) {
      return Change{Change::Kind::kNone, {}};
    }
    return Change{Change::Kind::kPut, std::move(next)};
  }

  ApiResult update(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    auto body = written_object(req, t);
    if (!body) {
      return status_response(body.error());
    }
    object o = std::move(*body);
    const std::string_view name = kube::meta_string(o, "name");
    if (name != r.name) {
      return status_response(Status::bad_request("the name of the object (" + std::string(name) +
                                                 ") does not match the name on the URL (" + r.name +
                                                 ")"));
    }
    if (t.namespaced) {
      const std::string_view ns = kube::meta_string(o, "namespace");
      if (!ns.empty() && ns != r.ns) {
        return status_response(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the "
            "request"));
      }
    }
    const std::string wanted_rv(kube::meta_string(o, "resourceVersion"));
    const bool status_only = r.subresource == "status";
    if (t.kind == "Secret") {
      fold_string_data(o);
    }
    auto stored = api.store_.mutate(t, r.ns, r.name, [&](const object* current) -> Result<Change> {
      if (current == nullptr) {
        return Status::not_found(t.group, t.plural, r.name);
      }
      return next_version(t, current, std::move(o), wanted_rv, status_only);
    });
    return respond(stored);
  }

  ApiResult patch(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    if (req.body.size() > api.options_.max_body_bytes) {
      return status_response(Status::too_large("Request entity too large: limit is " +
                                               std::to_string(api.options_.max_body_bytes)));
    }
    enum class Format { kJson, kMerge, kStrategic } format;
    const std::string_view type = req.content_type;
    if (type.starts_with("application/json-patch+json")) {
      format = Format::kJson;
    } else if (type.starts_with("application/merge-patch+json")) {
      format = Format::kMerge;
    } else if (type.starts_with("application/strategic-merge-patch+json")) {
      format = Format::kStrategic;
    } else {
      return status_response(Status::unsupported_media_type(
          "the body of the request was in an unknown format - accepted media types include: "
          "application/json-patch+json, application/merge-patch+json, "
          "application/strategic-merge-patch+json (server-side apply is not supported)"));
    }
    boost::system::error_code ec;
    const value patch_doc = boost::json::parse(req.body, ec);
    if (ec) {
      return status_response(
          Status::bad_request("the patch could not be decoded as JSON: " + ec.message()));
    }
    const bool status_only = r.subresource == "status";
    auto stored = api.store_.mutate(t, r.ns, r.name, [&](const object* current) -> Result<Change> {
      if (current == nullptr) {
        return Status::not_found(t.group, t.plural, r.name);
      }
      value patched;
      if (format == Format::kMerge) {
        patched = kube::apply_merge_patch(*current, patch_doc);
      } else {
        auto applied = format == Format::kJson
                           ? kube::apply_json_patch(*current, patch_doc)
                           : kube::apply_strategic_merge_patch(*current, patch_doc, t.kind);
        if (!applied) {
          return Status::unprocessable(applied.error());
        }
        patched = std::move(*applied);
      }
      if (!patched.is_object()) {
        return Status::unprocessable("the patched document is not an object");
      }
      object o = std::move(patched.as_object());
      if (auto bad = check_type(o, t)) {
        return *bad;
      }
      if (kube::meta_string(o, "name") != r.name) {
        return Status::bad_request("the patch may not change the object's name");
      }
      if (t.kind == "Secret") {
        fold_string_data(o);
      }
      // A resourceVersion the patch sets is a precondition, as in an update.
      const std::string wanted_rv(kube::meta_string(o, "resourceVersion"));
      return next_version(t, current, std::move(o), wanted_rv, status_only);
    });
    return respond(stored);
  }

  ApiResult remove(const ApiRequest& req, const Route& r) {
    const ResourceType& t = *r.type;
    auto pre = delete_preconditions(req);
    if (!pre) {
      return status_response(pre.error());
    }
    if (t.kind == "Namespace") {
      return delete_namespace(r.name, *pre);
    }
    if (t.kind == "Pod" && api.options_.graceful_pod_deletion) {
      auto grace = grace_period(req);
      if (!grace) {
        return status_response(grace.error());
      }
      if (*grace != 0) {
        return start_graceful_delete(t, r, *pre, *grace);
      }
    }
    auto deleted = delete_one(t, r.ns, r.name, *pre);
    if (!deleted) {
      return status_response(deleted.error());
    }
    collect_dependents(r.ns, kube::meta_string(*deleted, "uid"), propagation(req) == "Orphan");
    return json_response(200, *deleted);
  }

  // DeleteOptions.propagationPolicy (body or query): Orphan, Background (default) or Foreground.
  static std::string propagation(const ApiRequest& req) {
    auto url = boost::urls::parse_origin_form(req.target);
    for (auto p : url->params()) {
      if (p.key == "propagationPolicy") {
        return std::string(p.value);
      }
    }
    boost::system::error_code ec;
    const value body = req.body.empty() ? value() : boost::json::parse(req.body, ec);
    if (!ec && body.is_object()) {
      if (const value* v = body.as_object().if_contains("propagationPolicy");
          v != nullptr && v->is_string()) {
        return std::string(v->as_string());
      }
    }
    return "Background";
  }

  static bool refers_to(const value& ref, std::string_view uid) {
    const value* u = ref.is_object() ? ref.as_object().if_contains("uid") : nullptr;
    return u != nullptr && u->is_string() && u->as_string() == uid;
  }

  // Garbage collection of what an owner leaves: objects of its namespace whose ownerReferences
  // name it are deleted (pods gracefully), or with Orphan lose that reference.
  void collect_dependents(std::string_view ns, std::string_view owner_uid, bool orphan) {
    if (ns.empty() || owner_uid.empty()) {
      return;
    }
    for (const ResourceType& t : kube::resource_types()) {
      if (!t.namespaced) {
        continue;
      }
      auto page = api.store_.list(t, ns, 0, {}, [&](const object& o) {
        const value* refs = o.contains("metadata")
                                ? o.at("metadata").as_object().if_contains("ownerReferences")
                                : nullptr;
        if (refs == nullptr || !refs->is_array()) {
          return false;
        }
        return std::any_of(refs->as_array().begin(), refs->as_array().end(),
                           [&](const value& ref) { return refers_to(ref, owner_uid); });
      });
      if (!page) {
        continue;
      }
      for (const object& o : page->items) {
        const std::string name(kube::meta_string(o, "name"));
        if (orphan) {
          (void)api.store_.mutate(t, ns, name, [&](const object* current) -> Result<Change> {
            if (current == nullptr) {
              return Change{Change::Kind::kNone, {}};
            }
            object next = *current;
            array& refs = kube::metadata(next)["ownerReferences"].as_array();
            refs.erase(std::remove_if(refs.begin(), refs.end(),
                                      [&](const value& ref) { return refers_to(ref, owner_uid); }),
                       refs.end());
            return Change{Change::Kind::kPut, std::move(next)};
          });
        } else if (t.kind == "Pod" && api.options_.graceful_pod_deletion) {
          (void)start_graceful_delete(t, Route{&t, std::string(ns), name, ""}, {}, -1);
        } else {
          (void)delete_one(t, ns, name, {});
        }
      }
    }
  }

  // DeleteOptions.gracePeriodSeconds (also accepted as a query parameter); -1 when absent.
  Result<std::int64_t> grace_period(const ApiRequest& req) {
    auto url = boost::urls::parse_origin_form(req.target);
    for (auto p : url->params()) {
      if (p.key == "gracePeriodSeconds") {
        auto v = parse_rv(p.value);
        if (!v) {
          return Status::bad_request("gracePeriodSeconds must be a non-negative integer");
        }
        return Result<std::int64_t>(boost::system::in_place_value, static_cast<std::int64_t>(*v));
      }
    }
    if (!req.body.empty()) {
      boost::system::error_code ec;
      const value body = boost::json::parse(req.body, ec);
      if (!ec && body.is_object()) {
        if (const value* g = body.as_object().if_contains("gracePeriodSeconds");
            g != nullptr && g->is_int64()) {
          return Result<std::int64_t>(boost::system::in_place_value,
                                      std::max<std::int64_t>(0, g->as_int64()));
        }
      }
    }
    return Result<std::int64_t>(boost::system::in_place_value, -1);
  }

  // Marks a pod for deletion; the runtime stops its processes and then removes it.
  ApiResult start_graceful_delete(const ResourceType& t, const Route& r,
                                  const std::pair<std::string, std::string>& pre,
                                  std::int64_t grace) {
    auto stored = api.store_.mutate(t, r.ns, r.name, [&](const object* current) -> Result<Change> {
      if (current == nullptr) {
        return Status::not_found(t.group, t.plural, r.name);
      }
      if (!pre.second.empty() && pre.second != kube::meta_string(*current, "resourceVersion")) {
        return Status::conflict(t.group, t.plural, r.name, "Precondition failed: ResourceVersion");
      }
      if (!kube::meta_string(*current, "deletionTimestamp").empty()) {
        return Change{Change::Kind::kNone, {}};  // already terminating
      }
      std::int64_t seconds = grace;
      if (seconds < 0) {
        seconds = 30;
        if (const value* spec = current->if_contains("spec");
            spec != nullptr && spec->is_object()) {
          if (const value* g = spec->as_object().if_contains("terminationGracePeriodSeconds");
              g != nullptr && g->is_int64()) {
            seconds = g->as_int64();
          }
        }
      }
      object next = *current;
      object& m = kube::metadata(next);
      m["deletionTimestamp"] = kube::rfc3339(api.options_.clock() + std::chrono::seconds(seconds));
      m["deletionGracePeriodSeconds"] = seconds;
      return Change{Change::Kind::kPut, std::move(next)};
    });
    return respond(stored);
  }

  Result<object> delete_one(const ResourceType& t, std::string_view ns, std::string_view name,
                            const std::pair<std::string, std::string>& pre) {
    return api.store_.mutate(t, ns, name, [&](const object* current) -> Result<Change> {
      if (current == nullptr) {
        return Status::not_found(t.group, t.plural, name);
      }
      if (!pre.first.empty() && pre.first != kube::meta_string(*current, "uid")) {
        return Status::conflict(
            t.group, t.plural, name,
            "Precondition failed: UID in precondition: " + pre.first +
                ", UID in object meta: " + std::string(kube::meta_string(*current, "uid")));
      }
      if (!pre.second.empty() && pre.second != kube::meta_string(*current, "resourceVersion")) {
        return Status::conflict(t.group, t.plural, name,
                                "Precondition failed: ResourceVersion in precondition: " +
                                    pre.second + ", ResourceVersion in object meta: " +
                                    std::string(kube::meta_string(*current, "resourceVersion")));
      }
      return Change{Change::Kind::kDelete, {}};
    });
  }

  // Deleting a namespace deletes what it holds, then the namespace itself.
  ApiResult delete_namespace(const std::string& name,
                             const std::pair<std::string, std::string>& pre) {
    const ResourceType& namespaces = *kube::find_resource("", "v1", "namespaces");
    auto current = api.store_.get(namespaces, "", name);
    if (!current) {
      return status_response(Status::not_found("", "namespaces", name));
    }
    for (const ResourceType& t : kube::resource_types()) {
      if (!t.namespaced) {
        continue;
      }
      auto page = api.store_.list(t, name, 0, {}, {});
      if (!page) {
        return status_response(page.error());
      }
      for (const object& o : page->items) {
        // NotFound here means a concurrent delete won: the object is gone either way.
        (void)delete_one(t, name, kube::meta_string(o, "name"), {});
      }
    }
    auto deleted = delete_one(namespaces, "", name, pre);
    if (!deleted) {
      return status_response(deleted.error());
    }
    object o = std::move(*deleted);
    o["status"] = object{{"phase", "Terminating"}};
    kube::metadata(o)["deletionTimestamp"] = kube::rfc3339(api.options_.clock());
    return json_response(200, o);
  }

  ApiResult delete_collection(const Route& r, const Params& params) {
    const ResourceType& t = *r.type;
    auto sel = selectors(t, params);
    if (!sel) {
      return status_response(sel.error());
    }
    auto page = api.store_.list(t, r.ns, 0, {}, [&](const object& o) {
      return sel->first.matches(o) && sel->second.matches(o);
    });
    if (!page) {
      return status_response(page.error());
    }
    array items;
    for (const object& o : page->items) {
      const std::string ns(kube::meta_string(o, "namespace"));
      const std::string name(kube::meta_string(o, "name"));
      if (t.kind == "Pod" && api.options_.graceful_pod_deletion) {
        ApiResult marked = start_graceful_delete(t, Route{&t, ns, name, ""}, {}, -1);
        if (auto* resp = std::get_if<ApiResponse>(&marked);
            resp != nullptr && resp->status == 200) {
          items.push_back(boost::json::parse(resp->body));
        }
        continue;
      }
      auto deleted = delete_one(t, ns, name, {});
      if (deleted) {
        items.push_back(std::move(*deleted));
        collect_dependents(ns, kube::meta_string(*deleted, "uid"), false);
      }
    }
    object list;
    list["kind"] = t.list_kind();
    list["apiVersion"] = t.api_version();
    list["metadata"] = object{{"resourceVersion", std::to_string(api.store_.resource_version())}};
    list["items"] = std::move(items);
    return json_response(200, list);
  }

  void bootstrap() {
    const ResourceType& namespaces = *kube::find_resource("", "v1", "namespaces");
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      (void)api.store_.mutate(namespaces, "", name, [&](const object* current) -> Result<Change> {
        if (current != nullptr) {
          return Change{Change::Kind::kNone, {}};
        }
        object o;
        o["kind"] = "Namespace";
        o["apiVersion"] = "v1";
        o["metadata"] = object{{"name", name},
                               {"uid", kube::random_uuid()},
                               {"creationTimestamp", kube::rfc3339(api.options_.clock())},
                               {"labels", object{{"kubernetes.io/metadata.name", name}}}};
        o["spec"] = object{{"finalizers", array{"kubernetes"}}};
        o["status"] = object{{"phase", "Active"}};
        return Change{Change::Kind::kPut, std::move(o)};
      });
    }
  }
};

KubeApi::KubeApi(ObjectStore& store, Options options)
    : store_(store), options_(std::move(options)) {
  Impl{*this}.bootstrap();
}

ApiResult KubeApi::handle(const ApiRequest& request) {
  return Impl{*this}.handle(request);
}

bool WatchRequest::selects(const ObjectEvent& e) const {
  if (e.resource != type) {
    return false;
  }
  if (!namespace_.empty() && e.namespace_ != namespace_) {
    return false;
  }
  return labels.matches(*e.object) && fields.matches(*e.object);
}

Result<ObjectStore::Subscription> KubeApi::start_watch(const WatchRequest& w,
                                                       ObjectStore::Listener listener) {
  std::optional<std::uint64_t> since = w.since;
  std::vector<ObjectEvent> initial;
  if (w.initial_list) {
    auto page = store_.list(*w.type, w.namespace_, 0, {}, [&](const boost::json::object& o) {
      return w.labels.matches(o) && w.fields.matches(o);
    });
    if (!page) {
      return page.error();
    }
    since = page->resource_version;
    for (boost::json::object& o : page->items) {
      const std::string ns(kube::meta_string(o, "namespace"));
      const std::string name(kube::meta_string(o, "name"));
      initial.push_back(ObjectEvent{EventType::kAdded, page->resource_version, w.type, ns, name,
                                    std::make_shared<const boost::json::object>(std::move(o))});
    }
  }
  auto sub = store_.watch(since, std::move(listener));
  if (!sub) {
    return sub.error();
  }
  std::vector<ObjectEvent> events = std::move(initial);
  for (ObjectEvent& e : sub->backlog) {
    if (w.selects(e)) {
      events.push_back(std::move(e));
    }
  }
  sub->backlog = std::move(events);
  return sub;
}

std::string WatchRequest::encode(const ObjectEvent& e) const {
  if (!as_table) {
    return KubeApi::encode_event(e);
  }
  ObjectEvent as_row = e;
  as_row.object = std::make_shared<const boost::json::object>(
      make_table(*type, {*e.object}, e.resource_version,
                 clock ? clock() : std::chrono::system_clock::now(), include_object));
  return KubeApi::encode_event(as_row);
}

std::string KubeApi::encode_event(const ObjectEvent& e) {
  const char* type = e.type == EventType::kAdded      ? "ADDED"
                     : e.type == EventType::kModified ? "MODIFIED"
                                                      : "DELETED";
  std::string out = "{\"type\":\"";
  out += type;
  out += "\",\"object\":";
  out += boost::json::serialize(*e.object);
  out += "}\n";
  return out;
}

std::string KubeApi::encode_bookmark(const kube::ResourceType& type, std::uint64_t rv) {
  boost::json::object o;
  o["kind"] = type.kind;
  o["apiVersion"] = type.api_version();
  o["metadata"] = boost::json::object{{"resourceVersion", std::to_string(rv)}};
  return "{\"type\":\"BOOKMARK\",\"object\":" + boost::json::serialize(o) + "}\n";
}

std::string KubeApi::encode_error(const kube::Status& status) {
  return "{\"type\":\"ERROR\",\"object\":" + boost::json::serialize(status.to_json()) + "}\n";
}

ApiResponse status_response(const kube::Status& status) {
  ApiResponse r;
  r.status = status.code;
  r.body = boost::json::serialize(status.to_json());
  return r;
}

}  // namespace archipel::cluster
