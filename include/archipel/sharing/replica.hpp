#pragma once

// One site's replication of one replica group, sans-IO: local changes and peer messages in;
// records to persist, messages for peers and objects to write to the local Kubernetes out.
// The adapters (RocksDB, the peer channel, the bridge to the local cluster) move the bytes; the
// protocol is here, so that tests and the simulator drive it directly.
//
// Protocol (proto/sharing.proto). Each local change becomes a delta in the group's outbox,
// numbered by this site's sequence. flush() sends every connected peer the deltas it has not
// been sent, as one message of delta groups per object. A receiver joins them, persists, and
// acknowledges the sequence number; the sender drops an outbox entry once every peer has
// acknowledged it. On each new connection both sides say how far they have the other's deltas
// (Resume), and the sender continues from there; a peer behind the outbox (new, or restored
// from scratch) gets full states. Messages go only to the group's members.
//
// Durability contract: after each call, the caller persists take_records() atomically (one
// RocksDB WriteBatch) before sending take_messages(); an acknowledgement is thus only sent for
// what is durable, and a site restarted with recover() from its records loses nothing it
// acknowledged or made.
//
// Not thread-safe: one owner (the site's sharing strand).

#include "archipel/crdt/clock.hpp"
#include "archipel/crdt/object.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::sharing {

/// Names a shared object on every site: "<api group>/<plural>/<namespace>/<name>" (the core
/// group is empty: "/configmaps/team-a/app").
using ObjectKey = std::string;

/// The list shapes of a kind's objects (a site gives kube_list_shape, schema.hpp).
using SchemaOf = std::function<crdt::ListShape(std::string_view kind, std::string_view path)>;

/// A replica group: the sites that share some objects.
struct GroupSpec {
  std::string id;                    ///< e.g. "namespace/team-a"
  std::vector<std::string> members;  ///< site names, this site among them
  /// The membership's version: changes are ordered by (epoch, by) (proto/sharing.proto).
  std::uint64_t epoch = 0;
  std::string by;  ///< the site that made this membership ("" for the initial one)
};

/// Something to persist: `value` to write under `key`, or nullopt to erase it.
struct Record {
  std::string key;
  std::optional<std::string> value;
};

/// A message for a peer of the group (bytes of a sharing.wire.GroupMessage).
struct PeerMessage {
  std::string peer;
  std::string bytes;
};

/// An object the local Kubernetes should now hold (nullopt: should not hold).
struct LocalWrite {
  ObjectKey key;
  std::optional<boost::json::object> object;
};

/// How far one peer is (GroupReplica::status).
struct PeerStatus {
  std::string site;
  bool connected = false;
  std::uint64_t acknowledged = 0;  ///< our deltas it holds durably
  std::uint64_t behind = 0;        ///< our deltas it does not hold yet
  std::uint64_t received = 0;      ///< its deltas we hold
  /// When the service last heard from it about the group (Unix ms; 0: never). Filled in by
  /// the service, which has a clock.
  std::int64_t last_heard_ms = 0;
};

/// What a group's replica reports (the sharedobjects API, metrics).
struct GroupStatus {
  std::string id;
  std::vector<std::string> members;
  std::size_t objects = 0;     ///< shared objects (present or deleted)
  std::size_t outbox = 0;      ///< deltas some peer has not acknowledged
  std::uint64_t last_seq = 0;  ///< deltas made here
  std::vector<PeerStatus> peers;
  std::vector<std::string> conflicted;  ///< objects showing concurrent writes
};

/// Why a peer's message was refused (nothing of it was applied).
struct ProtocolError {
  std::string message;
};

/// Limits of a replica's messages.
struct ReplicaOptions {
  /// Outbox entries sent in one message at most. A receiver writes each object a message
  /// touches once per message: bench/sharing_net_bench (1,000 objects × 10 edits, 3 sites)
  /// converged in 3.5 s with 512 and 2.1–2.4 s with 4,096, sending half the bytes.
  std::size_t deltas_per_message = 4096;
  std::size_t states_per_message = 128;  ///< full states sent in one message at most
};

class GroupReplica {
 public:
  using Options = ReplicaOptions;

  /// A new replica of `spec` at site `self` (one of its members), with nothing shared yet.
  GroupReplica(std::string self, GroupSpec spec, SchemaOf schema, Options options = {});

  /// Rebuilds the replica from the records it gave before (in any order). Malformed records
  /// are an error: the store is corrupt.
  static boost::system::result<GroupReplica, ProtocolError> recover(
      std::string self, GroupSpec spec, SchemaOf schema, const std::vector<Record>& records,
      Options options = {});

