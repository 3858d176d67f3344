#include "archipel/migrate/pod_move.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::string string_at(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* at = &o;
  for (const char* key : path) {
    v = at->if_contains(key);
    if (v == nullptr) {
      return {};
    }
    if (v->is_object()) {
      at = &v->as_object();
    }
  }
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

json::object& annotations_of(json::object& pod) {
  json::value& meta = pod["metadata"];
  if (!meta.is_object()) {
    meta = json::object();
  }
  json::value& notes = meta.as_object()["annotations"];
  if (!notes.is_object()) {
    notes = json::object();
  }
  return notes.as_object();
}

std::string now_rfc3339() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The pod as the destination creates it: its identity and spec, no server-set fields.
json::object destination_pod(const json::object& source, const std::string& from) {
  json::object meta;
  const json::object& m = source.at("metadata").as_object();
  for (const char* key : {"name", "namespace", "labels", "annotations"}) {
    if (const json::value* v = m.if_contains(key)) {
      meta[key] = *v;
    }
  }
  json::object pod{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}};
  if (const json::value* spec = source.if_contains("spec")) {
    pod["spec"] = *spec;
  }
  json::object& notes = annotations_of(pod);
  notes.erase(kMigratingToAnnotation);
  notes[kMigratedFromAnnotation] = from;
  notes[kRestoringAnnotation] = "true";
  return pod;
}

}  // namespace

