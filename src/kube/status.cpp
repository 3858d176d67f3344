#include "archipel/kube/status.hpp"

#include <boost/json/array.hpp>

namespace archipel::kube {

boost::json::object Status::to_json() const {
  boost::json::object o;
  o["kind"] = "Status";
  o["apiVersion"] = "v1";
  o["metadata"] = boost::json::object();
  o["status"] = "Failure";
  o["message"] = message;
  o["reason"] = reason;
  boost::json::object details;
  if (!name.empty()) {
    details["name"] = name;
  }
  if (!group.empty()) {
    details["group"] = group;
  }
  if (!kind.empty()) {
    details["kind"] = kind;
  }
  if (!causes.empty()) {
    boost::json::array list;
    for (const StatusCause& c : causes) {
      boost::json::object cause;
      cause["reason"] = c.reason;
      cause["message"] = c.message;
      cause["field"] = c.field;
      list.push_back(std::move(cause));
    }
    details["causes"] = std::move(list);
  }
  if (retry_after_seconds > 0) {
    details["retryAfterSeconds"] = retry_after_seconds;
  }
  if (!details.empty()) {
    o["details"] = std::move(details);
  }
  o["code"] = code;
  return o;
}

namespace {

// "configmaps" or "deployments.apps", as Kubernetes names a resource in messages.
std::string qualified(std::string_view group, std::string_view resource) {
  std::string out(resource);
  if (!group.empty()) {
    out += '.';
    out += group;
  }
  return out;
}

Status make(int code, std::string reason, std::string message) {
  Status s;
  s.code = code;
  s.reason = std::move(reason);
  s.message = std::move(message);
  return s;
}

}  // namespace

Status Status::not_found(std::string_view group, std::string_view resource, std::string_view name) {
  Status s = make(404, "NotFound",
                  qualified(group, resource) + " \"" + std::string(name) + "\" not found");
  s.name = name;
  s.group = group;
  s.kind = resource;
  return s;
}

Status Status::already_exists(std::string_view group, std::string_view resource,
                              std::string_view name) {
  Status s = make(409, "AlreadyExists",
                  qualified(group, resource) + " \"" + std::string(name) + "\" already exists");
  s.name = name;
  s.group = group;
  s.kind = resource;
  return s;
}

Status Status::conflict(std::string_view group, std::string_view resource, std::string_view name,
                        std::string_view why) {
  Status s = make(409, "Conflict",
                  "Operation cannot be fulfilled on " + qualified(group, resource) + " \"" +
                      std::string(name) + "\": " + std::string(why));
  s.name = name;
  s.group = group;
  s.kind = resource;
  return s;
}

Status Status::invalid(std::string_view group, std::string_view kind, std::string_view name,
                       std::vector<StatusCause> causes) {
  std::string message = std::string(kind) + " \"" + std::string(name) + "\" is invalid: ";
  if (causes.size() > 1) {
    message += "[";
  }
  for (std::size_t i = 0; i < causes.size(); ++i) {
    message += (i ? ", " : "") + causes[i].field + ": " + causes[i].message;
  }
  if (causes.size() > 1) {
    message += "]";
  }
  Status s = make(422, "Invalid", std::move(message));
  s.name = name;
  s.group = group;
  s.kind = kind;
  s.causes = std::move(causes);
  return s;
}

Status Status::bad_request(std::string message) {
  return make(400, "BadRequest", std::move(message));
}
Status Status::expired(std::string message) {
  return make(410, "Expired", std::move(message));
}
Status Status::method_not_allowed(std::string message) {
  return make(405, "MethodNotAllowed", std::move(message));
}
Status Status::not_acceptable(std::string message) {
  return make(406, "NotAcceptable", std::move(message));
}
Status Status::unsupported_media_type(std::string message) {
  return make(415, "UnsupportedMediaType", std::move(message));
}
Status Status::too_large(std::string message) {
  return make(413, "RequestEntityTooLarge", std::move(message));
}
Status Status::internal(std::string message) {
  return make(500, "InternalError", std::move(message));
}
Status Status::unprocessable(std::string message) {
  return make(422, "Invalid", std::move(message));
}
Status Status::no_route(std::string_view path) {
  return make(404, "NotFound",
              "the server could not find the requested resource (" + std::string(path) + ")");
}

}  // namespace archipel::kube
