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
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace archipel::migrate {

inline constexpr const char* kMigrateAnnotation = "archipel.io/migrate";
inline constexpr const char* kMigratedFromAnnotation = "archipel.io/migrated-from";
/// On the source's pod while it moves: its runtime does not restart a container that ends.
inline constexpr const char* kMigratingToAnnotation = "archipel.io/migrating-to";
/// On the destination's pod until its process is restored: its runtime does not start it.
inline constexpr const char* kRestoringAnnotation = "archipel.io/restoring";
/// A scope expression naming the sites that keep checkpoints of the pod and restore it when its
/// site is cut off ("nantes | rennes": nantes first).
inline constexpr const char* kFailoverAnnotation = "archipel.io/failover";
/// The ownership epoch of a protected pod (1 when absent); a failover restores it one higher.
inline constexpr const char* kEpochAnnotation = "archipel.io/epoch";
/// On a pod restored by a failover site: the site it was protected from.
inline constexpr const char* kFailedOverFromAnnotation = "archipel.io/failed-over-from";
/// What a protected pod's site does with it when the site's links degrade: `stay` (the default:
/// it keeps running here, a failover site restores it if the site is cut off) or `evacuate`
/// (the site moves it to a failover site it still reaches).
inline constexpr const char* kOnDegradedAnnotation = "archipel.io/on-degraded";

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
  /// Carries the images from the source's directory to the destination's (move_pod): empty, a
  /// copy between directories; or over the peer channel (send_images / receive_images).
  std::function<boost::system::result<void, std::string>(const std::filesystem::path& from,
                                                         const std::filesystem::path& to)>
      transfer;
  /// Cold, after pre-copy rounds: the last round's images, which the dump builds on (only the
  /// memory changed since is written).
  std::optional<std::filesystem::path> parent;
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

/// The pod as a destination creates it from the source's `source` pod: its name, namespace,
/// labels, annotations and spec (no server-set fields), with `archipel.io/migrated-from: from`
/// and `archipel.io/restoring` (its runtime leaves it to the restore).
[[nodiscard]] boost::json::object destination_pod(const boost::json::object& source,
                                                  const std::string& from);

/// Both halves, between two sites this process reaches; the images are copied between
/// directories.
boost::system::result<MoveResult, std::string> move_pod(const Criu& criu, PodSite& from,
                                                        PodSite& to, const MoveRequest& request);

/// The source's half of a move: the pod checkpointed, its process frozen (cold) or serving its
/// memory to the destination (post-copy). Destroyed without complete(), it gives the pod back to
/// the source: the process resumes and the pod is no longer marked as moving.
class SourceCheckpoint {
 public:
  SourceCheckpoint(const SourceCheckpoint&) = delete;
  SourceCheckpoint& operator=(const SourceCheckpoint&) = delete;
  ~SourceCheckpoint();

  /// The pod as the destination creates it: its name, namespace, labels, annotations and spec,
  /// with `archipel.io/migrated-from` and `archipel.io/restoring`.
  [[nodiscard]] const boost::json::object& pod() const noexcept { return destination_pod_; }
  [[nodiscard]] const std::string& container() const noexcept { return container_; }
  /// The container's log at the source, as the images name it (restores redirect it).
  [[nodiscard]] const std::filesystem::path& log() const noexcept { return log_; }
  [[nodiscard]] const std::filesystem::path& images() const noexcept { return images_; }

  /// The destination runs the pod: the source's copy goes (post-copy: once CRIU has sent every
  /// page; CRIU leaves it stopped, so that until then it could be given back) and the source's
  /// pod is deleted.
  boost::system::result<void, std::string> complete(std::chrono::milliseconds memory_timeout);

  /// The move failed: the pod goes on at the source (what destroying it does, at once). With
  /// post-copy, call it before the destination's lazy-pages daemon goes away: CRIU takes the end
  /// of that connection for the end of the transfer.
  void give_back();

 private:
  friend boost::system::result<std::unique_ptr<SourceCheckpoint>, std::string> checkpoint_pod(
      const Criu&, PodSite&, const MoveRequest&, const std::string&);
  SourceCheckpoint() = default;

  PodSite* from_ = nullptr;
  boost::json::object source_pod_;  // as it was before the move
  boost::json::object destination_pod_;
  std::string namespace_;
  std::string name_;
  std::string container_;
  std::filesystem::path log_;
  std::filesystem::path images_;
  pid_t pid_ = 0;
  std::unique_ptr<CriuDaemon> serving_;  // post-copy
  bool done_ = false;
};

/// Checkpoints the pod at `from` into `request.work / "source"`, for `destination` (a site name).
boost::system::result<std::unique_ptr<SourceCheckpoint>, std::string> checkpoint_pod(
    const Criu& criu, PodSite& from, const MoveRequest& request, const std::string& destination);

/// A warm move's first step: a checkpoint of the pod's process into `images` (replaced), the
/// process going on running. The freeze's checkpoint later travels as what changed since.
boost::system::result<void, std::string> checkpoint_running_pod(
    const Criu& criu, PodSite& from, const std::string& ns, const std::string& pod,
    const std::filesystem::path& images);

/// A pre-copy round of a live move: the memory of the pod's process into `images` (the tree
/// runs on), only what changed since `parent`'s round when given; CRIU keeps tracking memory
/// changes (it needs the kernel's dirty-memory tracking: CriuFeatures::dirty_tracking).
boost::system::result<void, std::string> pre_dump_pod(
    const Criu& criu, PodSite& from, const std::string& ns, const std::string& pod,
    const std::filesystem::path& images, const std::optional<std::filesystem::path>& parent);

/// The destination's half: creates `pod` (as SourceCheckpoint::pod() gave it) at `to`, restores
/// its process from `images` (post-copy: fetching the memory from the request's page server)
/// with its output in `to`'s log for the container, and hands the process to `to`'s runtime.
/// Post-copy: returns once every page has arrived. On failure nothing of the pod is left at
/// `to`, and `before_giving_up` ran before the lazy-pages daemon was stopped (the source gives
/// the pod back then: see SourceCheckpoint::give_back).
struct Restored {
  pid_t pid = 0;
  double restored_ms = 0;  ///< from the call until the process ran
};
boost::system::result<Restored, std::string> restore_pod(
    const Criu& criu, PodSite& to, const boost::json::object& pod, const std::string& container,
    const std::filesystem::path& source_log, const std::filesystem::path& images,
    const MoveRequest& request, const std::function<void()>& before_giving_up);

}  // namespace archipel::migrate
