#pragma once
// Protection of pods against the isolation of their site (private to the migration service).
//
// A pod annotated `archipel.io/migrate: criu` and `archipel.io/failover: <scope>` is protected:
// the site running it (its owner) checkpoints it while it runs, as often as the pacer allows,
// and ships each checkpoint to the failover sites the scope names (what changed since the
// previous one, when the failover site holds it). A failover site keeps the newest checkpoint
// of each pod. When its failure detector declares the owner Down, the first failover site in
// the scope's order that is not Down itself restores the pod from that checkpoint, one epoch
// higher (`archipel.io/epoch`). The owner, cut off, keeps its pods running. When a link comes
// back, each site tells the other which protected pods it runs and at which epoch, and a site
// running a pod at an older epoch stops it (fencing): one copy runs. Equal epochs (two failover
// sites restored the same pod) are settled by site name, the first in order keeping it.
//
// A protected pod annotated `archipel.io/on-degraded: evacuate` leaves before its site is cut
// off: when at least half of the site's peers have been Suspected or Down for `degraded_for`,
// and a failover site is still Reachable, the site moves the pod there (`evacuate`: a planned
// warm migration, whose base is the checkpoint that failover site already holds).

#include "archipel/base/prometheus.hpp"
#include "archipel/migrate/criu.hpp"
#include "archipel/migrate/kube_pod_site.hpp"
#include "archipel/migrate/pacer.hpp"
#include "archipel/peer/peer_node.hpp"

#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace boost::asio {
class io_context;
}

namespace archipel::migrate {

class Protection {
 public:
  /// CRIU, once checked (blocking).
  using CriuAccess =
      std::function<boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string>()>;

  struct Options {
    std::string site;
    std::filesystem::path work;  ///< protect/ (taken here) and standby/ (kept for others)
    CheckpointPacer::Budget budget;
    std::chrono::milliseconds tick{100};  ///< how often peer states are looked at
    std::chrono::milliseconds scan{500};  ///< how often the site's pods are listed
    std::chrono::seconds deadline{120};   ///< one checkpoint's shipment
    /// How long at least half of the peers must be Suspected or Down before pods that ask for
    /// it are evacuated.
    std::chrono::milliseconds degraded_for{1500};
    /// Moves a pod of this site to `to` (it starts a migration); called from the io_context.
    std::function<void(const std::string& ns, const std::string& pod, const std::string& to)>
        evacuate;
  };

  /// Serves "migrate.checkpoint" and "migrate.owned" on `node` and starts protecting. `site`,
  /// `pool` and what `criu` uses must outlive the returned object and every coroutine it
  /// started (`keepalive` is held by them).
  /// `pool` runs blocking calls (CRIU, the site's Kubernetes), `transfers` the exchanges of
  /// checkpoints with other sites (their file I/O can block).
  static std::shared_ptr<Protection> start(boost::asio::io_context& io, peer::PeerNode& node,
                                           KubePodSite& site, boost::asio::thread_pool& pool,
                                           boost::asio::thread_pool& transfers, CriuAccess criu,
                                           Options options, std::shared_ptr<void> keepalive);
  virtual ~Protection() = default;

  /// Stops the loop (coroutines under way finish).
  virtual void stop() = 0;

  /// Owner side: when `target` holds the newest checkpoint of this site's pod `ns`/`name`,
  /// links that checkpoint's images into `to` (a new directory) and returns its sequence.
  /// Blocking (file system).
  virtual std::optional<std::uint64_t> link_delivered(const std::string& ns,
                                                      const std::string& name,
                                                      const std::string& target,
                                                      const std::filesystem::path& to) = 0;

  /// Failover side: when the checkpoint of `owner`'s pod `ns`/`name` kept here is `sequence`,
  /// links its images into `to` (a new directory). Blocking (file system).
  virtual bool link_standby(const std::string& owner, const std::string& ns,
                            const std::string& name, std::uint64_t sequence,
                            const std::filesystem::path& to) = 0;

  /// Checkpoints, bytes, frozen time, intervals, checkpoints kept for others, failovers,
  /// fenced copies.
  virtual void render_metrics(base::PrometheusText& out) const = 0;
};

}  // namespace archipel::migrate
