#pragma once

// Runs the embedded cluster's pods as local processes. Each container's command runs in its own
// session and process group (so it can later be checkpointed with CRIU as a unit), with the
// pod's env and workingDir; stdout and stderr go to a log file that pods/log serves. The runtime
// reconciles the store's pods: starts what should run, restarts per restartPolicy, reports
// phase and container statuses, and carries out graceful deletion (SIGTERM, grace period,
// SIGKILL to the group). `image` is recorded but never pulled: a container must name its
// `command`.

#include "archipel/cluster/store.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace archipel::cluster {

class PodRuntime {
 public:
  struct Options {
    std::filesystem::path dir;  ///< logs live under dir/<namespace>/<pod>/<container>.log
    std::string host_ip = "127.0.0.1";
    std::chrono::milliseconds poll_interval{100};
    std::function<std::chrono::system_clock::time_point()> clock = [] {
      return std::chrono::system_clock::now();
    };
  };

  /// Starts the runtime's thread; it immediately reconciles every pod in `store` (after a restart
  /// of the site, pods whose processes are gone restart per policy). `store` must outlive it.
  static std::unique_ptr<PodRuntime> start(ObjectStore& store, Options options);

  /// Stops every container (SIGTERM, then SIGKILL after 5 s) and the thread: nothing is left
  /// running after the runtime is destroyed.
  virtual ~PodRuntime() = default;

  /// The log file of a container (which may not exist yet).
  [[nodiscard]] virtual std::filesystem::path log_path(std::string_view ns, std::string_view pod,
                                                       std::string_view container) const = 0;

  /// Whether the container's process is running now.
  [[nodiscard]] virtual bool running(std::string_view ns, std::string_view pod,
                                     std::string_view container) const = 0;
};

}  // namespace archipel::cluster
