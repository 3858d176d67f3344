#include "archipel/cluster/pod_runtime.hpp"

#include "archipel/base/process.hpp"

#include "archipel/kube/object.hpp"
#include "archipel/kube/resource.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace archipel::cluster {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;
using Clock = std::chrono::system_clock;

constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr auto kBackoffBase = std::chrono::seconds(1);
constexpr auto kBackoffMax = std::chrono::minutes(5);

std::string key_of(std::string_view ns, std::string_view name) {
  return std::string(ns) + "/" + std::string(name);
}

// One run of one container.
struct Container {
  std::string name;
  std::string image;
  pid_t pid = 0;
  pid_t last_pid = 0;    // of the last run, for its containerID once it ended
  bool adopted = false;  // started by an earlier run of this process: not our child
  int restarts = 0;
  bool started_once = false;
  std::optional<int> exit_code;  // of the last run
  Clock::time_point started{};
  Clock::time_point finished{};
  Clock::time_point next_start{};  // restart backoff
  std::string waiting_reason;      // StartError…, with message
  std::string waiting_message;
  std::optional<object> last_terminated;  // lastState.terminated
};

struct Pod {
  std::string ns;
  std::string name;
  std::string uid;
  std::vector<Container> containers;
  bool terminating = false;
  std::chrono::steady_clock::time_point kill_at{};
  Clock::time_point start_time{};
};

std::string restart_policy(const object& pod) {
  const value* spec = pod.if_contains("spec");
  const value* p = spec != nullptr && spec->is_object()
                       ? spec->as_object().if_contains("restartPolicy")
                       : nullptr;
  return p != nullptr && p->is_string() ? std::string(p->as_string()) : "Always";
}

const array* containers_of(const object& pod) {
  const value* spec = pod.if_contains("spec");
  const value* c =
      spec != nullptr && spec->is_object() ? spec->as_object().if_contains("containers") : nullptr;
  return c != nullptr && c->is_array() ? &c->as_array() : nullptr;
}

