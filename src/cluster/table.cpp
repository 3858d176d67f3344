#include "cluster/table.hpp"

#include "archipel/kube/object.hpp"

#include <boost/json/array.hpp>

#include <functional>
#include <string>

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;

struct Column {
  const char* name;
  const char* type;  // "string" or "integer"
  int priority;      // 0: always shown; 1: with -o wide
  const char* description;
  std::function<value(const object&, std::chrono::system_clock::time_point)> cell;
};

std::string str(const object& o, std::initializer_list<const char*> path, const char* fallback) {
  const value* v = kube::find_path(o, path);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string(fallback);
}

std::int64_t integer(const object& o, std::initializer_list<const char*> path) {
  const value* v = kube::find_path(o, path);
  return v != nullptr && v->is_int64() ? v->as_int64() : 0;
}

std::int64_t count(const object& o, const char* field) {
  const value* v = o.if_contains(field);
  if (v == nullptr) {
    return 0;
  }
  if (v->is_object()) {
    return static_cast<std::int64_t>(v->as_object().size());
  }
  if (v->is_array()) {
    return static_cast<std::int64_t>(v->as_array().size());
  }
  return 0;
}

Column name_column() {
  return {"Name", "string", 0,
          "Name must be unique within a namespace. More info: "
          "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
          [](const object& o, auto) { return value(std::string(kube::meta_string(o, "name"))); }};
}

Column age_column() {
  return {"Age", "string", 0,
          "CreationTimestamp is a timestamp representing the server time when this object was "
          "created.",
          [](const object& o, std::chrono::system_clock::time_point now) {
            std::chrono::system_clock::time_point created;
            if (!kube::parse_rfc3339(kube::meta_string(o, "creationTimestamp"), created)) {
              return value("<unknown>");
            }
            return value(kube::human_duration(
                std::chrono::duration_cast<std::chrono::seconds>(now - created)));
          }};
}

