#pragma once

// A site's sharing at run time: its replica groups (GroupReplica), their records in the store,
// their messages over the peer channel, and the writes they ask of the site's Kubernetes.
//
// Transport: towards each peer of its groups the service keeps one stream (method
// kSharingMethod) carrying GroupMessages, opened while the peer channel is connected and
// reopened after it drops; each peer does the same towards it. A step (a peer's message, a
// local change, a tick) persists the group's records in one WriteBatch before its messages
// leave (the durability contract of replica.hpp). Everything runs on one strand.

#include "archipel/peer/peer_node.hpp"
#include "archipel/sharing/replica.hpp"
#include "archipel/sharing/store.hpp"

#include <chrono>
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

inline constexpr std::string_view kSharingMethod = "sharing.group";

class SharingService {
 public:
  struct Options {
    std::string site;                    ///< this site's name
    std::chrono::milliseconds tick{20};  ///< how often connections are checked, groups flushed
    ReplicaOptions replica;
  };

  /// Applies what a group asks of the site's Kubernetes (the bridge). Called on the service's
  /// strand; it must not block. The bridge reports what Kubernetes then holds with
  /// local_change(), as for any other change.
  using LocalWriter = std::function<void(const std::string& group, const LocalWrite& write)>;

  /// Starts on `io`, serving kSharingMethod on `node` from now on. `node` and `store` must
  /// outlive the service.
  static std::unique_ptr<SharingService> start(boost::asio::io_context& io, peer::PeerNode& node,
                                               RecordStore& store, SchemaOf schema, Options options,
                                               LocalWriter writer);

  /// Stops: no more messages, ticks or writes. Waits (up to 5 s) for the strand to finish its
  /// current step, so that a successor may open the same store; do not destroy it from a
  /// thread running the io_context while that is its only thread.
  virtual ~SharingService() = default;

  /// Replicates `spec` from now on, with what the store holds of it. Thread-safe.
  virtual void join(GroupSpec spec) = 0;

  /// The site's Kubernetes now holds `observed` for `key` of `group` (nullopt: nothing).
  /// Thread-safe.
  virtual void local_change(std::string group, ObjectKey key,
                            std::optional<boost::json::object> observed) = 0;

  /// The groups' status as of the last step. Thread-safe.
  [[nodiscard]] virtual std::vector<GroupStatus> status() const = 0;
};

}  // namespace archipel::sharing
