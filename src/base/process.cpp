#include "archipel/base/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace archipel::base {
namespace {

// argv[0] as execve needs it: itself when it holds a '/', else the first executable match in
// the PATH (looked up here, in the parent: the child only makes async-signal-safe calls).
std::string resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return program;
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return program;  // execve reports ENOENT
}

}  // namespace

boost::system::result<pid_t, std::string> start_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) {
    return std::string("no program to start");
  }
  std::vector<std::string> args = spec.argv;
  const std::string program = resolve(args[0]);
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env = spec.env;
  std::vector<char*> envp;
  for (std::string& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  const std::string log = spec.log.string();
  const std::string dir = spec.working_dir.string();

  int errors[2];  // the child reports a failure before exec on it (errno, then a step)
  if (::pipe2(errors, O_CLOEXEC) != 0) {
    return std::string("pipe: ") + std::strerror(errno);
  }
  // Fork-like clone through the raw syscall (no new stack): with CLONE_NEWPID the child is
  // pid 1 of a new namespace.
  const unsigned long flags = SIGCHLD | (spec.own_pid_namespace ? CLONE_NEWPID : 0);
  const long pid = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0);
  if (pid < 0) {
    const int e = errno;
    ::close(errors[0]);
    ::close(errors[1]);
    return std::string(spec.own_pid_namespace ? "clone(CLONE_NEWPID): " : "clone: ") +
           std::strerror(e);
  }
  if (pid == 0) {
    ::close(errors[0]);
    const auto die = [&](int step) {
      const int report[2] = {errno, step};
      (void)::write(errors[1], report, sizeof report);
      ::_exit(127);
    };
    if (::setsid() < 0) {
      die(0);
    }
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) {
      die(1);
    }
    if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
      die(2);
    }
    if (in > 2) {
      ::close(in);
    }
    if (out > 2) {
      ::close(out);
    }
    // Nothing else of the parent's: a descriptor it left inheritable (a test runner's log,
    // say) would be the container's, and CRIU would checkpoint it with the container.
    ::close_range(3, ~0U, 0);
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) {
      die(3);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) {
      (void)::sigaction(s, &dfl, nullptr);  // fails harmlessly for SIGKILL, SIGSTOP, reserved
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), argv.data(), envp.data());
    die(4);
  }
  ::close(errors[1]);
  int report[2] = {0, 0};
  const ssize_t n = ::read(errors[0], report, sizeof report);
  ::close(errors[0]);
  if (n == static_cast<ssize_t>(sizeof report)) {
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    std::string what;
    switch (report[1]) {
      case 0: what = "setsid"; break;
      case 1: what = "cannot open " + log; break;
      case 2: what = "dup2"; break;
      case 3: what = "cannot enter " + dir; break;
      default: what = "cannot run \"" + spec.argv[0] + "\""; break;
    }
    return what + ": " + std::strerror(report[0]);
  }
  return static_cast<pid_t>(pid);
}

}  // namespace archipel::base
