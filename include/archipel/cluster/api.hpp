#pragma once

// The embedded cluster's Kubernetes API, independent of HTTP plumbing: a request (method, target,
// a few headers, body) in, a response out. Watches are returned as a WatchRequest that the HTTP
// layer streams (see api_server.hpp). Thread-safe: requests may be handled concurrently.

#include "archipel/cluster/store.hpp"
#include "archipel/kube/resource.hpp"
#include "archipel/kube/selector.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace archipel::cluster {

struct ApiRequest {
  std::string method;  ///< "GET", "POST", "PUT", "PATCH", "DELETE"
  std::string target;  ///< path and query, as on the request line
  std::string accept;
  std::string content_type;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// A watch to stream: events in Kubernetes' watch encoding, one JSON object per line.
struct WatchRequest {
  const kube::ResourceType* type = nullptr;
  std::string namespace_;              ///< empty: every namespace
  std::optional<std::uint64_t> since;  ///< resume after this resourceVersion
  bool initial_list = false;           ///< send the current objects as ADDED first
  bool bookmarks = false;              ///< allowWatchBookmarks
  std::chrono::seconds timeout{1800};
  kube::LabelSelector labels;
  kube::FieldSelector fields;
  bool as_table = false;        ///< events carry one-row Tables (kubectl get -w)
  bool include_object = false;  ///< Table rows carry the whole object
  std::function<std::chrono::system_clock::time_point()> clock;

  /// Whether an object passes the request's namespace and selectors.
  [[nodiscard]] bool selects(const ObjectEvent& e) const;
  /// The event as a line of the watch stream: {"type":"ADDED","object":{…}}\n, the object
  /// rendered as a Table when the client asked for one.
  [[nodiscard]] std::string encode(const ObjectEvent& e) const;
};

/// `kubectl logs -f`: the HTTP layer streams the file as it grows, until the container stops
/// (and the file is drained) or the client goes away.
struct LogFollow {
  std::filesystem::path path;
  std::uintmax_t offset = 0;            ///< where to start (after tailLines/limitBytes)
  std::function<bool()> still_running;  ///< whether more may be written
};

using ApiResult = std::variant<ApiResponse, WatchRequest, LogFollow>;

class KubeApi {
 public:
  struct Options {
    std::size_t max_body_bytes = 3 * 1024 * 1024;  ///< as kube-apiserver's default
    std::function<std::chrono::system_clock::time_point()> clock = [] {
      return std::chrono::system_clock::now();
    };
    /// Where a container's log is, and whether it runs: set when a PodRuntime runs the pods
    /// (pods/log answers 400 otherwise).
    std::function<std::filesystem::path(std::string_view ns, std::string_view pod,
                                        std::string_view container)>
        log_path;
    std::function<bool(std::string_view ns, std::string_view pod, std::string_view container)>
        container_running;
    /// Pods are deleted gracefully (deletionTimestamp, then the runtime removes them once their
    /// processes ended). Without a runtime, deletion is immediate.
    bool graceful_pod_deletion = false;
    std::string node_name = "archipel";
  };

  /// `store` must outlive the KubeApi.
  KubeApi(ObjectStore& store, Options options);

  /// Handles one request. Never throws; every failure is a Kubernetes Status response.
  [[nodiscard]] ApiResult handle(const ApiRequest& request);

  /// Starts the watch described by `w`: the events to send first (initial list and backlog) and
  /// the subscription delivering later ones to `listener` (see ObjectStore::watch).
  [[nodiscard]] Result<ObjectStore::Subscription> start_watch(const WatchRequest& w,
                                                              ObjectStore::Listener listener);

  /// One watch event as a line, the object as stored: {"type":"ADDED","object":{…}}\n
  [[nodiscard]] static std::string encode_event(const ObjectEvent& e);
  /// A BOOKMARK event carrying only the resourceVersion.
  [[nodiscard]] static std::string encode_bookmark(const kube::ResourceType& type,
                                                   std::uint64_t resource_version);
  /// An ERROR event carrying a Status (e.g. 410 Expired).
  [[nodiscard]] static std::string encode_error(const kube::Status& status);

  [[nodiscard]] ObjectStore& store() noexcept { return store_; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  struct Impl;
  ObjectStore& store_;
  Options options_;
};

/// The response for a Status.
[[nodiscard]] ApiResponse status_response(const kube::Status& status);

}  // namespace archipel::cluster
