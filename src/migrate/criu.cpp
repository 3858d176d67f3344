#include "archipel/migrate/criu.hpp"

#include "archipel/base/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Run {
  int exit_code = -1;  // -1: killed at the deadline, or could not start
  bool timed_out = false;
  std::string problem;  // why it could not start
};

bool executable(const fs::path& p) {
  return !p.empty() && ::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p);
}

// Waits for `pid` until `deadline`; kills it (and waits) past it.
Run wait_until(pid_t pid, Clock::time_point deadline) {
  Run run;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (r < 0 && errno != EINTR) {
      run.problem = std::string("waiting for CRIU: ") + std::strerror(errno);
      break;
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      run.timed_out = true;
      break;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::min<long long>(ms + 1, 1000)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(ms + 1, 5)));
    }
  }
  if (pidfd >= 0) {
    ::close(pidfd);
  }
  return run;
}

struct Spawned {
  pid_t pid = -1;
  std::string problem;  // why it could not start
};

// Starts CRIU with `args`, its output (stdout and stderr) to `output`, descriptors `keep`
// passed through at the same numbers.
Spawned spawn_criu(const Criu::Options& o, const std::vector<std::string>& args,
                   const fs::path& output, const std::vector<int>& keep = {}) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CRIU_FAULT=", 11) != 0) {
      env_strings.emplace_back(*e);
    }
  }
  // No hardware breakpoints: CRIU stops a task leaving its parasite on a debug-register
  // breakpoint, which some hypervisors never deliver (CRIU then waits forever; seen on this
  // project's VMs). Without them it stops the task on the rt_sigreturn syscall (PTRACE_SYSCALL),
  // which works everywhere; CRIU itself does this on Xen. 130 is FI_NO_BREAKPOINTS.
  env_strings.emplace_back("CRIU_FAULT=130");
  std::vector<char*> envp;
  for (std::string& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  std::vector<std::string> all{o.binary.string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  for (int fd : keep) {
    // dup2 onto itself clears FD_CLOEXEC in the child (POSIX 2024; glibc does it).
    posix_spawn_file_actions_adddup2(&actions, fd, fd);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  Spawned out;
  const int rc = ::posix_spawn(&out.pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    out.pid = -1;
    out.problem = "cannot run " + o.binary.string() + ": " + std::strerror(rc);
  }
  return out;
}

Run run_criu(const Criu::Options& o, const std::vector<std::string>& args, const fs::path& output,
             const std::vector<int>& keep = {}) {
  const Spawned s = spawn_criu(o, args, output, keep);
  if (s.pid < 0) {
    Run run;
    run.problem = s.problem;
    return run;
  }
  return wait_until(s.pid, Clock::now() + o.timeout);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// CRIU logs this on every run without CAP_SYS_RESOURCE, and goes on: not the cause of anything.
bool noise(const std::string& line) {
  return line.find("Can't setup RLIMIT_NOFILE") != std::string::npos;
}

// The error a failed run is about: the first "Error (file:line): text" CRIU logged that is not
// noise, as its text; and the last error and warning lines, as an excerpt.
void explain(const std::string& log, CriuError& e) {
  std::istringstream in(log);
  std::string line;
  std::deque<std::string> tail;
  while (std::getline(in, line)) {
    const auto error = line.find("Error (");
    const bool is_error = error != std::string::npos;
    if (!is_error && line.find("Warn ") == std::string::npos) {
      continue;
    }
    if (noise(line)) {
      continue;
    }
    if (is_error && e.message.empty()) {
      const auto text = line.find("): ", error);
      e.message = text == std::string::npos ? line.substr(error) : line.substr(text + 3);
    }
    tail.push_back(line);
    if (tail.size() > 12) {
      tail.pop_front();
    }
  }
  for (const std::string& l : tail) {
    e.log_excerpt += l + '\n';
  }
}

CriuError failure(const Criu::Options& o, std::string operation, const Run& run,
                  const fs::path& log, const fs::path& output) {
  CriuError e;
  e.operation = std::move(operation);
  e.exit_code = run.timed_out ? -1 : run.exit_code;
  if (!run.problem.empty()) {
    e.message = run.problem;
    return e;
  }
  std::string text = read_file(log);
  if (text.empty()) {
    text = read_file(output);  // CRIU failed before opening its log (bad arguments, say)
  }
  explain(text, e);
  if (run.timed_out) {
    e.message = "CRIU did not finish within " + std::to_string(o.timeout.count()) +
                " ms and was killed" + (e.message.empty() ? "" : " (" + e.message + ")");
  } else if (e.message.empty()) {
    e.message = "CRIU exited with status " + std::to_string(run.exit_code);
    if (e.log_excerpt.empty()) {
      e.log_excerpt = text.substr(text.size() > 2000 ? text.size() - 2000 : 0);
    }
  }
  return e;
}

std::vector<std::string> dump_args(const char* verb, const Criu::Dump& r) {
  std::vector<std::string> a{verb,
                             "--tree",
                             std::to_string(r.pid),
                             "--images-dir",
                             r.images.string(),
                             "--log-file",
                             std::string(verb) + ".log",
                             "-v4",
                             "--file-locks"};
  if (r.leave_stopped) {
    a.emplace_back("--leave-stopped");
  }
  if (r.leave_running && std::string_view(verb) == "dump") {
    a.emplace_back("--leave-running");
  }
  if (r.parent) {
    // CRIU wants the parent relative to the images directory.
    a.emplace_back("--prev-images-dir");
    a.push_back(fs::relative(*r.parent, r.images).string());
  }
  if (r.track_mem) {
    a.emplace_back("--track-mem");
  }
  if (r.lazy_pages) {
    a.emplace_back("--lazy-pages");
    a.emplace_back("--address");
    a.push_back(r.page_server_address);
    a.emplace_back("--port");
    a.push_back(std::to_string(r.page_server_port));
  }
  if (r.tcp_established) {
    a.emplace_back("--tcp-established");
  }
  return a;
}

CriuResult<void> run_dump(const Criu::Options& o, const char* verb, const Criu::Dump& r) {
  std::error_code ec;
  fs::create_directories(r.images, ec);
  if (ec) {
    return CriuError{verb, -1, "cannot create " + r.images.string() + ": " + ec.message(), {}};
  }
  const fs::path output = r.images / (std::string(verb) + ".out");
  const Run run = run_criu(o, dump_args(verb, r), output);
  if (run.exit_code == 0) {
    return {};
  }
  return failure(o, verb, run, r.images / (std::string(verb) + ".log"), output);
}

// The pids of `root`'s tree, root first (from /proc/PID/task/TID/children).
std::vector<pid_t> tree_of(pid_t root) {
  std::vector<pid_t> out{root};
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::error_code ec;
    const fs::path tasks = "/proc/" + std::to_string(out[i]) + "/task";
    for (const auto& t : fs::directory_iterator(tasks, ec)) {
      std::ifstream children(t.path() / "children");
      pid_t child = 0;
      while (children >> child) {
        out.push_back(child);
      }
    }
  }
  return out;
}

// fs.pipe-max-size big enough for CRIU's page pipes in a lazy dump: without CAP_SYS_RESOURCE
// CRIU cannot grow a pipe past it, and the dump fails (seen with the default 1 MiB).
constexpr long kLazyPipeMaxSize = 16L << 20;

void raise_pipe_max_size() {
  const char* const knob = "/proc/sys/fs/pipe-max-size";
  long now = 0;
  std::ifstream(knob) >> now;
  if (now >= kLazyPipeMaxSize) {
    return;
  }
  std::ofstream out(knob);
  out << kLazyPipeMaxSize;  // root may; if not, CRIU's own error says what failed
}

// Starts CRIU with `--status-fd` and waits until it says it is ready (or ends without).
CriuResult<std::pair<pid_t, Clock::time_point>> start_ready(const Criu::Options& o,
                                                            const std::string& operation,
                                                            std::vector<std::string> args,
                                                            const fs::path& log,
                                                            const fs::path& output) {
  int status[2];
  if (::pipe2(status, O_CLOEXEC) != 0) {
    return CriuError{operation, -1, std::string("pipe: ") + std::strerror(errno), {}};
  }
  args.emplace_back("--status-fd");
  args.push_back(std::to_string(status[1]));
  const Spawned s = spawn_criu(o, args, output, {status[1]});
  ::close(status[1]);
  if (s.pid < 0) {
    ::close(status[0]);
    return CriuError{operation, -1, s.problem, {}};
  }
  const auto deadline = Clock::now() + o.timeout;
  char byte = 1;
  ssize_t got = -1;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      break;
    }
    pollfd p{status[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000))) > 0) {
      got = ::read(status[0], &byte, 1);
      break;
    }
  }
  ::close(status[0]);
  if (got == 1 && byte == '\0') {
    return std::pair{s.pid, deadline};
  }
  // Ended (or stuck) before it was ready: its error.
  const Run run = wait_until(s.pid, got < 0 ? Clock::now() : deadline);
  return failure(o, operation, run, log, output);
}

}  // namespace

