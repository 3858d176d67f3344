#pragma once

// Kubernetes API errors as the API server reports them: a `Status` object (kind Status,
// apiVersion v1) with an HTTP code, a machine-readable reason and a message. Clients (kubectl,
// client-go, the Python client) branch on code and reason, so both follow Kubernetes exactly.

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace archipel::kube {

/// One field-level cause of an Invalid error ("metadata.name: Required value").
struct StatusCause {
  std::string reason;   ///< FieldValueRequired, FieldValueInvalid, FieldValueNotSupported…
  std::string message;  ///< "Required value: name or generateName is required"
  std::string field;    ///< "metadata.name"
};

struct Status {
  int code = 500;       ///< HTTP status code
  std::string reason;   ///< StatusReason: NotFound, AlreadyExists, Conflict, Invalid…
  std::string message;  ///< for people
  std::string name;     ///< details.name (empty: none)
  std::string group;    ///< details.group
  std::string kind;     ///< details.kind (a resource plural, or a Kind for Invalid)
  std::vector<StatusCause> causes;
  int retry_after_seconds = 0;

  /// The Status object as Kubernetes serialises it.
  [[nodiscard]] boost::json::object to_json() const;

  // Constructors for the errors the API server returns. `resource` is the plural name
  // ("configmaps"), `group` its API group ("" for core).
  static Status not_found(std::string_view group, std::string_view resource, std::string_view name);
  static Status already_exists(std::string_view group, std::string_view resource,
                               std::string_view name);
  /// Update with a stale resourceVersion.
  static Status conflict(std::string_view group, std::string_view resource, std::string_view name,
                         std::string_view why);
  /// `kind` is the object's Kind ("ConfigMap"), as Kubernetes reports Invalid.
  static Status invalid(std::string_view group, std::string_view kind, std::string_view name,
                        std::vector<StatusCause> causes);
  static Status bad_request(std::string message);
  /// A resourceVersion too old to serve (reason Expired, code 410).
  static Status expired(std::string message);
  static Status method_not_allowed(std::string message);
  static Status not_acceptable(std::string message);
  static Status unsupported_media_type(std::string message);
  static Status too_large(std::string message);
  static Status internal(std::string message);
  /// A well-formed request that cannot be applied (a failing patch): 422 with reason Invalid.
  static Status unprocessable(std::string message);
  /// A path that names no resource (404 with reason NotFound and no details).
  static Status no_route(std::string_view path);
};

}  // namespace archipel::kube