std::vector<Column> columns_for(std::string_view kind) {
  std::vector<Column> c{name_column()};
  if (kind == "Namespace") {
    c.push_back({"Status", "string", 0, "The status of the namespace", [](const object& o, auto) {
                   return value(str(o, {"status", "phase"}, ""));
                 }});
  } else if (kind == "ConfigMap") {
    c.push_back({"Data", "integer", 0, "Number of data entries", [](const object& o, auto) {
                   return value(count(o, "data") + count(o, "binaryData"));
                 }});
  } else if (kind == "Secret") {
    c.push_back({"Type", "string", 0, "The type of the secret",
                 [](const object& o, auto) { return value(str(o, {"type"}, "Opaque")); }});
    c.push_back({"Data", "integer", 0, "Number of data entries",
                 [](const object& o, auto) { return value(count(o, "data")); }});
  } else if (kind == "ServiceAccount") {
    c.push_back({"Secrets", "integer", 0, "Number of secrets",
                 [](const object& o, auto) { return value(count(o, "secrets")); }});
  } else if (kind == "Pod") {
    c.push_back({"Ready", "string", 0, "The aggregate readiness state of this pod",
                 [](const object& o, auto) {
                   std::int64_t ready = 0;
                   const value* statuses = kube::find_path(o, {"status", "containerStatuses"});
                   if (statuses != nullptr && statuses->is_array()) {
                     for (const value& s : statuses->as_array()) {
                       const value* r =
                           s.is_object() ? s.as_object().if_contains("ready") : nullptr;
                       ready += r != nullptr && r->is_bool() && r->as_bool() ? 1 : 0;
                     }
                   }
                   const value* containers = kube::find_path(o, {"spec", "containers"});
                   const std::size_t total = containers != nullptr && containers->is_array()
                                                 ? containers->as_array().size()
                                                 : 0;
                   return value(std::to_string(ready) + "/" + std::to_string(total));
                 }});
    c.push_back(
        {"Status", "string", 0, "The aggregate status of the containers in this pod",
         [](const object& o, auto) {
           // As kubectl shows it: Terminating, else a container's waiting or terminated
           // reason, else the phase.
           if (!kube::meta_string(o, "deletionTimestamp").empty()) {
             return value("Terminating");
           }
           std::string reason = str(o, {"status", "phase"}, "Pending");
           const value* statuses = kube::find_path(o, {"status", "containerStatuses"});
           if (statuses != nullptr && statuses->is_array()) {
             for (const value& s : statuses->as_array()) {
               if (!s.is_object()) {
                 continue;
               }
               const std::string waiting = str(s.as_object(), {"state", "waiting", "reason"}, "");
               const std::string done = str(s.as_object(), {"state", "terminated", "reason"}, "");
               if (!waiting.empty()) {
                 return value(waiting);
               }
               if (!done.empty() && reason != "Running") {
                 reason = done;
               }
             }
           }
           return value(reason);
         }});
    c.push_back({"Restarts", "string", 0,
                 "The number of times the containers in this pod have been restarted",
                 [](const object& o, auto) {
                   std::int64_t restarts = 0;
                   const value* statuses = kube::find_path(o, {"status", "containerStatuses"});
                   if (statuses != nullptr && statuses->is_array()) {
                     for (const value& s : statuses->as_array()) {
                       if (s.is_object()) {
                         restarts += integer(s.as_object(), {"restartCount"});
                       }
                     }
                   }
                   return value(std::to_string(restarts));
                 }});
  } else if (kind == "Deployment") {
    c.push_back(
        {"Ready", "string", 0, "Number of the pod with ready state", [](const object& o, auto) {
           return value(std::to_string(integer(o, {"status", "readyReplicas"})) + "/" +
                        std::to_string(integer(o, {"spec", "replicas"})));
         }});
    c.push_back({"Up-to-date", "integer", 0,
                 "Total number of non-terminated pods targeted by this deployment that have the "
                 "desired template spec",
                 [](const object& o, auto) {
                   return value(integer(o, {"status", "updatedReplicas"}));
                 }});
    c.push_back({"Available", "integer", 0,
                 "Total number of available pods (ready for at least minReadySeconds) targeted by "
                 "this deployment",
                 [](const object& o, auto) {
                   return value(integer(o, {"status", "availableReplicas"}));
                 }});
  } else if (kind == "Service") {
    c.push_back({"Type", "string", 0, "The type of the service", [](const object& o, auto) {
                   return value(str(o, {"spec", "type"}, "ClusterIP"));
                 }});
    c.push_back(
        {"Cluster-IP", "string", 0, "The cluster IP of the service", [](const object& o, auto) {
           return value(str(o, {"spec", "clusterIP"}, "<none>"));
         }});
  }
  c.push_back(age_column());
  return c;
}

}  // namespace

object make_table(const kube::ResourceType& type, const std::vector<object>& items,
                  std::uint64_t resource_version, std::chrono::system_clock::time_point now,
                  bool include_object) {
  const std::vector<Column> columns = columns_for(type.kind);
  array definitions;
  for (const Column& c : columns) {
    object d;
    d["name"] = c.name;
    d["type"] = c.type;
    d["format"] = std::string_view(c.name) == "Name" ? "name" : "";
    d["description"] = c.description;
    d["priority"] = c.priority;
    definitions.push_back(std::move(d));
  }
  array rows;
  for (const object& o : items) {
    array cells;
    for (const Column& c : columns) {
      cells.push_back(c.cell(o, now));
    }
    object row;
    row["cells"] = std::move(cells);
    if (include_object) {
      row["object"] = o;
    } else {
      object partial;
      partial["kind"] = "PartialObjectMetadata";
      partial["apiVersion"] = "meta.k8s.io/v1";
      const value* m = o.if_contains("metadata");
      partial["metadata"] = m != nullptr ? *m : value(object());
      row["object"] = std::move(partial);
    }
    rows.push_back(std::move(row));
  }
  object table;
  table["kind"] = "Table";
  table["apiVersion"] = "meta.k8s.io/v1";
  table["metadata"] = object{{"resourceVersion", std::to_string(resource_version)}};
  table["columnDefinitions"] = std::move(definitions);
  table["rows"] = std::move(rows);
  return table;
}

}  // namespace archipel::cluster
