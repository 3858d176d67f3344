#pragma once

// What a Kubernetes API request is about, read from its method and target the way
// kube-apiserver reads it (its RequestInfo), and where its scope comes from. Pure: no I/O.

#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archipel::proxy {

/// The header that carries a request's scope.
inline constexpr std::string_view kScopeHeader = "X-Archipel-Scope";
/// The annotation that carries a written object's scope.
inline constexpr std::string_view kScopeAnnotation = "archipel.io/scope";
/// The annotation naming the site an item of a merged answer came from.
inline constexpr std::string_view kSiteAnnotation = "archipel.io/site";

enum class Verb {
  kGet,
  kList,
  kWatch,
  kCreate,
  kUpdate,
  kPatch,
  kDelete,
  kDeleteCollection,
  kOther,  ///< a method Kubernetes does not serve on resources (OPTIONS…)
};

[[nodiscard]] const char* to_string(Verb verb) noexcept;

/// A request's target, classified. Non-resource paths (discovery, /openapi, /version) have
/// `resource` empty.
struct RequestInfo {
  Verb verb = Verb::kOther;
  std::string group;  ///< "" for the core group
  std::string version;
  std::string resource;     ///< plural; empty for a non-resource path
  std::string subresource;  ///< "status", "log"…; empty for the object itself
  std::string namespace_;   ///< empty for cluster-scoped and all-namespaces requests
  std::string name;         ///< empty for collections

  [[nodiscard]] bool is_resource() const noexcept { return !resource.empty(); }
  /// A read that returns one answer per site (get, list, watch).
  [[nodiscard]] bool is_read() const noexcept {
    return verb == Verb::kGet || verb == Verb::kList || verb == Verb::kWatch;
  }
  [[nodiscard]] bool is_write() const noexcept {
    return verb == Verb::kCreate || verb == Verb::kUpdate || verb == Verb::kPatch ||
           verb == Verb::kDelete || verb == Verb::kDeleteCollection;
  }
};

/// Classifies `method` ("GET") on `path` (decoded, without the query) with the query's `watch`
/// flag.
[[nodiscard]] RequestInfo classify(std::string_view method, std::string_view path, bool watch);

/// Where a request's scope was found.
enum class ScopeSource { kNone, kHeader, kPathPrefix, kAnnotation };

struct ScopeText {
  std::string text;  ///< the expression; empty with kNone
  ScopeSource source = ScopeSource::kNone;
};

/// Takes the `/scope/<url-encoded expression>/` prefix off `target` (path and query), if it has
/// one: returns the decoded expression and leaves the rest of the target ("/api/v1/pods?x=y")
/// in `target`. Errors: a prefix without its expression or with bad percent-encoding.
[[nodiscard]] boost::system::result<std::optional<std::string>, std::string> take_path_scope(
    std::string& target);

/// The `archipel.io/scope` annotation of a JSON object body; nullopt when it has none or the
/// body is not a JSON object (the cluster then reports what is wrong with it).
[[nodiscard]] std::optional<std::string> annotation_scope(std::string_view body);

/// Request headers forwarded to a site's Kubernetes: the ones that shape the answer (Accept,
/// Content-Type…). Hop-by-hop headers, credentials and Accept-Encoding are not.
[[nodiscard]] bool forwarded_request_header(std::string_view name) noexcept;
/// Response headers passed back to the client (hop-by-hop and framing headers are not).
[[nodiscard]] bool forwarded_response_header(std::string_view name) noexcept;

using Headers = std::vector<std::pair<std::string, std::string>>;

/// The value of the first header named `name` (case-insensitive); empty when absent.
[[nodiscard]] std::string_view find_header(const Headers& headers, std::string_view name) noexcept;

/// The value of query parameter `key` in `target` (decoded), nullopt when absent.
[[nodiscard]] std::optional<std::string> query_param(std::string_view target, std::string_view key);
/// `target` with query parameter `key` set to `value` (encoded here), or removed when nullopt.
[[nodiscard]] std::string with_query_param(std::string_view target, std::string_view key,
                                           std::optional<std::string_view> value);

}  // namespace archipel::proxy