std::string str(const object& o, const char* key) {
  const value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string annotation(const object& pod, const char* key) {
  const value* meta = pod.if_contains("metadata");
  const value* notes =
      meta != nullptr && meta->is_object() ? meta->as_object().if_contains("annotations") : nullptr;
  return notes != nullptr && notes->is_object() ? str(notes->as_object(), key) : std::string();
}

// Pods CRIU may migrate run each container as pid 1 of its own pid namespace: CRIU restores
// such a tree into a new namespace, so on a machine running several sites the copy does not
// collide with its frozen source's pids.
constexpr const char* kMigrateAnnotation = "archipel.io/migrate";
// A pod created with this annotation has its processes restored (by a migration), not
// started: the runtime leaves it alone until the annotation is gone, then takes over the
// processes its status names (as after a restart of the site).
constexpr const char* kRestoringAnnotation = "archipel.io/restoring";
// On a pod whose processes a migration checkpointed: a container that ends is not restarted.
constexpr const char* kMigratingToAnnotation = "archipel.io/migrating-to";

class PodRuntimeImpl final : public PodRuntime {
 public:
  PodRuntimeImpl(ObjectStore& store, Options options)
      : store_(store),
        options_(std::move(options)),
        pods_type_(*kube::find_resource("", "v1", "pods")) {
    subscription_ = store_
                        .watch(std::nullopt,
                               [this](const ObjectEvent& e) {
                                 if (e.resource == &pods_type_) {
                                   mark(key_of(e.namespace_, e.name));
                                 }
                               })
                        .value()
                        .handle;
    auto all = store_.list(pods_type_, "", 0, {}, {});
    if (all) {
      for (const object& p : all->items) {
        dirty_.push_back(key_of(kube::meta_string(p, "namespace"), kube::meta_string(p, "name")));
      }
    }
    thread_ = std::thread([this] { run(); });
  }

  ~PodRuntimeImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
    shutdown_all();
  }

  std::filesystem::path log_path(std::string_view ns, std::string_view pod,
                                 std::string_view container) const override {
    return options_.dir / std::string(ns) / std::string(pod) / (std::string(container) + ".log");
  }

  bool running(std::string_view ns, std::string_view pod,
               std::string_view container) const override {
    std::lock_guard lock(pods_mu_);
    auto it = pods_.find(key_of(ns, pod));
    if (it == pods_.end()) {
      return false;
    }
    for (const Container& c : it->second.containers) {
      if (c.name == container) {
        return c.pid != 0;
      }
    }
    return false;
  }

 private:
  void mark(std::string key) {
    {
      std::lock_guard lock(mu_);
      dirty_.push_back(std::move(key));
    }
    cv_.notify_one();
  }

  void run() {
    for (;;) {
      std::deque<std::string> work;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, options_.poll_interval, [this] { return stopping_ || !dirty_.empty(); });
        if (stopping_) {
          return;
        }
        work.swap(dirty_);
      }
      std::set<std::string> keys(work.begin(), work.end());
      for (const std::string& key : reap()) {
        keys.insert(key);
      }
      for (const std::string& key : due()) {
        keys.insert(key);
      }
      for (const std::string& key : keys) {
        reconcile(key);
      }
    }
  }

  // Collects exited containers; returns the pods that changed.
  std::vector<std::string> reap() {
    std::vector<std::string> changed;
    std::lock_guard lock(pods_mu_);
    for (auto& [key, pod] : pods_) {
      for (Container& c : pod.containers) {
        if (c.pid == 0) {
          continue;
        }
        if (c.adopted) {
          if (::kill(c.pid, 0) != 0 && errno == ESRCH) {
            c.exit_code = 255;  // not our child: its exit status is unknown
            c.finished = options_.clock();
            c.pid = 0;
            c.adopted = false;
            changed.push_back(key);
          }
          continue;
        }
        int status = 0;
        const pid_t r = waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid || (r < 0 && errno == ECHILD)) {
          c.exit_code = r == c.pid && WIFEXITED(status)     ? WEXITSTATUS(status)
                        : r == c.pid && WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                                            : 255;
          c.finished = options_.clock();
          c.pid = 0;
          changed.push_back(key);
        }
      }
    }
    return changed;
  }

  // Pods with a restart or a kill deadline due now.
  std::vector<std::string> due() {
    std::vector<std::string> out;
    const auto now = options_.clock();
    const auto steady = std::chrono::steady_clock::now();
    std::lock_guard lock(pods_mu_);
    for (auto& [key, pod] : pods_) {
      if (pod.terminating && steady >= pod.kill_at) {
        out.push_back(key);
        continue;
      }
      for (const Container& c : pod.containers) {
        if (c.pid == 0 && c.exit_code && c.next_start != Clock::time_point{} &&
            now >= c.next_start) {
          out.push_back(key);
          break;
        }
      }
    }
    return out;
  }

  void signal_group(pid_t pid, int sig) {
    if (pid > 0) {
      if (sig == SIGTERM && terminated_by_default_only_outside(pid)) {
        sig = SIGKILL;  // what SIGTERM would do to it anywhere but at the top of a namespace
      }
      ::kill(-pid, sig);  // the container's process group (it leads its own session)
    }
  }

  // A container in its own pid namespace is its init, which the kernel does not let a signal
  // kill unless it handles it: SIGTERM would be lost on a program leaving it at its default.
  // True for such a process (from /proc/PID/status: its innermost pid is 1, SIGTERM neither
  // caught nor ignored).
  static bool terminated_by_default_only_outside(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    bool init = false;
    std::uint64_t handled = 0;
    const auto mask = [](const std::string& hex) { return std::stoull(hex, nullptr, 16); };
    while (std::getline(in, line)) {
      if (line.starts_with("NSpid:")) {
        init = line.ends_with("\t1") && line.find('\t', 7) != std::string::npos;
      } else if (line.starts_with("SigIgn:") || line.starts_with("SigCgt:")) {
        handled |= mask(line.substr(7));
      }
    }
    return init && (handled & (1ULL << (SIGTERM - 1))) == 0;
  }

  void reconcile(const std::string& key) {
    const std::size_t slash = key.find('/');
    const std::string ns = key.substr(0, slash);
    const std::string name = key.substr(slash + 1);
    std::optional<object> obj = store_.get(pods_type_, ns, name);

    std::unique_lock lock(pods_mu_);
    auto it = pods_.find(key);
    if (it != pods_.end() && (!obj || kube::meta_string(*obj, "uid") != it->second.uid)) {
      // Deleted (or replaced by a new pod of the same name): nothing of the old one may run.
      for (Container& c : it->second.containers) {
        signal_group(c.pid, SIGKILL);
      }
      reap_blocking(it->second);
      pods_.erase(it);
      it = pods_.end();
    }
    if (!obj) {
      return;
    }
    const array* specs = containers_of(*obj);
    if (specs == nullptr) {
      return;
    }
    if (it == pods_.end() && !annotation(*obj, kRestoringAnnotation).empty()) {
      return;  // being restored elsewhere's processes: not ours to start yet
    }
    if (it == pods_.end()) {
      Pod p;
      p.ns = ns;
      p.name = name;
      p.uid = std::string(kube::meta_string(*obj, "uid"));
      p.start_time = options_.clock();
      for (const value& spec : *specs) {
        Container c;
        if (spec.is_object()) {
          c.name = str(spec.as_object(), "name");
          c.image = str(spec.as_object(), "image");
          adopt(c, *obj);
        }
        p.containers.push_back(std::move(c));
      }
      it = pods_.emplace(key, std::move(p)).first;
    }
    Pod& pod = it->second;

    if (!kube::meta_string(*obj, "deletionTimestamp").empty()) {
      terminate(pod, *obj);
      const bool stopped = std::none_of(pod.containers.begin(), pod.containers.end(),
                                        [](const Container& c) { return c.pid != 0; });
      if (stopped) {
        const std::string uid = pod.uid;
        pods_.erase(it);
        lock.unlock();
        finalize_delete(ns, name, uid);
      }
      return;
    }

    const std::string policy = restart_policy(*obj);
    const auto now = options_.clock();
    for (std::size_t i = 0; i < pod.containers.size() && i < specs->size(); ++i) {
      Container& c = pod.containers[i];
      if (c.pid != 0) {
        continue;
      }
      bool start = !c.started_once && c.waiting_reason.empty();
      if (c.exit_code || !c.waiting_reason.empty()) {
        const bool failed = !c.waiting_reason.empty() || *c.exit_code != 0;
        // A pod moving to another site is not restarted here: its process was checkpointed.
        const bool restart = (policy == "Always" || (policy == "OnFailure" && failed)) &&
                             annotation(*obj, kMigratingToAnnotation).empty();
        if (restart) {
          if (c.next_start == Clock::time_point{}) {
            const auto backoff = std::min<Clock::duration>(
                kBackoffBase * (1 << std::min(c.restarts, 16)), kBackoffMax);
            c.next_start = now + backoff;
          }
          start = now >= c.next_start;
        }
      }
      if (start) {
        if (c.started_once || !c.waiting_reason.empty()) {
          ++c.restarts;
        }
        if (c.exit_code) {
          c.last_terminated = terminated_state(c);
        }
        spawn(pod, c, (*specs)[i].as_object(), *obj);
      }
    }
    object status = pod_status(pod, *obj, policy);
    lock.unlock();
    write_status(ns, name, pod.uid, std::move(status));
  }

  // After a restart of the site, a container whose process still runs (the site was killed) is
  // taken over rather than started twice: its pid is in the pod's status, and the process must
  // still lead its own session and run the container's command.
  void adopt(Container& c, const object& obj) {
    const value* status = obj.if_contains("status");
    const value* list = status != nullptr && status->is_object()
                            ? status->as_object().if_contains("containerStatuses")
                            : nullptr;
    if (list == nullptr || !list->is_array()) {
      return;
    }
    for (const value& cs : list->as_array()) {
      if (!cs.is_object() || str(cs.as_object(), "name") != c.name) {
        continue;
      }
      const std::string id = str(cs.as_object(), "containerID");
      const value* state = cs.as_object().if_contains("state");
      if (!id.starts_with("archipel://") || state == nullptr || !state->is_object() ||
          !state->as_object().contains("running")) {
        return;
      }
      const pid_t pid = static_cast<pid_t>(std::atoi(id.c_str() + 11));
      const value* running = state->as_object().if_contains("running");
      Clock::time_point started{};
      if (!running->is_object() ||
          !kube::parse_rfc3339(str(running->as_object(), "startedAt"), started)) {
        return;
      }
      // The same process, not a reused pid: it leads its own session and started when the
      // status says (to the second, the precision of startedAt).
      const auto actual = process_start(pid);
      if (pid <= 0 || getsid(pid) != pid || !actual ||
          std::chrono::abs(*actual - started) > std::chrono::seconds(2)) {
        return;
      }
      c.pid = pid;
      c.last_pid = pid;
      c.adopted = true;
      c.started_once = true;
      if (const value* n = cs.as_object().if_contains("restartCount");
          n != nullptr && n->is_int64()) {
        c.restarts = static_cast<int>(n->as_int64());
      }
      c.started = started;
      spdlog::info("pods: took over container {} (pid {}) still running from before", c.name, pid);
      return;
    }
  }

  // When a process started, from /proc (boot time + start ticks); nullopt if it is gone.
  static std::optional<Clock::time_point> process_start(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
      return std::nullopt;
    }
    const std::size_t close = line.rfind(')');  // the command may hold spaces and parentheses
    if (close == std::string::npos) {
      return std::nullopt;
    }
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    unsigned long long ticks = 0;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
      if (i == 22) {
        ticks = std::stoull(field);
      }
    }
    std::ifstream boot("/proc/stat");
    long long btime = -1;
    while (std::getline(boot, line)) {
      if (line.starts_with("btime ")) {
        btime = std::stoll(line.substr(6));
      }
    }
    if (btime < 0 || ticks == 0) {
      return std::nullopt;
    }
    const long hz = sysconf(_SC_CLK_TCK);
    return Clock::time_point(std::chrono::seconds(btime)) +
           std::chrono::milliseconds(static_cast<long long>(ticks) * 1000 / hz);
  }

  void terminate(Pod& pod, const object& obj) {
    if (pod.terminating) {
      if (std::chrono::steady_clock::now() >= pod.kill_at) {
        for (Container& c : pod.containers) {
          signal_group(c.pid, SIGKILL);
        }
      }
      return;
    }
    pod.terminating = true;
    std::int64_t grace = 30;
    const value* meta = obj.if_contains("metadata");
    if (const value* g = meta->as_object().if_contains("deletionGracePeriodSeconds");
        g != nullptr && g->is_int64()) {
      grace = g->as_int64();
    }
    pod.kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(grace);
    for (Container& c : pod.containers) {
      signal_group(c.pid, grace > 0 ? SIGTERM : SIGKILL);
    }
    spdlog::info("pods: stopping {}/{} (grace {}s)", pod.ns, pod.name, grace);
  }

  void finalize_delete(const std::string& ns, const std::string& name, const std::string& uid) {
    (void)store_.mutate(pods_type_, ns, name, [&](const object* current) -> Result<Change> {
      if (current == nullptr || kube::meta_string(*current, "uid") != uid) {
        return Change{Change::Kind::kNone, {}};
      }
      return Change{Change::Kind::kDelete, {}};
    });
  }

  static void reap_blocking(Pod& pod) {
    for (Container& c : pod.containers) {
      if (c.pid != 0) {
        if (c.adopted) {
          while (::kill(c.pid, 0) == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        } else {
          int status = 0;
          waitpid(c.pid, &status, 0);
        }
        c.pid = 0;
      }
    }
  }

  void spawn(Pod& pod, Container& c, const object& spec, const object& obj) {
    c.started_once = true;
    c.exit_code.reset();
    c.next_start = {};
    c.waiting_reason.clear();
    c.waiting_message.clear();

    std::vector<std::string> argv;
    for (const char* field : {"command", "args"}) {
      if (const value* list = spec.if_contains(field); list != nullptr && list->is_array()) {
        for (const value& a : list->as_array()) {
          argv.emplace_back(a.is_string() ? std::string(a.as_string()) : std::string());
        }
      }
    }
    if (argv.empty()) {
      c.waiting_reason = "CreateContainerConfigError";
      c.waiting_message =
          "the embedded cluster does not pull images: the container needs a command";
      c.exit_code = 1;
      return;
    }
    std::vector<std::string> env = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + pod.name,
        "HOME=/root"};
    if (const value* list = spec.if_contains("env"); list != nullptr && list->is_array()) {
      for (const value& e : list->as_array()) {
        if (e.is_object()) {
          env.push_back(str(e.as_object(), "name") + "=" + str(e.as_object(), "value"));
        }
      }
    }
    const auto log = log_path(pod.ns, pod.name, c.name);
    std::error_code ec;
    std::filesystem::create_directories(log.parent_path(), ec);
    const std::string dir = str(spec, "workingDir");

    if (annotation(obj, kMigrateAnnotation) == "criu") {
      auto started = base::start_process(
          {.argv = argv, .env = env, .working_dir = dir, .log = log, .own_pid_namespace = true});
      if (!started) {
        c.waiting_reason = "StartError";
        c.waiting_message = started.error();
        c.exit_code = 128;
        c.finished = options_.clock();
        spdlog::warn("pods: {}/{} container {}: {}", pod.ns, pod.name, c.name, c.waiting_message);
        return;
      }
      c.pid = *started;
      c.last_pid = *started;
      c.started = options_.clock();
      spdlog::info("pods: started {}/{} container {} (pid {}, own pid namespace)", pod.ns, pod.name,
                   c.name, *started);
      return;
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // nothing else of the site's
    if (!dir.empty()) {
      posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD}) {
      sigaddset(&defaults, s);
    }
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (std::string& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (std::string& e : env) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      c.waiting_reason = "StartError";
      c.waiting_message = "cannot start \"" + argv[0] + "\": " + std::strerror(rc);
      c.exit_code = 128;
      c.finished = options_.clock();
      spdlog::warn("pods: {}/{} container {}: {}", pod.ns, pod.name, c.name, c.waiting_message);
      return;
    }
    c.pid = pid;
    c.last_pid = pid;
    c.started = options_.clock();
    (void)obj;
    spdlog::info("pods: started {}/{} container {} (pid {})", pod.ns, pod.name, c.name, pid);
  }

  object terminated_state(const Container& c) const {
    const int code = c.exit_code.value_or(0);
    return object{{"exitCode", code},
                  {"reason", c.waiting_reason.empty() ? (code == 0 ? "Completed" : "Error")
                                                      : c.waiting_reason},
                  {"startedAt", kube::rfc3339(c.started)},
                  {"finishedAt", kube::rfc3339(c.finished)},
                  {"containerID", "archipel://" + std::to_string(c.last_pid)}};
  }

  object pod_status(const Pod& pod, const object& obj, const std::string& policy) const {
    array statuses;
    bool all_running = true;
    bool any_running = false;
    bool all_done = true;
    bool all_succeeded = true;
    for (const Container& c : pod.containers) {
      object s;
      s["name"] = c.name;
      s["image"] = c.image;
      s["imageID"] = "";
      s["restartCount"] = c.restarts;
      const bool running = c.pid != 0;
      s["ready"] = running;
      s["started"] = running;
      if (running) {
        s["containerID"] = "archipel://" + std::to_string(c.pid);
        s["state"] = object{{"running", object{{"startedAt", kube::rfc3339(c.started)}}}};
      } else if (!c.waiting_reason.empty() ||
                 (c.exit_code && c.next_start != Clock::time_point{})) {
        const std::string reason = c.waiting_reason.empty() ? "CrashLoopBackOff" : c.waiting_reason;
        s["state"] =
            object{{"waiting", object{{"reason", reason}, {"message", c.waiting_message}}}};
      } else if (c.exit_code) {
        s["state"] = object{{"terminated", terminated_state(c)}};
      } else {
        s["state"] = object{{"waiting", object{{"reason", "ContainerCreating"}}}};
      }
      if (c.last_terminated) {
        s["lastState"] = object{{"terminated", *c.last_terminated}};
      }
      statuses.push_back(std::move(s));
      all_running = all_running && running;
      any_running = any_running || running;
      const bool will_restart =
          policy == "Always" || (policy == "OnFailure" && c.exit_code.value_or(0) != 0);
      const bool done = !running && c.exit_code.has_value() && !will_restart;
      all_done = all_done && done;
      all_succeeded = all_succeeded && done && *c.exit_code == 0;
    }
    std::string phase = "Pending";
    if (all_done && !pod.containers.empty()) {
      phase = all_succeeded ? "Succeeded" : "Failed";
    } else if (any_running || std::any_of(pod.containers.begin(), pod.containers.end(),
                                          [](const Container& c) { return c.started_once; })) {
      phase = "Running";
    }
    object status;
    status["phase"] = phase;
    status["hostIP"] = options_.host_ip;
    status["podIP"] = options_.host_ip;
    status["podIPs"] = array{object{{"ip", options_.host_ip}}};
    status["startTime"] = kube::rfc3339(pod.start_time);
    status["containerStatuses"] = std::move(statuses);
    // Conditions keep their lastTransitionTime while their status stays the same.
    const value* old_status = obj.if_contains("status");
    auto condition = [&](const char* type, bool ok) {
      std::string since = kube::rfc3339(options_.clock());
      if (old_status != nullptr && old_status->is_object()) {
        if (const value* cs = old_status->as_object().if_contains("conditions");
            cs != nullptr && cs->is_array()) {
          for (const value& c : cs->as_array()) {
            if (c.is_object() && str(c.as_object(), "type") == type &&
                str(c.as_object(), "status") == (ok ? "True" : "False")) {
              since = str(c.as_object(), "lastTransitionTime");
            }
          }
        }
      }
      return object{
          {"type", type}, {"status", ok ? "True" : "False"}, {"lastTransitionTime", since}};
    };
    status["conditions"] =
        array{condition("Initialized", true), condition("Ready", all_running && phase == "Running"),
              condition("ContainersReady", all_running && phase == "Running"),
              condition("PodScheduled", true)};
    return status;
  }

  void write_status(const std::string& ns, const std::string& name, const std::string& uid,
                    object status) {
    (void)store_.mutate(pods_type_, ns, name, [&](const object* current) -> Result<Change> {
      if (current == nullptr || kube::meta_string(*current, "uid") != uid) {
        return Change{Change::Kind::kNone, {}};
      }
      const value* old = current->if_contains("status");
      if (old != nullptr && *old == status) {
        return Change{Change::Kind::kNone, {}};
      }
      object next = *current;
      next["status"] = std::move(status);
      return Change{Change::Kind::kPut, std::move(next)};
    });
  }

  void shutdown_all() {
    std::lock_guard lock(pods_mu_);
    for (auto& [key, pod] : pods_) {
      for (Container& c : pod.containers) {
        signal_group(c.pid, SIGTERM);
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
    for (auto& [key, pod] : pods_) {
      for (Container& c : pod.containers) {
        while (c.pid != 0) {
          int status = 0;
          const bool gone =
              c.adopted ? ::kill(c.pid, 0) != 0 : waitpid(c.pid, &status, WNOHANG) != 0;
          if (gone) {
            c.pid = 0;
          } else if (std::chrono::steady_clock::now() >= deadline) {
            signal_group(c.pid, SIGKILL);
            if (!c.adopted) {
              waitpid(c.pid, &status, 0);
            }
            c.pid = 0;
          } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }
      }
    }
  }

  ObjectStore& store_;
  Options options_;
  const kube::ResourceType& pods_type_;
  std::shared_ptr<void> subscription_;

  std::mutex mu_;  // guards dirty_ and stopping_
  std::condition_variable cv_;
  std::deque<std::string> dirty_;
  bool stopping_ = false;

  mutable std::mutex pods_mu_;  // guards pods_
  std::map<std::string, Pod> pods_;

  std::thread thread_;
};

}  // namespace

std::unique_ptr<PodRuntime> PodRuntime::start(ObjectStore& store, Options options) {
  return std::make_unique<PodRuntimeImpl>(store, std::move(options));
}

}  // namespace archipel::cluster