  /// The local Kubernetes now holds `observed` for `key` (nullopt: deleted). What changed since
  /// what this replica last knew it held becomes a delta; an echo of what it asked to be
  /// written is nothing. `at`: a timestamp from the site's hybrid clock.
  void local_change(const ObjectKey& key, const std::optional<boost::json::object>& observed,
                    crdt::Hlc at);

  /// Makes `members` the group's members (this site decides: the change is numbered past
  /// every one it knew, and sent to every peer, old and new). A site added gets full states
  /// of every object once connected; a site removed is sent nothing more (but this change),
  /// its messages are refused, and its acknowledgements no longer hold back the outbox.
  /// `delete_copies`: the sites removed delete their copies of the group's objects.
  void set_members(std::vector<std::string> members, bool delete_copies = false);
  /// This site is no longer a member (a peer's newer membership left it out): the owner drops
  /// the replica.
  [[nodiscard]] bool left() const noexcept;
  /// It left, and the membership that removed it asks it to delete its copies.
  [[nodiscard]] bool delete_copies_on_leaving() const noexcept { return left() && drop_copies_; }

  /// A connection to `peer` is up (after being down): resume with it.
  void connected(std::string_view peer);
  /// The connection to `peer` is down: nothing more is sent to it until connected() again.
  void disconnected(std::string_view peer);

  /// A message from `peer`. Malformed, or from a site that is not a member: an error, and
  /// nothing applied.
  boost::system::result<void, ProtocolError> receive(std::string_view peer,
                                                     std::span<const std::byte> bytes);

  /// Sends each connected peer the deltas it has not been sent (call after a batch of local
  /// changes, or on a timer).
  void flush();

  std::vector<Record> take_records();
  std::vector<PeerMessage> take_messages();
  std::vector<LocalWrite> take_local_writes();

  [[nodiscard]] GroupStatus status() const;

  /// What this replica believes the local Kubernetes holds for `key`.
  [[nodiscard]] std::optional<boost::json::object> shown(const ObjectKey& key) const;
  /// The keys of the objects it shares (present or deleted).
  [[nodiscard]] std::vector<ObjectKey> keys() const;
  /// Deltas made here that some peer has not acknowledged yet.
  [[nodiscard]] std::size_t outbox_depth() const noexcept { return outbox_.size(); }
  [[nodiscard]] const GroupSpec& spec() const noexcept { return spec_; }

 private:
  struct Shared {
    crdt::Object state;
    std::optional<boost::json::object> observed;  // what the local Kubernetes holds
    // What it was asked to hold (nullopt: nothing) and has not shown yet, oldest first: a
    // watch may still show any of them (a write superseded while in flight), and each is an
    // echo, not a local change.
    std::vector<std::optional<boost::json::object>> expected;
  };
  struct Entry {
    std::uint64_t seq;
    ObjectKey key;
    crdt::Object delta;
  };
  struct Peer {
    std::uint64_t acked = 0;     // our deltas it holds durably
    std::uint64_t received = 0;  // its deltas we hold durably
    std::uint64_t sent = 0;      // our deltas sent on the current connection
    bool connected = false;
    bool resumed = false;  // its Resume arrived on the current connection
  };

  bool member(std::string_view site) const;
  void add_member(std::string_view site);
  void remove_member(std::string_view site);
  void adopt(GroupSpec next);
  void persist_spec();
  Shared& shared(const ObjectKey& key);
  crdt::Schema schema_for(const Shared& s, const boost::json::object* hint) const;
  void persist_object(const ObjectKey& key, const Shared& s, bool state_changed = true);
  void persist_peer(const std::string& name, const Peer& p);
  void send(const std::string& peer, std::string bytes);
  void send_ack(const std::string& peer, std::uint64_t seq);
  void send_missing(const std::string& name, Peer& p);
  void drop_acknowledged();
  void show(const ObjectKey& key, Shared& s);
  void note_conflicts(const ObjectKey& key, const std::optional<boost::json::object>& merged);

  std::string self_;
  GroupSpec spec_;
  SchemaOf schema_;
  Options options_;
  std::map<ObjectKey, Shared> objects_;
  std::deque<Entry> outbox_;
  std::uint64_t last_seq_ = 0;  // our latest delta's number
  bool drop_copies_ = false;    // the latest membership asks removed sites to delete copies
  std::map<std::string, Peer, std::less<>> peers_;
  std::set<ObjectKey, std::less<>> conflicted_;
  std::set<ObjectKey, std::less<>> dirty_;  // objects whose state changed since take_records()

  std::vector<Record> records_;
  std::vector<PeerMessage> messages_;
  std::vector<LocalWrite> writes_;
};

}  // namespace archipel::sharing
