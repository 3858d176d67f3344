#include "archipel/migrate/pod_move.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
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

}  // namespace

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

SourceCheckpoint::~SourceCheckpoint() {
  give_back();
}

void SourceCheckpoint::give_back() {
  if (done_) {
    return;
  }
  done_ = true;
  serving_.reset();  // a lazy dump killed before it ends: its frozen tree is released
  resume_stopped_tree(pid_);
  json::object pod = source_pod_;
  annotations_of(pod).erase(kMigratingToAnnotation);
  (void)from_->put_pod(pod);
}

boost::system::result<void, std::string> SourceCheckpoint::complete(
    std::chrono::milliseconds memory_timeout) {
  done_ = true;
  if (serving_) {
    if (auto served = serving_->finish(memory_timeout); !served) {
      return "sending the memory of " + namespace_ + "/" + name_ + ": " + served.error().describe();
    }
  }
  kill_tree(pid_);
  if (auto d = from_->delete_pod(namespace_, name_); !d) {
    return "deleting " + namespace_ + "/" + name_ + " at " + from_->name() + ": " + d.error();
  }
  return {};
}

namespace {

// A migratable pod and its one running container.
struct RunningPod {
  json::object pod;
  std::string container;
  pid_t pid = 0;
};

boost::system::result<RunningPod, std::string> running_pod(PodSite& from, const std::string& ns,
                                                           const std::string& name) {
  const std::string where = ns + "/" + name;
  auto got = from.get_pod(ns, name);
  if (!got) {
    return "pod " + where + " at " + from.name() + ": " + got.error();
  }
  RunningPod out{std::move(*got), {}, 0};
  if (string_at(out.pod, {"metadata", "annotations", kMigrateAnnotation}) != "criu") {
    return "pod " + where + " is not annotated " + std::string(kMigrateAnnotation) +
           ": criu (only such pods run so that CRIU can move them)";
  }
  const json::value* statuses = nullptr;
  if (const json::value* status = out.pod.if_contains("status");
      status != nullptr && status->is_object()) {
    statuses = status->as_object().if_contains("containerStatuses");
  }
  if (statuses == nullptr || !statuses->is_array() || statuses->as_array().size() != 1 ||
      !statuses->as_array().front().is_object()) {
    return "pod " + where + " must have exactly one container, running";
  }
  const json::object& cs = statuses->as_array().front().as_object();
  out.container = string_at(cs, {"name"});
  const std::string id = string_at(cs, {"containerID"});
  const json::value* state = cs.if_contains("state");
  if (!id.starts_with("archipel://") || state == nullptr || !state->is_object() ||
      !state->as_object().contains("running")) {
    return "pod " + where + ": container " + out.container + " is not running";
  }
  out.pid = static_cast<pid_t>(std::atol(id.c_str() + 11));
  return out;
}

}  // namespace

boost::system::result<void, std::string> checkpoint_running_pod(const Criu& criu, PodSite& from,
                                                                const std::string& ns,
                                                                const std::string& name,
                                                                const fs::path& images) {
  auto running = running_pod(from, ns, name);
  if (!running) {
    return running.error();
  }
  std::error_code ec;
  fs::remove_all(images, ec);
  if (auto d = criu.dump({.pid = running->pid, .images = images, .leave_running = true}); !d) {
    return "checkpointing " + ns + "/" + name + " (running): " + d.error().describe();
  }
  return {};
}

boost::system::result<void, std::string> pre_dump_pod(const Criu& criu, PodSite& from,
                                                      const std::string& ns,
                                                      const std::string& name,
                                                      const fs::path& images,
                                                      const std::optional<fs::path>& parent) {
  auto running = running_pod(from, ns, name);
  if (!running) {
    return running.error();
  }
  std::error_code ec;
  fs::remove_all(images, ec);
  if (auto d = criu.pre_dump(
          {.pid = running->pid, .images = images, .parent = parent, .track_mem = true});
      !d) {
    return "pre-copying " + ns + "/" + name + ": " + d.error().describe();
  }
  return {};
}

boost::system::result<std::unique_ptr<SourceCheckpoint>, std::string> checkpoint_pod(
    const Criu& criu, PodSite& from, const MoveRequest& r, const std::string& destination) {
  const std::string where = r.namespace_name + "/" + r.pod;
  auto running = running_pod(from, r.namespace_name, r.pod);
  if (!running) {
    return running.error();
  }
  json::object& pod = running->pod;
  const std::string& container = running->container;

  // The source's runtime must not restart the container once it is checkpointed.
  json::object marked = pod;
  annotations_of(marked)[kMigratingToAnnotation] = destination;
  if (auto put = from.put_pod(marked); !put) {
    return "marking " + where + " as moving: " + put.error();
  }
  std::unique_ptr<SourceCheckpoint> c(new SourceCheckpoint());
  c->from_ = &from;
  c->source_pod_ = pod;
  c->destination_pod_ = destination_pod(pod, from.name());
  c->namespace_ = r.namespace_name;
  c->name_ = r.pod;
  c->container_ = container;
  c->log_ = from.log_path(r.namespace_name, r.pod, container);
  c->images_ = r.work / "source";
  c->pid_ = running->pid;
  if (r.mode == MoveMode::kPostCopy) {
    // Left stopped, not killed, once every page is sent: until complete() the pod can still
    // be given back, however fast the destination fetched the memory.
    auto d = criu.start_lazy_dump({.pid = c->pid_,
                                   .images = c->images_,
                                   .leave_stopped = true,
                                   .page_server_address = r.page_server_address,
                                   .page_server_port = r.page_server_port});
    if (!d) {
      return "checkpointing " + where + ": " + d.error().describe();  // c gives the pod back
    }
    c->serving_ = std::move(*d);
  } else if (auto d = criu.dump(
                 {.pid = c->pid_, .images = c->images_, .leave_stopped = true, .parent = r.parent});
             !d) {
    return "checkpointing " + where + ": " + d.error().describe();
  }
  return c;
}

