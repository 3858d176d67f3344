#pragma once

// The bridge between a site's replica groups and its Kubernetes (embedded or external).
//
// Inwards: for each group the bridge lists, then watches, the collections its objects live in
// (a shared namespace: every shared kind in it; a shared object: its kind, filtered to its
// name), and reports what Kubernetes holds to the sharing service: each list as a snapshot (a
// shared object missing from it was deleted while nobody watched), each event as a change. The
// replica diffs every report against the version it knew before, so an edit made with kubectl
// directly against the cluster is replicated like one made through the proxy, and the echo of
// its own write produces nothing.
//
// Outwards: a merged object the group asks the site to hold is written onto what Kubernetes
// holds: the replicated fields (the object's intent) replaced, everything else kept (status,
// uid, finalizers, owner references), with resourceVersion as the precondition and the
// site's field manager. A write that loses a race with another writer (409) is retried once
// the watch has shown the newer version, so nothing a local controller or user wrote meanwhile
// is overwritten blindly; the replica then sees that version and merges it. A write Kubernetes
// refuses as invalid is logged and counted, not retried: the group's next change asks again.

#include "archipel/sharing/replica.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace archipel::sharing {

/// What the bridge needs of the site's Kubernetes API (the site adapts its cluster client).
class KubeClient {
 public:
  struct Reply {
    unsigned status = 0;
    std::string body;
  };
  /// The reply, or why none came (unreachable, timeout).
  using Result = boost::system::result<Reply, std::string>;

  virtual ~KubeClient() = default;

  /// One request with a JSON body (may be empty), its answer read whole.
  virtual boost::asio::awaitable<Result> request(std::string method, std::string target,
                                                 std::string body) = 0;

  /// A streamed GET (a watch): `on_line` gets each line of the body as it arrives, and
  /// returns false to end the stream early; returns at the end of the stream with its status
  /// (the body is only streamed for a 200; Reply::body is empty then).
  virtual boost::asio::awaitable<Result> stream(std::string target,
                                                std::function<bool(std::string_view)> on_line) = 0;
};

/// What a group replicates of the site's Kubernetes, from its id: "namespace/<ns>" (every
/// object of the shared kinds in <ns>) or "<plural>/<ns>/<name>" (one object).
struct Selection {
  std::string namespace_name;
  std::vector<std::string> resources;  ///< plurals ("configmaps", "deployments")
  std::string name;                    ///< one object's name; empty: every object

  /// Errors name what is wrong with `group`. `shared_kinds`: the plurals a shared namespace
  /// carries.
  static boost::system::result<Selection, std::string> of_group(
      std::string_view group, const std::vector<std::string>& shared_kinds);
};

/// The id of the group sharing `name` of `resource` in `ns`: "namespace/<name>" for the
/// resource "namespaces", "<resource>/<ns>/<name>" otherwise (what Selection::of_group reads).
[[nodiscard]] std::string group_id(std::string_view resource, std::string_view ns,
                                   std::string_view name);

/// The plurals a shared namespace carries unless configured otherwise.
[[nodiscard]] std::vector<std::string> default_shared_kinds();

/// The shared object's key for a Kubernetes object of resource `plural` (nullopt: not a
/// namespaced kind the embedded cluster's table knows).
[[nodiscard]] std::optional<ObjectKey> object_key(std::string_view plural, std::string_view ns,
                                                  std::string_view name);

class Bridge {
 public:
  struct Options {
    std::string field_manager = "archipel";
    std::vector<std::string> shared_kinds = default_shared_kinds();
    /// Between retries of a write that raced another writer, or found Kubernetes unreachable.
    std::chrono::milliseconds retry{100};
    /// Writes to Kubernetes under way at once. The others wait, and a newer state of an object
    /// replaces the waiting one: an object that changes many times during a catch-up is written
    /// a few times, not once per change.
    std::size_t writes_in_flight = 16;
    /// Fields each site keeps to itself, as dotted paths ("spec.replicas" when an autoscaler
    /// owns it): never reported to the group, and kept as the site's Kubernetes holds them
    /// when a merged object is written.
    std::vector<std::string> local_fields;
  };

  /// A change of what the site's Kubernetes holds, for the sharing service: `key` holds
  /// `observed` (nullopt: nothing).
  using Report = std::function<void(const std::string& group, const ObjectKey& key,
                                    std::optional<boost::json::object> observed)>;
  /// A complete list of the group's objects under `prefix` (an ObjectKey prefix): every key
  /// under it that is not in `items` is absent.
  using Snapshot =
      std::function<void(const std::string& group, const std::string& prefix,
                         std::vector<std::pair<ObjectKey, boost::json::object>> items)>;

  /// Counters, for /metrics.
  struct Counters {
    std::atomic<std::uint64_t> events{0};  ///< watch events seen
    std::atomic<std::uint64_t> writes{0};  ///< objects written (created, replaced, deleted)
    std::atomic<std::uint64_t> write_conflicts{0};  ///< writes retried after a 409
    std::atomic<std::uint64_t> write_refusals{0};   ///< writes Kubernetes refused (not retried)
  };

  static std::unique_ptr<Bridge> start(boost::asio::io_context& io,
                                       std::shared_ptr<KubeClient> kube, Options options,
                                       Report report, Snapshot snapshot);

  /// Stops watching and writing (pending work is dropped; the replicas ask again after a
  /// restart, from their records).
  virtual ~Bridge() = default;

  /// Watches what `group` shares, from now on. A malformed id is logged and ignored.
  /// Thread-safe.
  virtual void follow(const std::string& group) = 0;
  /// Stops watching `group`. Thread-safe.
  virtual void unfollow(const std::string& group) = 0;

  /// Makes the site's Kubernetes hold `write` (the service's LocalWriter). Thread-safe.
  virtual void write(const std::string& group, const LocalWrite& write) = 0;

  [[nodiscard]] virtual const Counters& counters() const noexcept = 0;
};

}  // namespace archipel::sharing
