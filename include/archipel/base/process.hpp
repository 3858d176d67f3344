#pragma once
// Starting a container's process: the leader of its own session, stdin from /dev/null, stdout
// and stderr appended to a log file, no other descriptor of the parent's, signals at their
// defaults and unblocked; optionally as pid 1 of a new pid namespace, which is what CRIU needs
// to restore the tree on a machine where its frozen source still holds its pids (migration
// between sites of one machine).

#include <boost/system/result.hpp>

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace archipel::base {

struct ProcessSpec {
  std::vector<std::string> argv;      ///< argv[0] is looked up in the PATH when it has no '/'
  std::vector<std::string> env;       ///< the whole environment, "NAME=value"
  std::filesystem::path working_dir;  ///< empty: this process's
  std::filesystem::path log;          ///< stdout and stderr, appended (created if missing)
  bool own_pid_namespace = false;
};

/// Starts it; the caller is its parent (and reaps it). No parent-death signal (it would kill a
/// tree CRIU restored as soon as CRIU exits). The error says why it could not start (the
/// program not found or not executable, the log not writable, no CAP_SYS_ADMIN for a pid
/// namespace).
boost::system::result<pid_t, std::string> start_process(const ProcessSpec& spec);

}  // namespace archipel::base
