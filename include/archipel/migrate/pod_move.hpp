#pragma once
// Moving a running pod from one site to another with CRIU, cold or post-copy: the pod's
// process tree is checkpointed at the source, its images go to the destination, the pod object
// appears there (its identity kept, `archipel.io/migrated-from` added) with the restored
// process as its container, and the source's copy goes only once the destination runs. A
// failure before that leaves the source running: nothing is lost.
//
// This is the move between two sites this process reaches directly (two embedded clusters of
// one machine: the tests and benchmarks); the images are copied between directories. The
// site-level migration (the Migration API, images over the peer channel) builds on it.
//
// Pods must opt in with `archipel.io/migrate: criu` (they then run in their own pid namespace)
// and have one container. Blocking: run it off any event loop.

#include "archipel/migrate/criu.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace archipel::migrate {

inline constexpr const char* kMigrateAnnotation = "archipel.io/migrate";
inline constexpr const char* kMigratedFromAnnotation = "archipel.io/migrated-from";
/// On the source's pod while it moves: its runtime does not restart a container that ends.
inline constexpr const char* kMigratingToAnnotation = "archipel.io/migrating-to";
/// On the destination's pod until its process is restored: its runtime does not start it.
inline constexpr const char* kRestoringAnnotation = "archipel.io/restoring";

/// A site's pods, as a move needs them (a site whose Kubernetes runs its pods as processes of
/// this machine: the embedded cluster).
class PodSite {
 public:
  virtual ~PodSite() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  virtual boost::system::result<boost::json::object, std::string> get_pod(
      const std::string& ns, const std::string& name) = 0;
  /// Creates the pod, or replaces its metadata and spec (not its status).
  virtual boost::system::result<void, std::string> put_pod(const boost::json::object& pod) = 0;
  virtual boost::system::result<void, std::string> put_pod_status(
      const std::string& ns, const std::string& name, const boost::json::object& status) = 0;
  virtual boost::system::result<void, std::string> delete_pod(const std::string& ns,
                                                              const std::string& name) = 0;
  /// Where the site keeps a container's log.
  [[nodiscard]] virtual std::filesystem::path log_path(const std::string& ns,
                                                       const std::string& pod,
                                                       const std::string& container) const = 0;
};

enum class MoveMode { kCold, kPostCopy };

struct MoveRequest {
  std::string namespace_name;
  std::string pod;
  MoveMode mode = MoveMode::kCold;
  std::filesystem::path work;                     ///< images go under it (source/, destination/)
  std::string page_server_address = "127.0.0.1";  ///< post-copy: the source serves its memory
  std::uint16_t page_server_port = 0;
};

struct MovePhase {
  std::string name;  ///< "checkpointed", "transferred", "restored", "memory-complete", "done"
  double at_ms;      ///< since the move started
};

struct MoveResult {
  pid_t pid = 0;           ///< the container's process at the destination
  double downtime_ms = 0;  ///< from the freeze until the restored process runs
  std::vector<MovePhase> phases;
};

boost::system::result<MoveResult, std::string> move_pod(const Criu& criu, PodSite& from,
                                                        PodSite& to, const MoveRequest& request);

}  // namespace archipel::migrate