boost::system::result<Restored, std::string> restore_pod(
    const Criu& criu, PodSite& to, const json::object& pod, const std::string& container,
    const fs::path& source_log, const fs::path& images, const MoveRequest& r,
    const std::function<void()>& before_giving_up) {
  const auto start = Clock::now();
  const std::string where = r.namespace_name + "/" + r.pod + " at " + to.name();
  std::unique_ptr<CriuDaemon> fetching;
  if (r.mode == MoveMode::kPostCopy) {
    auto l = criu.start_lazy_pages(images, r.page_server_address, r.page_server_port);
    if (!l) {
      if (before_giving_up) {
        before_giving_up();
      }
      return "fetching the memory of " + where + ": " + l.error().describe();
    }
    fetching = std::move(*l);
  }
  pid_t restored_pid = 0;
  bool created = false;
  const auto fail = [&](const std::string& why) -> std::string {
    if (restored_pid != 0) {
      kill_tree(restored_pid);
    }
    if (before_giving_up) {
      before_giving_up();
    }
    fetching.reset();
    if (created) {
      (void)to.delete_pod(r.namespace_name, r.pod);
    }
    return why;
  };
  // A pod of that name there is another pod (or a copy a lost commit left): it is not ours to
  // replace, nor to delete if the restore fails.
  if (auto existing = to.get_pod(r.namespace_name, r.pod)) {
    return fail("pod " + r.namespace_name + "/" + r.pod + " already exists at " + to.name());
  }
  if (auto put = to.put_pod(pod); !put) {
    return fail("creating " + where + ": " + put.error());
  }
  created = true;
  const fs::path log = to.log_path(r.namespace_name, r.pod, container);
  std::error_code ec;
  fs::create_directories(log.parent_path(), ec);
  auto restored = criu.restore({.images = images,
                                .reopen = {{source_log, log}},
                                .lazy_pages = r.mode == MoveMode::kPostCopy});
  if (!restored) {
    return fail("restoring " + where + ": " + restored.error().describe());
  }
  restored_pid = *restored;
  Restored out{*restored, std::chrono::duration<double, std::milli>(Clock::now() - start).count()};

  // The destination's runtime takes the restored process as the pod's container.
  json::object status{
      {"phase", "Running"},
      {"containerStatuses",
       json::array{json::object{
           {"name", container},
           {"restartCount", 0},
           {"containerID", "archipel://" + std::to_string(*restored)},
           {"state", json::object{{"running", json::object{{"startedAt", now_rfc3339()}}}}}}}}};
  json::object running = pod;
  annotations_of(running).erase(kRestoringAnnotation);
  if (auto s = to.put_pod_status(r.namespace_name, r.pod, status); !s) {
    return fail("handing the restored process to " + to.name() + ": " + s.error());
  }
  if (auto s = to.put_pod(running); !s) {
    return fail("handing the restored process to " + to.name() + ": " + s.error());
  }
  if (fetching) {
    // Post-copy: the pod runs here now, and needs all its memory. If it does not all come,
    // this copy is broken: it goes, and the source's, if CRIU left it alive, goes on.
    if (auto f = fetching->finish(std::chrono::minutes(5)); !f) {
      return fail("the memory of " + where + " did not all arrive: " + f.error().describe());
    }
  }
  return out;
}

boost::system::result<MoveResult, std::string> move_pod(const Criu& criu, PodSite& from,
                                                        PodSite& to, const MoveRequest& r) {
  const auto start = Clock::now();
  MoveResult result;
  const auto phase = [&](const char* name) {
    result.phases.push_back(
        {name, std::chrono::duration<double, std::milli>(Clock::now() - start).count()});
  };
  auto checkpoint = checkpoint_pod(criu, from, r, to.name());
  if (!checkpoint) {
    return checkpoint.error();
  }
  phase("checkpointed");
  const auto back = " (the pod goes on at " + from.name() + ")";

  const fs::path images = r.work / "destination";
  std::error_code ec;
  fs::remove_all(images, ec);
  if (r.transfer) {
    if (auto sent = r.transfer((*checkpoint)->images(), images); !sent) {
      return "transferring the images of " + r.namespace_name + "/" + r.pod + ": " + sent.error() +
             back;
    }
  } else if (fs::copy((*checkpoint)->images(), images, fs::copy_options::recursive, ec); ec) {
    return "transferring the images of " + r.namespace_name + "/" + r.pod + ": " + ec.message() +
           back;
  }
  phase("transferred");

  SourceCheckpoint& source = **checkpoint;
  auto restored = restore_pod(criu, to, source.pod(), source.container(), source.log(), images, r,
                              [&source] { source.give_back(); });
  if (!restored) {
    return restored.error() + back;  // the checkpoint gives the pod back to the source
  }
  result.pid = restored->pid;
  // Frozen from the checkpoint's start (about the move's) until the restored process ran.
  result.downtime_ms = result.phases.back().at_ms + restored->restored_ms;
  phase(r.mode == MoveMode::kPostCopy ? "memory-complete" : "restored");
  if (auto done = (*checkpoint)->complete(std::chrono::seconds(30)); !done) {
    return "moved " + r.namespace_name + "/" + r.pod + " to " + to.name() + ", but " + done.error();
  }
  phase("done");
  return result;
}

}  // namespace archipel::migrate