boost::system::result<MoveResult, std::string> move_pod(const Criu& criu, PodSite& from,
                                                        PodSite& to, const MoveRequest& r) {
  const auto start = Clock::now();
  MoveResult result;
  const auto phase = [&](const char* name) {
    result.phases.push_back(
        {name, std::chrono::duration<double, std::milli>(Clock::now() - start).count()});
  };
  const std::string where = r.namespace_name + "/" + r.pod;

  // What moves: one container, running, opted in.
  auto got = from.get_pod(r.namespace_name, r.pod);
  if (!got) {
    return got.error();
  }
  json::object pod = std::move(*got);
  if (string_at(pod, {"metadata", "annotations", kMigrateAnnotation}) != "criu") {
    return "pod " + where + " is not annotated " + std::string(kMigrateAnnotation) +
           ": criu (only such pods run so that CRIU can move them)";
  }
  const json::value* statuses = nullptr;
  if (const json::value* status = pod.if_contains("status");
      status != nullptr && status->is_object()) {
    statuses = status->as_object().if_contains("containerStatuses");
  }
  if (statuses == nullptr || !statuses->is_array() || statuses->as_array().size() != 1) {
    return "pod " + where + " must have exactly one container, running";
  }
  const json::object& cs = statuses->as_array().front().as_object();
  const std::string container = string_at(cs, {"name"});
  const std::string id = string_at(cs, {"containerID"});
  const json::value* state = cs.if_contains("state");
  if (!id.starts_with("archipel://") || state == nullptr || !state->is_object() ||
      !state->as_object().contains("running")) {
    return "pod " + where + ": container " + container + " is not running";
  }
  const pid_t pid = static_cast<pid_t>(std::atol(id.c_str() + 11));

  // The source's runtime must not restart the container once it is checkpointed.
  json::object marked = pod;
  annotations_of(marked)[kMigratingToAnnotation] = to.name();
  if (auto put = from.put_pod(marked); !put) {
    return "marking " + where + " as moving: " + put.error();
  }
  const auto unmark = [&] {
    annotations_of(pod).erase(kMigratingToAnnotation);
    (void)from.put_pod(pod);
  };

  const fs::path source_images = r.work / "source";
  const fs::path destination_images = r.work / "destination";
  const auto freeze = Clock::now();
  std::unique_ptr<CriuDaemon> serving;
  if (r.mode == MoveMode::kPostCopy) {
    auto d = criu.start_lazy_dump({.pid = pid,
                                   .images = source_images,
                                   .page_server_address = r.page_server_address,
                                   .page_server_port = r.page_server_port});
    if (!d) {
      unmark();
      return "checkpointing " + where + ": " + d.error().describe();
    }
    serving = std::move(*d);
  } else {
    if (auto d = criu.dump({.pid = pid, .images = source_images, .leave_stopped = true}); !d) {
      unmark();
      return "checkpointing " + where + ": " + d.error().describe();
    }
  }
  phase("checkpointed");
  // The source is frozen from here: any failure resumes it.
  const auto give_up = [&](const std::string& why) -> std::string {
    serving.reset();  // a lazy dump killed: its frozen tree is released
    resume_stopped_tree(pid);
    (void)to.delete_pod(r.namespace_name, r.pod);
    unmark();
    return why + " (the pod goes on at " + from.name() + ")";
  };

  std::error_code ec;
  fs::remove_all(destination_images, ec);
  fs::copy(source_images, destination_images, fs::copy_options::recursive, ec);
  if (ec) {
    return give_up("transferring the images of " + where + ": " + ec.message());
  }
  phase("transferred");

  std::unique_ptr<CriuDaemon> fetching;
  if (r.mode == MoveMode::kPostCopy) {
    auto l = criu.start_lazy_pages(destination_images, r.page_server_address, r.page_server_port);
    if (!l) {
      return give_up("fetching the memory of " + where + ": " + l.error().describe());
    }
    fetching = std::move(*l);
  }
  if (auto put = to.put_pod(destination_pod(pod, from.name())); !put) {
    return give_up("creating " + where + " at " + to.name() + ": " + put.error());
  }
  const fs::path log = to.log_path(r.namespace_name, r.pod, container);
  fs::create_directories(log.parent_path(), ec);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return give_up("opening " + log.string() + ": " + std::strerror(errno));
  }
  const fs::path source_log = from.log_path(r.namespace_name, r.pod, container);
  auto restored = criu.restore({.images = destination_images,
                                .inherit_fds = {{source_log.relative_path().string(), fd}},
                                .lazy_pages = r.mode == MoveMode::kPostCopy});
  ::close(fd);
  if (!restored) {
    return give_up("restoring " + where + " at " + to.name() + ": " + restored.error().describe());
  }
  result.pid = *restored;
  result.downtime_ms = std::chrono::duration<double, std::milli>(Clock::now() - freeze).count();
  phase("restored");

  // The destination's runtime takes the restored process as the pod's container.
  json::object status{
      {"phase", "Running"},
      {"containerStatuses",
       json::array{json::object{
           {"name", container},
           {"restartCount", 0},
           {"containerID", "archipel://" + std::to_string(*restored)},
           {"state", json::object{{"running", json::object{{"startedAt", now_rfc3339()}}}}}}}}};
  json::object running = destination_pod(pod, from.name());
  annotations_of(running).erase(kRestoringAnnotation);
  if (auto s = to.put_pod_status(r.namespace_name, r.pod, status); !s) {
    kill_tree(*restored);
    return give_up("handing the restored process to " + to.name() + ": " + s.error());
  }
  if (auto s = to.put_pod(running); !s) {
    kill_tree(*restored);
    return give_up("handing the restored process to " + to.name() + ": " + s.error());
  }

  // The destination runs: the source's copy goes (post-copy: once its memory is all across).
  if (r.mode == MoveMode::kPostCopy) {
    if (auto f = fetching->finish(std::chrono::minutes(5)); !f) {
      return "moving " + where + ": its memory did not all arrive at " + to.name() + ": " +
             f.error().describe();
    }
    (void)serving->finish(std::chrono::seconds(30));  // CRIU kills the source once all is sent
    phase("memory-complete");
  } else {
    kill_tree(pid);
  }
  if (auto d = from.delete_pod(r.namespace_name, r.pod); !d) {
    return "moved " + where + " to " + to.name() + " but could not delete it at " + from.name() +
           ": " + d.error();
  }
  phase("done");
  return result;
}

}  // namespace archipel::migrate
