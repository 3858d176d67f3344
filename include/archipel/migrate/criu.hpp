#pragma once
// CRIU, driven through its command line: one adapter for checkpointing (dump, pre-dump) and
// restoring process trees, with CRIU's failures translated into one error (exit status, the
// first error CRIU logged, an excerpt of its log).
//
// Why the command line and not `criu swrk` (RPC): the CRIU we run may be a private copy started
// through its own dynamic loader (scripts/setup-criu), the lazy-pages and page-server daemons
// of post-copy migration are separate CRIU processes anyway, and the command line is the
// interface CRIU documents and keeps stable. Each call is one child process with a deadline:
// a CRIU that hangs is killed, and the error says so.
//
// Blocking calls: run them off any event loop (the migration driver gives them a thread).

#include <boost/system/result.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace archipel::migrate {

/// A CRIU run that failed.
struct CriuError {
  std::string operation;    ///< "dump", "restore", ...
  int exit_code = -1;       ///< CRIU's exit status; -1 when it did not exit by itself
  std::string message;      ///< the first error CRIU logged (or why it could not run)
  std::string log_excerpt;  ///< the last error and warning lines of its log

  [[nodiscard]] std::string describe() const;
};

template <class T>
using CriuResult = boost::system::result<T, CriuError>;

/// What this machine's CRIU can do (`archipel criu check`).
struct CriuFeatures {
  std::filesystem::path binary;
  std::string version;          ///< "4.1.1"; empty when CRIU could not be run
  bool works = false;           ///< `criu check` passes: plain (cold) checkpoint/restore
  std::string problem;          ///< why not, when it does not
  bool dirty_tracking = false;  ///< memory changes tracked: iterative pre-dump (live pre-copy)
  bool lazy_pages = false;      ///< userfaultfd: post-copy (restore first, pages on demand)
};

class Criu {
 public:
  struct Options {
    std::filesystem::path binary;
    /// The longest one CRIU run may take before it is killed.
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  };

  /// CRIU to use: $ARCHIPEL_CRIU, else what scripts/setup-criu installed
  /// (/opt/archipel/criu/bin/criu), else `criu` on the PATH; nullopt when none is executable.
  static std::optional<std::filesystem::path> locate();

  explicit Criu(Options options);

  [[nodiscard]] CriuFeatures check() const;

  struct Dump {
    pid_t pid = 0;                 ///< the root of the tree (a pod's container process)
    std::filesystem::path images;  ///< directory, created if missing
    /// Leave the tree stopped after the dump (to resume it if the restore fails elsewhere),
    /// or running (a checkpoint, not a move); by default CRIU kills it.
    bool leave_stopped = false;
    bool leave_running = false;
    /// Incremental: the images of the previous (pre-)dump, for memory unchanged since.
    std::optional<std::filesystem::path> parent;
    bool track_mem = false;  ///< keep tracking memory changes (needs dirty_tracking)
    /// Post-copy: pages are not written; a lazy-pages daemon at the destination fetches them
    /// from this dump's page server (which CRIU keeps running until they are all sent).
    bool lazy_pages = false;
    std::string page_server_address;  ///< with lazy_pages
    std::uint16_t page_server_port = 0;
    bool tcp_established = false;  ///< checkpoint established TCP connections too
  };
  CriuResult<void> dump(const Dump& request) const;
  /// Memory only, the tree keeps running (a step of live migration).
  CriuResult<void> pre_dump(const Dump& request) const;

  struct Restore {
    std::filesystem::path images;
    /// Files the tree had open at the source (their paths there) → the files it writes to
    /// here, opened for appending (created if missing): the restored tree writes its logs
    /// where this site keeps them, not at the source's paths.
    std::vector<std::pair<std::filesystem::path, std::filesystem::path>> reopen;
    bool lazy_pages = false;  ///< pages come from a lazy-pages daemon started beforehand
    bool tcp_established = false;
  };
  /// Restores the tree detached (it outlives CRIU); returns the pid of its root.
  CriuResult<pid_t> restore(const Restore& request) const;

  /// Post-copy, source side: dumps the tree with `lazy_pages` (its memory stays behind) and
  /// returns once the images are written and CRIU serves the pages on the request's page
  /// server address; the daemon ends when every page has been fetched. Raises
  /// fs.pipe-max-size first when it is too small for CRIU's page pipes (they fail otherwise
  /// without CAP_SYS_RESOURCE).
  CriuResult<std::unique_ptr<class CriuDaemon>> start_lazy_dump(const Dump& request) const;
  /// Post-copy, destination side: the lazy-pages daemon, which fetches pages from the source's
  /// page server as the restored tree touches them (and the rest in the background). Start it
  /// on the copied images before `restore` with `lazy_pages`.
  CriuResult<std::unique_ptr<class CriuDaemon>> start_lazy_pages(
      const std::filesystem::path& images, const std::string& page_server_address,
      std::uint16_t page_server_port) const;

  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  Options options_;
};

/// A CRIU process that goes on after it is ready (a lazy dump serving pages, a lazy-pages
/// daemon). Killed when destroyed before it finished.
class CriuDaemon {
 public:
  CriuDaemon(const CriuDaemon&) = delete;
  CriuDaemon& operator=(const CriuDaemon&) = delete;
  ~CriuDaemon();

  /// Waits (up to `timeout`) for it to end; its error when it failed or had to be killed.
  CriuResult<void> finish(std::chrono::milliseconds timeout);

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  friend class Criu;
  CriuDaemon(Criu::Options options, std::string operation, pid_t pid, std::filesystem::path log,
             std::filesystem::path output);

  Criu::Options options_;
  std::string operation_;
  pid_t pid_;
  std::filesystem::path log_;
  std::filesystem::path output_;
  bool finished_ = false;
};

/// Starts `argv` as the first process (pid 1) of a new pid namespace, leader of its own
/// session, with stdin from /dev/null and stdout and stderr appended to `log`: a tree CRIU can
/// restore on the same machine while its frozen source still holds its pids (the restored
/// tree gets a new namespace). The caller is its parent (and reaps it). No parent-death
/// signal: it would kill a restored tree as soon as CRIU exits.
boost::system::result<pid_t, std::string> start_in_own_pid_namespace(
    const std::vector<std::string>& argv, const std::filesystem::path& log);

/// Resumes a tree a dump left stopped (SIGCONT to each of its processes), or kills it.
void resume_stopped_tree(pid_t root);
void kill_tree(pid_t root);

}  // namespace archipel::migrate
