#include "cluster/openapi.hpp"

#include "archipel/kube/resource.hpp"

#include <boost/json/array.hpp>

#include <string>

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;

std::string gv_path(const kube::ResourceType& t) {
  return t.group.empty() ? "api/v1" : "apis/" + std::string(t.group) + "/" + std::string(t.version);
}

object query_param(const char* name) {
  return object{{"name", name}, {"in", "query"}, {"schema", object{{"type", "string"}}}};
}

object path_param(const char* name) {
  return object{
      {"name", name}, {"in", "path"}, {"required", true}, {"schema", object{{"type", "string"}}}};
}

object operation(const kube::ResourceType& t, const char* action, bool writes,
                 const object& path_params) {
  object op;
  op["operationId"] = std::string(action) + std::string(t.kind);
  op["x-kubernetes-action"] = action;
  op["x-kubernetes-group-version-kind"] =
      object{{"group", t.group}, {"version", t.version}, {"kind", t.kind}};
  array params;
  for (const auto& p : path_params) {
    params.push_back(path_param(p.key().data()));
  }
  if (writes) {
    params.push_back(query_param("dryRun"));
    params.push_back(query_param("fieldManager"));
    params.push_back(query_param("fieldValidation"));
  }
  op["parameters"] = std::move(params);
  op["responses"] = object{{"200", object{{"description", "OK"}}}};
  return op;
}

}  // namespace

object openapi_v3_root() {
  object paths;
  for (const kube::ResourceType& t : kube::resource_types()) {
    const std::string p = gv_path(t);
    paths[p] = object{{"serverRelativeURL", "/openapi/v3/" + p}};
  }
  return object{{"paths", std::move(paths)}};
}

std::optional<object> openapi_v3_document(std::string_view group_version) {
  object paths;
  for (const kube::ResourceType& t : kube::resource_types()) {
    if (gv_path(t) != group_version) {
      continue;
    }
    const std::string base = "/" + gv_path(t) + (t.namespaced ? "/namespaces/{namespace}/" : "/") +
                             std::string(t.plural);
    const object collection_params = t.namespaced ? object{{"namespace", true}} : object{};
    object item_params = collection_params;
    item_params["name"] = true;
    paths[base] = object{{"get", operation(t, "list", false, collection_params)},
                         {"post", operation(t, "post", true, collection_params)}};
    paths[base + "/{name}"] = object{{"get", operation(t, "get", false, item_params)},
                                     {"put", operation(t, "put", true, item_params)},
                                     {"patch", operation(t, "patch", true, item_params)},
                                     {"delete", operation(t, "delete", false, item_params)}};
  }
  if (paths.empty()) {
    return std::nullopt;
  }
  object doc;
  doc["openapi"] = "3.0.0";
  doc["info"] = object{{"title", "Kubernetes"}, {"version", "v1.31.0-archipel"}};
  doc["paths"] = std::move(paths);
  doc["components"] = object{{"schemas", object{}}};
  return doc;
}

}  // namespace archipel::cluster