CriuDaemon::CriuDaemon(Criu::Options options, std::string operation, pid_t pid, fs::path log,
                       fs::path output)
    : options_(std::move(options)),
      operation_(std::move(operation)),
      pid_(pid),
      log_(std::move(log)),
      output_(std::move(output)) {}

CriuDaemon::~CriuDaemon() {
  if (!finished_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

CriuResult<void> CriuDaemon::finish(std::chrono::milliseconds timeout) {
  if (finished_) {
    return {};
  }
  const Run run = wait_until(pid_, Clock::now() + timeout);
  finished_ = true;
  if (run.exit_code == 0) {
    return {};
  }
  Criu::Options o = options_;
  o.timeout = timeout;
  return failure(o, operation_, run, log_, output_);
}

std::string CriuError::describe() const {
  std::string s = "criu " + operation + ": " + message;
  if (exit_code >= 0) {
    s += " (exit status " + std::to_string(exit_code) + ")";
  }
  return s;
}

std::optional<fs::path> Criu::locate() {
  if (const char* env = std::getenv("ARCHIPEL_CRIU"); env != nullptr && *env != '\0') {
    return executable(env) ? std::optional<fs::path>(env) : std::nullopt;
  }
  if (const fs::path installed = "/opt/archipel/criu/bin/criu"; executable(installed)) {
    return installed;
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::istringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (const fs::path p = fs::path(dir) / "criu"; executable(p)) {
        return p;
      }
    }
  }
  return std::nullopt;
}

Criu::Criu(Options options) : options_(std::move(options)) {}

CriuFeatures Criu::check() const {
  CriuFeatures f;
  f.binary = options_.binary;
  if (!executable(options_.binary)) {
    f.problem = options_.binary.empty() ? "no CRIU found (run scripts/setup-criu)"
                                        : options_.binary.string() + " is not executable";
    return f;
  }
  std::error_code ec;
  const fs::path dir =
      fs::temp_directory_path(ec) / ("archipel-criu-check-" + std::to_string(::getpid()));
  fs::create_directories(dir, ec);
  const fs::path out = dir / "out";
  const auto run = [&](const std::vector<std::string>& args) {
    Options quick = options_;
    quick.timeout = std::min(options_.timeout, std::chrono::milliseconds(20'000));
    return run_criu(quick, args, out);
  };
  if (run({"--version"}).exit_code == 0) {
    std::istringstream in(read_file(out));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Version: ", 0) == 0) {
        f.version = line.substr(9);
      }
    }
  }
  const Run check = run({"check"});
  f.works = check.exit_code == 0;
  if (!f.works) {
    CriuError e = failure(options_, "check", check, out, out);
    f.problem = e.message;
  }
  f.dirty_tracking = f.works && run({"check", "--feature", "mem_dirty_track"}).exit_code == 0;
  f.lazy_pages = f.works && run({"check", "--feature", "uffd-noncoop"}).exit_code == 0;
  fs::remove_all(dir, ec);
  return f;
}

CriuResult<void> Criu::dump(const Dump& request) const {
  return run_dump(options_, "dump", request);
}

CriuResult<void> Criu::pre_dump(const Dump& request) const {
  return run_dump(options_, "pre-dump", request);
}

CriuResult<pid_t> Criu::restore(const Restore& r) const {
  const fs::path pidfile = r.images / "restored.pid";
  std::error_code ec;
  fs::remove(pidfile, ec);
  std::vector<std::string> args{
      "restore", "--images-dir", r.images.string(),    "--log-file", "restore.log",
      "-v4",     "--file-locks", "--restore-detached", "--pidfile",  pidfile.string()};
  // Each reopened file is a descriptor passed to CRIU, named as the images name the file (its
  // path without the leading '/').
  std::vector<int> keep;
  const auto close_all = [&keep] {
    for (int fd : keep) {
      ::close(fd);
    }
  };
  for (const auto& [there, here] : r.reopen) {
    const int fd = ::open(here.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int e = errno;
      close_all();
      return CriuError{"restore", -1, "cannot open " + here.string() + ": " + std::strerror(e), {}};
    }
    keep.push_back(fd);
    args.emplace_back("--inherit-fd");
    args.push_back("fd[" + std::to_string(fd) + "]:" + there.relative_path().string());
  }
  if (r.lazy_pages) {
    args.emplace_back("--lazy-pages");
  }
  if (r.tcp_established) {
    args.emplace_back("--tcp-established");
  }
  const fs::path output = r.images / "restore.out";
  const Run run = run_criu(options_, args, output, keep);
  close_all();
  if (run.exit_code != 0) {
    return failure(options_, "restore", run, r.images / "restore.log", output);
  }
  std::ifstream in(pidfile);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return CriuError{
        "restore", 0, "CRIU restored the tree but wrote no pid to " + pidfile.string(), {}};
  }
  return pid;
}

