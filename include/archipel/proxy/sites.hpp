#pragma once

// The federation as a Kubernetes resource: `GET /apis/archipel.io/v1/sites` lists one Site
// object per known site (this one included) with what the peer channel knows of it, `…/sites/NAME`
// gets one, and `?watch=1` streams its changes, so that `kubectl get sites [-w]` works.
//
//   apiVersion: archipel.io/v1
//   kind: Site
//   metadata: {name: nantes, resourceVersion: "7", creationTimestamp: …}
//   spec:     {address: 127.0.0.1:7201, publicKey: …}
//   status:   {state: Reachable, connected: true, phi: 0.4, rttMillis: 0.31,
//              lastTransitionTime: …, local: false}
//
// A peer's state is Reachable, Suspected or Down, or Unknown while the peer channel has not
// reported on it (a site without an identity runs none). The local site's state is Local, or
// Isolated when every peer is Down. A site's
// resourceVersion changes when its state or connection changes (each is a MODIFIED event);
// phi and RTT are read fresh on every GET and LIST but do not make events.
//
// No I/O: the peer channel's picture comes from a StatusSource; the HTTP layer calls in.
// Thread-safe.

#include "archipel/kube/status.hpp"
#include "archipel/peer/peer_node.hpp"

#include <boost/json/fwd.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::proxy {

class SiteDirectory {
 public:
  struct Peer {
    std::string name;
    std::string address;     ///< host:port of its peer endpoint
    std::string public_key;  ///< base64, as pinned in the configuration
  };
  /// The peer channel now: each peer's status and whether this site is isolated.
  struct Picture {
    std::vector<peer::PeerStatus> peers;
    bool isolated = false;
  };
  using StatusSource = std::function<Picture()>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  /// Receives watch events, one JSON line each ({"type":…,"object":…}\n). Called with the
  /// directory's lock held: it must not call back into the directory.
  using Listener = std::function<void(const std::string& event)>;

  SiteDirectory(
      std::string local, std::string local_address, std::vector<Peer> peers, StatusSource source,
      Clock clock = [] { return std::chrono::system_clock::now(); });

  /// Reads the source again and makes a MODIFIED event for every site whose state or
  /// connection changed. Call it from the peer channel's change notification.
  void refresh();

  /// A SiteList (or a meta.k8s.io Table when `as_table`), items sorted by name.
  [[nodiscard]] std::string list(bool as_table);
  /// One Site (or a one-row Table); NotFound Status for an unknown name.
  [[nodiscard]] boost::system::result<std::string, kube::Status> get(std::string_view name,
                                                                     bool as_table);

  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&&) noexcept = default;
    Subscription& operator=(Subscription&&) noexcept = default;
    ~Subscription();

   private:
    friend class SiteDirectory;
    std::shared_ptr<void> token_;
  };

  /// Starts a watch. No `since` (or 0): the current sites as ADDED events first, then changes.
  /// `since` = a resourceVersion this directory gave: the events after it (410 Expired Status
  /// when they are no longer kept, BadRequest when it is not one of ours). `as_table`: each
  /// event carries a one-row Table (kubectl get -w).
  [[nodiscard]] boost::system::result<Subscription, kube::Status> watch(
      std::optional<std::uint64_t> since, bool as_table, Listener listener);

  /// The current resourceVersion (of the newest change).
  [[nodiscard]] std::uint64_t resource_version();

 private:
  struct Entry {
    Peer spec;
    bool local = false;
    std::string state;
    bool connected = false;
    double phi = 0;
    std::optional<double> rtt_ms;
    std::uint64_t resource_version = 1;
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point transition;
  };
  struct Event {
    std::uint64_t resource_version;
    std::string name;
    std::string type;  // ADDED, MODIFIED
  };
  struct Watcher {
    bool as_table;
    Listener listener;
  };

  void apply(const Picture& p, bool record);  // with mu_ held
  [[nodiscard]] std::string event_line(const std::string& type, const Entry& e,
                                       bool as_table) const;
  /// The Site object of an entry.
  [[nodiscard]] static boost::json::object to_object(const std::string& name, const Entry& e);

  std::mutex mu_;
  std::string local_;
  StatusSource source_;
  Clock clock_;
  std::map<std::string, Entry, std::less<>> sites_;
  std::uint64_t version_ = 1;
  std::deque<Event> history_;  // the last kHistory changes, for watches that resume
  std::map<std::uint64_t, Watcher> watchers_;
  std::uint64_t next_watcher_ = 1;
};

}  // namespace archipel::proxy
