#pragma once
// Planned migrations of a site's pods to other sites: the Migration API (archipel.io/v1,
// namespaced) that a site's front door serves, and the drivers that run each migration between
// this site's Archipel and the destination's over the peer channel.
//
//   GET    /apis/archipel.io/v1/namespaces/NS/migrations[/NAME]   (and /migrations: all)
//   POST   /apis/archipel.io/v1/namespaces/NS/migrations          starts one
//   DELETE /apis/archipel.io/v1/namespaces/NS/migrations/NAME     forgets a finished one
//
// A Migration is created at the site that runs the pod:
//   spec:   {pod: cart, to: nantes, mode: cold | warm | live | app}
//   status: {phase: Pending | Running | Succeeded | Failed, from, strategy, steps: [{name,
//            atMs}], downtimeMs, imageBytes, message, startTime, completionTime}
//
// Modes: cold (freeze, dump, transfer, restore); warm (a checkpoint of the running pod goes to
// the destination first; at the freeze only what changed since travels); live (pre-copy when
// the kernel tracks dirty memory, otherwise post-copy: the destination runs the pod as soon as
// its state arrived and fetches the memory from the source's page server); app (the
// application's own state, through its /checkpoint and /restore endpoints). Pods opt in with
// `archipel.io/migrate: criu` (or `app`). The destination's pod keeps the source's identity and
// gains `archipel.io/migrated-from`; the source's copy is removed only once the destination's
// runs, and a migration that fails leaves the pod running at the source.
//
// The service also protects pods annotated `archipel.io/failover: <scope>` against the isolation
// of this site: checkpoints shipped to the failover sites, restored there when this site is
// declared Down, the stale copy fenced when it comes back (src/migrate/protection.hpp).

#include "archipel/base/prometheus.hpp"
#include "archipel/kube/status.hpp"
#include "archipel/migrate/kube_pod_site.hpp"
#include "archipel/migrate/pacer.hpp"
#include "archipel/peer/peer_node.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace archipel::migrate {

class Migrations {
 public:
  struct Options {
    std::string site;
    std::vector<std::string> peers;  ///< the sites a pod may go to
    std::filesystem::path work;      ///< checkpoint images, under it
    std::filesystem::path pods_dir;  ///< where the site's runtime keeps its pods
    std::filesystem::path criu;      ///< the CRIU to run; empty: Criu::locate()
    /// A migration's whole exchange with the destination (images included).
    std::chrono::seconds deadline{300};
    /// Protected pods (`archipel.io/failover`): how much of their time checkpoints may freeze
    /// them and how many bytes a second they may send to each failover site.
    CheckpointPacer::Budget protection;
  };

  struct Reply {
    unsigned code = 200;
    std::string body;  ///< JSON
  };

  /// Serves "migrate.pod" on `node` (pods coming here) and runs the migrations created through
  /// handle(). `local` reaches this site's Kubernetes; it blocks, and is only called off `io`.
  static std::unique_ptr<Migrations> start(boost::asio::io_context& io, peer::PeerNode& node,
                                           KubeCall local, Options options);
  virtual ~Migrations() = default;

  /// Serves `method` on the migrations of `ns` (all namespaces when empty, for a list) or one of
  /// them; `query` is the query string (without '?'). Errors are Kubernetes Statuses.
  /// Thread-safe, never blocks.
  [[nodiscard]] virtual boost::system::result<Reply, kube::Status> handle(
      std::string_view method, std::string_view ns, std::string_view name, std::string_view query,
      std::string_view body, bool as_table) = 0;

  /// Migrations by mode and result, downtime histogram, image bytes, migrations running.
  virtual void render_metrics(base::PrometheusText& out) const = 0;
};

}  // namespace archipel::migrate
