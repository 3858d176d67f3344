#include "cluster/openapi.hpp"

#include "archipel/kube/resource.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include <string>

namespace archipel::embedded {
extern const char kSchemaTypes[];  // src/cluster/schemas/types.json
}

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;

constexpr std::string_view kSchemaPrefix = "archipel.";

object ref(std::string_view type) {
  return object{
      {"allOf", array{object{{"$ref", "#/components/schemas/" + std::string(kSchemaPrefix) +
                                          std::string(type)}}}},
      {"default", object{}}};
}

// A field's schema from the compact notation of types.json ("string", "[]Container"…).
object field_schema(std::string_view type, std::string_view description) {
  object s;
  if (type == "string" || type == "integer" || type == "boolean") {
    s["type"] = type;
    if (type == "integer") {
      s["format"] = "int64";
    }
  } else if (type == "object") {
    s["type"] = "object";
  } else if (type == "map[string]string") {
    s["type"] = "object";
    s["additionalProperties"] = object{{"type", "string"}, {"default", ""}};
  } else if (type.starts_with("[]")) {
    const std::string_view item = type.substr(2);
    s["type"] = "array";
    if (item == "string" || item == "object") {
      s["items"] = object{{"type", item}};
    } else {
      s["items"] = ref(item);
    }
  } else {
    s = ref(type);
  }
  s["description"] = description;
  return s;
}

// components.schemas: every type of types.json, kinds tagged with their group/version/kind.
const object& schemas() {
  static const object all = [] {
    object out;
    const boost::json::value doc = boost::json::parse(embedded::kSchemaTypes);
    for (const auto& [name, def] : doc.as_object()) {
      object s;
      s["type"] = "object";
      s["description"] = def.at("description");
      object properties;
      for (const auto& [field, spec] : def.at("fields").as_object()) {
        properties[field] = field_schema(spec.at(0).as_string(), spec.at(1).as_string());
      }
      s["properties"] = std::move(properties);
      if (const auto* gvk = def.as_object().if_contains("gvk")) {
        s["x-kubernetes-group-version-kind"] =
            array{object{{"group", gvk->at(0)}, {"version", gvk->at(1)}, {"kind", gvk->at(2)}}};
      }
      out[std::string(kSchemaPrefix) + std::string(name)] = std::move(s);
    }
    return out;
  }();
  return all;
}

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
  doc["components"] = object{{"schemas", schemas()}};
  return doc;
}

}  // namespace archipel::cluster