CriuResult<std::unique_ptr<CriuDaemon>> Criu::start_lazy_dump(const Dump& request) const {
  Dump r = request;
  r.lazy_pages = true;
  std::error_code ec;
  fs::create_directories(r.images, ec);
  raise_pipe_max_size();
  const fs::path log = r.images / "dump.log";
  const fs::path output = r.images / "dump.out";
  auto started = start_ready(options_, "dump", dump_args("dump", r), log, output);
  if (!started) {
    return started.error();
  }
  return std::unique_ptr<CriuDaemon>(new CriuDaemon(options_, "dump", started->first, log, output));
}

CriuResult<std::unique_ptr<CriuDaemon>> Criu::start_lazy_pages(const fs::path& images,
                                                               const std::string& address,
                                                               std::uint16_t port) const {
  const fs::path log = images / "lazy-pages.log";
  const fs::path output = images / "lazy-pages.out";
  auto started = start_ready(
      options_, "lazy-pages",
      {"lazy-pages", "--page-server", "--address", address, "--port", std::to_string(port),
       "--images-dir", images.string(), "--log-file", "lazy-pages.log", "-v4"},
      log, output);
  if (!started) {
    return started.error();
  }
  return std::unique_ptr<CriuDaemon>(
      new CriuDaemon(options_, "lazy-pages", started->first, log, output));
}

boost::system::result<pid_t, std::string> start_in_own_pid_namespace(
    const std::vector<std::string>& argv, const fs::path& log) {
  base::ProcessSpec spec;
  spec.argv = argv;
  for (char** e = environ; *e != nullptr; ++e) {
    spec.env.emplace_back(*e);
  }
  spec.log = log;
  spec.own_pid_namespace = true;
  return base::start_process(spec);
}

void resume_stopped_tree(pid_t root) {
  for (pid_t p : tree_of(root)) {
    ::kill(p, SIGCONT);
  }
}

void kill_tree(pid_t root) {
  std::vector<pid_t> tree = tree_of(root);
  for (pid_t p : tree) {
    ::kill(p, SIGKILL);
  }
}

}  // namespace archipel::migrate
