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
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace archipel::sharing {

inline constexpr std::string_view kSharingMethod = "sharing.group";
/// A peer asks this site to share a group it is in (share_among).
inline constexpr std::string_view kShareMethod = "sharing.share";

class SharingService {
 public:
  struct Options {
    std::string site;                    ///< this site's name
    std::chrono::milliseconds tick{20};  ///< how often connections are checked, groups flushed
    ReplicaOptions replica;
  };

  /// What the service tells the site (the bridge). Called on the service's strand; they must
  /// not block.
  struct Hooks {
    /// Make the site's Kubernetes hold `write`. The bridge reports what Kubernetes then holds
    /// with local_change(), as for any other change.
    std::function<void(const std::string& group, const LocalWrite& write)> write;
    /// The site replicates `group` from now on: resumed from the store at start, shared here,
    /// or joined on a member's invitation.
    std::function<void(const std::string& group)> joined;
    /// The site no longer replicates `group` (a member removed it); its copies stay.
    std::function<void(const std::string& group)> left;
  };

  /// Starts on `io`, serving kSharingMethod on `node` from now on, and resumes every group the
  /// store holds. `node` and `store` must outlive the service.
  static std::unique_ptr<SharingService> start(boost::asio::io_context& io, peer::PeerNode& node,
                                               RecordStore& store, SchemaOf schema, Options options,
                                               Hooks hooks);

  /// Stops: no more messages, ticks or writes. Waits (up to 5 s) for the strand to finish its
  /// current step, so that a successor may open the same store; do not destroy it from a
  /// thread running the io_context while that is its only thread.
  virtual ~SharingService() = default;

  /// Shares `group` with `members` (this site is added): creates the group, or changes its
  /// membership; the other members learn it over the peer channel (those added are invited).
  /// Thread-safe.
  virtual void share(std::string group, std::vector<std::string> members) = 0;

  /// Shares `group` among `members`, this site among them or not: when it is not, the first
  /// of them the peer channel reaches is asked to share it (method kShareMethod), and invites
  /// the others. Thread-safe.
  virtual void share_among(std::string group, std::vector<std::string> members) = 0;

  /// Stops sharing `group` with `sites` (empty: with every other member). They are told and
  /// leave the group, keeping their copies, or deleting them with `delete_copies`.
  /// Thread-safe.
  virtual void unshare(std::string group, std::vector<std::string> sites, bool delete_copies) = 0;

  /// The site's Kubernetes now holds `observed` for `key` of `group` (nullopt: nothing).
  /// Thread-safe.
  virtual void local_change(std::string group, ObjectKey key,
                            std::optional<boost::json::object> observed) = 0;

  /// The site's Kubernetes holds exactly `items` of `group` under the key prefix `prefix`: a
  /// key under it that the group shares and `items` lacks was deleted. Thread-safe.
  virtual void local_snapshot(std::string group, std::string prefix,
                              std::vector<std::pair<ObjectKey, boost::json::object>> items) = 0;

  /// The groups' status as of the last step. Thread-safe.
  [[nodiscard]] virtual std::vector<GroupStatus> status() const = 0;

  /// What the service exchanged with one peer, all groups together, since it started.
  struct Traffic {
    std::string peer;
    std::uint64_t messages_sent = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t messages_received = 0;
    std::uint64_t bytes_received = 0;
  };
  /// Per peer it exchanged anything with, by name. Thread-safe.
  [[nodiscard]] virtual std::vector<Traffic> traffic() const = 0;
};

}  // namespace archipel::sharing
