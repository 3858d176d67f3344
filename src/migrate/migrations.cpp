#include "archipel/migrate/migrations.hpp"

#include "archipel/base/ports.hpp"
#include "archipel/kube/object.hpp"
#include "archipel/kube/selector.hpp"
#include "archipel/migrate/criu.hpp"
#include "archipel/migrate/images.hpp"
#include "archipel/migrate/pod_move.hpp"
#include "migrate.pb.h"
#include "migrate/app_state.hpp"
#include "migrate/async.hpp"
#include "migrate/page_tunnel.hpp"
#include "migrate/protection.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>

namespace archipel::migrate {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using kube::Status;

constexpr const char* kMethod = "migrate.pod";
constexpr std::string_view kGroup = "archipel.io";
constexpr std::string_view kResource = "migrations";

enum class Mode { kCold, kWarm, kLive, kApp };

std::optional<Mode> parse_mode(std::string_view s) {
  if (s == "cold") {
    return Mode::kCold;
  }
  if (s == "warm") {
    return Mode::kWarm;
  }
  if (s == "live") {
    return Mode::kLive;
  }
  if (s == "app") {
    return Mode::kApp;
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 4> kModes{"cold", "warm", "live", "app"};

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The decoded value of `key` in a query string ("" when absent).
std::string query_value(std::string_view query, std::string_view key) {
  if (!boost::urls::parse_query(query)) {
    return {};
  }
  for (auto p : boost::urls::params_view(query)) {
    if (p.key == key) {
      return p.value;
    }
  }
  return {};
}

// A name usable as a directory: the migration's namespace/name with '/' → '_'.
std::string directory_name(std::string s) {
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

struct Spec {
  std::string ns;
  std::string name;  // the Migration's
  std::string pod;
  std::string to;
  Mode mode = Mode::kLive;
  std::string mode_name;
};

// What a finished migration measured.
struct Done {
  double downtime_ms = 0;
  std::uint64_t image_bytes = 0;
};
using Outcome = boost::system::result<Done, std::string>;

// Prometheus histogram of downtimes, by mode.
constexpr std::array<double, 10> kDowntimeBuckets{0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10};
struct ModeMetrics {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::array<std::uint64_t, kDowntimeBuckets.size()> buckets{};
  double downtime_sum = 0;
  std::uint64_t downtime_count = 0;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::io_context& io, peer::PeerNode& node, KubeCall local, Migrations::Options options)
      : io_(io),
        node_(node),
        options_(std::move(options)),
        site_(options_.site, std::move(local), options_.pods_dir) {}

  asio::io_context& io() { return io_; }
  peer::PeerNode& node() { return node_; }
  const Migrations::Options& options() const { return options_; }
  KubePodSite& site() { return site_; }
  asio::thread_pool& pool() { return pool_; }
  asio::thread_pool& transfers() { return transfers_; }
  const std::shared_ptr<PageServers>& page_servers() { return page_servers_; }
  // The protection of this site's pods (null once it is gone).
  std::shared_ptr<Protection> protection() { return protection_.lock(); }
  void set_protection(std::weak_ptr<Protection> p) { protection_ = std::move(p); }
  // Moves `pod` to `to` because this site's links degrade: a warm Migration, made here.
  void evacuate(const std::string& ns, const std::string& pod, const std::string& to);

  // CRIU, checked once (blocking: call it on the pool).
  boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string> criu() {
    std::lock_guard lock(criu_mu_);
    if (!criu_) {
      std::optional<fs::path> binary =
          options_.criu.empty() ? Criu::locate() : std::optional<fs::path>(options_.criu);
      if (!binary) {
        return std::string("no CRIU on this site (scripts/setup-criu installs one)");
      }
      criu_.emplace(Criu::Options{*binary});
      features_ = criu_->check();
    }
    if (!features_.works) {
      return "CRIU does not work on " + options_.site + ": " + features_.problem;
    }
    return std::make_pair(&*criu_, features_);
  }

  // ---- the Migration records ----

  // Starts a migration from a POST body; the record as created.
  // `strict`: unknown fields are an error (fieldValidation=Strict), not ignored.
  boost::system::result<json::object, Status> create(std::string_view ns, std::string_view body,
                                                     bool strict);
  boost::system::result<json::object, Status> get(std::string_view ns, std::string_view name);
  json::array list(std::string_view ns, const kube::LabelSelector& selector);
  boost::system::result<json::object, Status> remove(std::string_view ns, std::string_view name);
  // A merge patch of the labels and annotations (the spec of a migration does not change).
  boost::system::result<json::object, Status> patch(std::string_view ns, std::string_view name,
                                                    std::string_view body);

  void step(const Spec& s, const std::string& name) {
    update(s, [&](json::object& status, Clock::time_point started) {
      status["steps"].as_array().push_back(
          json::object{{"name", name}, {"atMs", std::round(ms_since(started) * 10) / 10}});
    });
  }
  void set(const Spec& s, std::string_view key, json::value v) {
    update(s, [&](json::object& status, Clock::time_point) { status[key] = std::move(v); });
  }
  void finish(const Spec& s, const Outcome& outcome);

  void render(base::PrometheusText& out) const;

 private:
  // Changes the status of `s`'s record (given when the migration started), under the lock.
  void update(const Spec& s, const std::function<void(json::object&, Clock::time_point)>& change) {
    std::lock_guard lock(mu_);
    auto it = records_.find(s.ns + "/" + s.name);
    if (it == records_.end()) {
      return;
    }
    change(it->second.object["status"].as_object(), it->second.started);
    it->second.object["metadata"].as_object()["resourceVersion"] = std::to_string(++version_);
  }

  struct Record {
    json::object object;
    Clock::time_point started;
    bool running = true;
  };

  asio::io_context& io_;
  peer::PeerNode& node_;
  Migrations::Options options_;
  KubePodSite site_;
  asio::thread_pool pool_{2};
  // Where the exchanges with other sites run: they read and write checkpoint images, and a
  // write can block for long under dirty-page throttling. On the site's io threads it delayed
  // the peer channel's heartbeats enough for a 100 MiB transfer to get its peer declared Down.
  asio::thread_pool transfers_{2};
  std::shared_ptr<PageServers> page_servers_ = std::make_shared<PageServers>();
  std::weak_ptr<Protection> protection_;  // set once, before any migration starts
  std::mutex criu_mu_;
  std::optional<Criu> criu_;
  CriuFeatures features_;
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;  // by namespace/name
  std::uint64_t version_ = 0;
  std::map<std::string, ModeMetrics> metrics_;  // by mode
  std::uint64_t image_bytes_ = 0;
};

awaitable<void> drive(std::shared_ptr<Core> core, Spec spec);

// ---- the API ----

std::string text_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The fields a Migration has that `o` lacks ("spec.foo"), outside metadata and status.
std::vector<std::string> unknown_fields(const json::object& o) {
  std::vector<std::string> out;
  for (const auto& [key, v] : o) {
    if (key != "apiVersion" && key != "kind" && key != "metadata" && key != "spec" &&
        key != "status") {
      out.push_back(std::string(key));
    }
  }
  if (const json::value* spec = o.if_contains("spec"); spec != nullptr && spec->is_object()) {
    for (const auto& [key, v] : spec->as_object()) {
      if (key != "pod" && key != "to" && key != "mode") {
        out.push_back("spec." + std::string(key));
      }
    }
  }
  return out;
}

void Core::evacuate(const std::string& ns, const std::string& pod, const std::string& to) {
  // Named after the pod (within the 253 characters of a name, with generateName's suffix).
  const json::object body{
      {"apiVersion", "archipel.io/v1"},
      {"kind", "Migration"},
      {"metadata",
       json::object{{"generateName", "evacuate-" + pod.substr(0, 230) + "-"},
                    {"labels", json::object{{"archipel.io/reason", "degraded-links"}}}}},
      {"spec", json::object{{"pod", pod}, {"to", to}, {"mode", "warm"}}}};
  auto created = create(ns, json::serialize(body), true);
  if (!created) {
    spdlog::warn("protection: cannot move {}/{} to {}: {}", ns, pod, to, created.error().message);
  }
}

boost::system::result<json::object, Status> Core::create(std::string_view ns, std::string_view body,
                                                         bool strict) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return Status::bad_request("a Migration must be a JSON object");
  }
  json::object& o = v.as_object();
  if (auto unknown = unknown_fields(o); strict && !unknown.empty()) {
    std::string fields;
    for (const std::string& f : unknown) {
      fields += (fields.empty() ? "" : ", ") + ("unknown field \"" + f + "\"");
    }
    return Status::bad_request(
        "Migration in version \"v1\" cannot be handled as a Migration: strict decoding error: " +
        fields);
  }
  if (const std::string kind = text_at(o, "kind"); !kind.empty() && kind != "Migration") {
    return Status::bad_request("the body is a " + kind + ", not a Migration");
  }
  if (const std::string api = text_at(o, "apiVersion"); !api.empty() && api != "archipel.io/v1") {
    return Status::bad_request("Migration is served as archipel.io/v1, not " + api);
  }
  json::value& meta_value = o["metadata"];
  if (!meta_value.is_object()) {
    meta_value = json::object();
  }
  json::object& meta = meta_value.as_object();
  std::string name = text_at(meta, "name");
  if (name.empty() && !text_at(meta, "generateName").empty()) {
    name = text_at(meta, "generateName") + kube::random_suffix();
  }
  const std::string declared_ns = text_at(meta, "namespace");
  std::vector<kube::StatusCause> causes;
  if (name.empty()) {
    causes.push_back({"FieldValueRequired", "Required value: name or generateName is required",
                      "metadata.name"});
  }
  if (!declared_ns.empty() && declared_ns != ns) {
    return Status::bad_request(
        "the namespace of the provided object does not match the namespace sent on the request");
  }
  const json::value* spec_value = o.if_contains("spec");
  const json::object empty;
  const json::object& spec =
      spec_value != nullptr && spec_value->is_object() ? spec_value->as_object() : empty;
  Spec s;
  s.ns = std::string(ns);
  s.name = name;
  s.pod = text_at(spec, "pod");
  s.to = text_at(spec, "to");
  s.mode_name = text_at(spec, "mode").empty() ? "live" : text_at(spec, "mode");
  if (s.pod.empty()) {
    causes.push_back({"FieldValueRequired", "Required value: the pod to move", "spec.pod"});
  }
  if (s.to.empty()) {
    causes.push_back({"FieldValueRequired", "Required value: the site to move it to", "spec.to"});
  } else if (s.to == options_.site) {
    causes.push_back({"FieldValueInvalid",
                      "Invalid value: \"" + s.to + "\": the pod already runs at " + s.to,
                      "spec.to"});
  } else if (std::find(options_.peers.begin(), options_.peers.end(), s.to) ==
             options_.peers.end()) {
    causes.push_back({"FieldValueNotSupported",
                      "Unsupported value: \"" + s.to + "\": not a site of the federation",
                      "spec.to"});
  }
  if (auto m = parse_mode(s.mode_name)) {
    s.mode = *m;
  } else {
    causes.push_back({"FieldValueNotSupported",
                      "Unsupported value: \"" + s.mode_name +
                          "\": supported values: \"cold\", \"warm\", \"live\", \"app\"",
                      "spec.mode"});
  }
  if (!causes.empty()) {
    return Status::invalid(kGroup, "Migration", name, std::move(causes));
  }

  json::object metadata{{"name", name},
                        {"namespace", s.ns},
                        {"uid", kube::random_uuid()},
                        {"creationTimestamp", rfc3339_now()}};
  for (const char* kept : {"labels", "annotations"}) {
    if (const json::value* given = meta.if_contains(kept); given != nullptr && given->is_object()) {
      metadata[kept] = *given;
    }
  }
  json::object object{{"apiVersion", "archipel.io/v1"},
                      {"kind", "Migration"},
                      {"metadata", std::move(metadata)},
                      {"spec", json::object{{"pod", s.pod}, {"to", s.to}, {"mode", s.mode_name}}},
                      {"status", json::object{{"phase", "Pending"},
                                              {"from", options_.site},
                                              {"startTime", rfc3339_now()},
                                              {"steps", json::array()}}}};
  {
    std::lock_guard lock(mu_);
    const std::string key = s.ns + "/" + name;
    if (records_.contains(key)) {
      return Status::already_exists(kGroup, kResource, name);
    }
    for (const auto& [k, r] : records_) {
      if (r.running && k.starts_with(s.ns + "/") &&
          text_at(r.object.at("spec").as_object(), "pod") == s.pod) {
        return Status::conflict(kGroup, kResource, name,
                                "pod " + s.pod + " is already moving (migration " +
                                    text_at(r.object.at("metadata").as_object(), "name") + ")");
      }
    }
    object["metadata"].as_object()["resourceVersion"] = std::to_string(++version_);
    records_.emplace(key, Record{object, Clock::now(), true});
  }
  asio::co_spawn(transfers_, drive(shared_from_this(), s), asio::detached);
  return object;
}

boost::system::result<json::object, Status> Core::get(std::string_view ns, std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = records_.find(std::string(ns) + "/" + std::string(name));
  if (it == records_.end()) {
    return Status::not_found(kGroup, kResource, name);
  }
  return it->second.object;
}

json::array Core::list(std::string_view ns, const kube::LabelSelector& selector) {
  std::lock_guard lock(mu_);
  json::array items;
  for (const auto& [key, r] : records_) {
    if ((ns.empty() || key.starts_with(std::string(ns) + "/")) && selector.matches(r.object)) {
      items.push_back(r.object);
    }
  }
  return items;
}

boost::system::result<json::object, Status> Core::remove(std::string_view ns,
                                                         std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = records_.find(std::string(ns) + "/" + std::string(name));
  if (it == records_.end()) {
    return Status::not_found(kGroup, kResource, name);
  }
  if (it->second.running) {
    return Status::conflict(kGroup, kResource, name,
                            "the migration is running; delete it once it has finished");
  }
  json::object gone = std::move(it->second.object);
  records_.erase(it);
  return gone;
}

boost::system::result<json::object, Status> Core::patch(std::string_view ns, std::string_view name,
                                                        std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return Status::bad_request("a patch of a Migration must be a JSON object");
  }
  std::lock_guard lock(mu_);
  auto it = records_.find(std::string(ns) + "/" + std::string(name));
  if (it == records_.end()) {
    return Status::not_found(kGroup, kResource, name);
  }
  json::object& current = it->second.object;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "apiVersion" || key == "kind") {
      continue;
    }
    if (key == "spec" && value != current.at("spec")) {
      return Status::invalid(kGroup, "Migration", name,
                             {{"FieldValueForbidden", "Forbidden: field is immutable", "spec"}});
    }
    if (key == "spec") {
      continue;
    }
    if (key != "metadata" || !value.is_object()) {
      return Status::invalid(
          kGroup, "Migration", name,
          {{"FieldValueForbidden",
            "Forbidden: only metadata.labels and metadata.annotations change", std::string(key)}});
    }
    for (const auto& [field, change] : value.as_object()) {
      if (field == "name" || field == "namespace" || field == "resourceVersion") {
        continue;  // sent back as they are
      }
      if ((field != "labels" && field != "annotations") || !change.is_object()) {
        return Status::invalid(kGroup, "Migration", name,
                               {{"FieldValueForbidden",
                                 "Forbidden: only metadata.labels and metadata.annotations change",
                                 "metadata." + std::string(field)}});
      }
      json::value& target = current["metadata"].as_object()[field];
      if (!target.is_object()) {
        target = json::object();
      }
      for (const auto& [k, val] : change.as_object()) {
        if (val.is_null()) {
          target.as_object().erase(k);
        } else if (val.is_string()) {
          target.as_object()[k] = val;
        } else {
          return Status::invalid(kGroup, "Migration", name,
                                 {{"FieldValueInvalid", "Invalid value: must be a string",
                                   "metadata." + std::string(field) + "." + std::string(k)}});
        }
      }
    }
  }
  current["metadata"].as_object()["resourceVersion"] = std::to_string(++version_);
  return current;
}

void Core::finish(const Spec& s, const Outcome& outcome) {
  std::lock_guard lock(mu_);
  ModeMetrics& m = metrics_[s.mode_name];
  auto it = records_.find(s.ns + "/" + s.name);
  if (it == records_.end()) {
    return;
  }
  json::object& status = it->second.object["status"].as_object();
  status["completionTime"] = rfc3339_now();
  status["steps"].as_array().push_back(
      json::object{{"name", outcome ? "Done" : "Failed"},
                   {"atMs", std::round(ms_since(it->second.started) * 10) / 10}});
  if (outcome) {
    status["phase"] = "Succeeded";
    status["downtimeMs"] = std::round(outcome->downtime_ms * 10) / 10;
    status["imageBytes"] = outcome->image_bytes;
    status["message"] = "pod " + s.pod + " runs at " + s.to;
    ++m.succeeded;
    const double seconds = outcome->downtime_ms / 1000;
    for (std::size_t i = 0; i < kDowntimeBuckets.size(); ++i) {
      m.buckets[i] += seconds <= kDowntimeBuckets[i] ? 1 : 0;
    }
    m.downtime_sum += seconds;
    ++m.downtime_count;
    image_bytes_ += outcome->image_bytes;
  } else {
    status["phase"] = "Failed";
    status["message"] = outcome.error();
    ++m.failed;
  }
  it->second.running = false;
  it->second.object["metadata"].as_object()["resourceVersion"] = std::to_string(++version_);
}

void Core::render(base::PrometheusText& out) const {
  std::lock_guard lock(mu_);
  out.family("archipel_migrations_total", "counter",
             "Migrations of pods from this site, by result.");
  for (const auto& [mode, m] : metrics_) {
    out.sample("archipel_migrations_total", {{"mode", mode}, {"result", "succeeded"}}, m.succeeded);
    out.sample("archipel_migrations_total", {{"mode", mode}, {"result", "failed"}}, m.failed);
  }
  out.family("archipel_migration_downtime_seconds", "histogram",
             "From a migrated pod's freeze until it ran at its destination.");
  for (const auto& [mode, m] : metrics_) {
    for (std::size_t i = 0; i < kDowntimeBuckets.size(); ++i) {
      const std::string le = json::serialize(json::value(kDowntimeBuckets[i]));
      out.sample("archipel_migration_downtime_seconds_bucket", {{"mode", mode}, {"le", le}},
                 m.buckets[i]);
    }
    out.sample("archipel_migration_downtime_seconds_bucket", {{"mode", mode}, {"le", "+Inf"}},
               m.downtime_count);
    out.sample("archipel_migration_downtime_seconds_sum", {{"mode", mode}}, m.downtime_sum);
    out.sample("archipel_migration_downtime_seconds_count", {{"mode", mode}}, m.downtime_count);
  }
  out.family("archipel_migration_image_bytes_total", "counter",
             "Checkpoint image bytes sent by migrations from this site.");
  out.sample("archipel_migration_image_bytes_total", {}, image_bytes_);
  std::uint64_t running = 0;
  for (const auto& [key, r] : records_) {
    running += r.running ? 1 : 0;
  }
  out.family("archipel_migrations_running", "gauge", "Migrations from this site under way.");
  out.sample("archipel_migrations_running", {}, running);
}

// ---- the source: drives one migration ----

// The destination answered the offer.
// The destination's stream, once it accepted the pod; whether it holds the offered base.
struct Accepted {
  std::shared_ptr<peer::PeerStream> stream;
  bool standby_base = false;
};

awaitable<boost::system::result<Accepted, std::string>> offer(std::shared_ptr<Core> core, Spec s,
                                                              std::uint64_t standby_sequence) {
  wire::MigrationOffer o;
  o.set_migration(s.ns + "/" + s.name);
  o.set_namespace_(s.ns);
  o.set_pod(s.pod);
  o.set_mode(s.mode_name);
  o.set_standby_sequence(standby_sequence);
  auto opened = co_await core->node().open(
      s.to, kMethod, encode(o),
      std::chrono::duration_cast<std::chrono::milliseconds>(core->options().deadline), false);
  if (!opened) {
    co_return "cannot reach " + s.to + ": " + opened.error().message;
  }
  auto answer = co_await receive_as<wire::OfferAnswer>(**opened, "the destination's answer");
  if (!answer) {
    co_return answer.error();
  }
  if (!answer->ok()) {
    co_return s.to + " refused the pod: " + answer->error();
  }
  co_return Accepted{*opened, standby_sequence != 0 && answer->standby_base()};
}

// The move failed: the pod goes on here. On the pool: it resumes a process and writes to the
// site's Kubernetes.
awaitable<bool> give_back_on(asio::thread_pool& pool, SourceCheckpoint& source) {
  co_return co_await on_pool<bool>(pool, [&] {
    source.give_back();
    return true;
  });
}

awaitable<Outcome> drive_criu(std::shared_ptr<Core> core, Spec s) {
  using Checkpoint = boost::system::result<std::unique_ptr<SourceCheckpoint>, std::string>;
  const std::string back = " (the pod goes on at " + core->options().site + ")";
  auto criu =
      co_await on_pool<boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string>>(
          core->pool(), [&] { return core->criu(); });
  if (!criu) {
    co_return criu.error();
  }
  const Criu& c = *criu->first;
  // Live: pre-copy needs the kernel to track dirty memory; post-copy only userfaultfd.
  MoveMode move = MoveMode::kCold;
  std::string strategy = s.mode == Mode::kWarm ? "checkpoint-then-delta" : "stop-and-copy";
  // Live: pre-copy where the kernel tracks dirty memory (iterative rounds while the pod runs,
  // then a short final dump), otherwise post-copy.
  const bool pre_copy = s.mode == Mode::kLive && criu->second.dirty_tracking;
  if (pre_copy) {
    strategy = "pre-copy";
  } else if (s.mode == Mode::kLive) {
    if (criu->second.lazy_pages) {
      move = MoveMode::kPostCopy;
      strategy = "post-copy";
    } else {
      co_return std::string(
          "live migration needs dirty-memory tracking (pre-copy) or lazy pages (post-copy), "
          "and CRIU has neither here; use mode cold or warm");
    }
  }
  core->set(s, "strategy", json::value(strategy));
  core->set(s, "phase", json::value("Running"));

  const fs::path work = core->options().work / "out" / directory_name(s.ns + "_" + s.name);
  // Warm, to a site that keeps a checkpoint of this protected pod: that checkpoint is the base.
  std::uint64_t standby = 0;
  if (s.mode == Mode::kWarm) {
    standby = co_await on_pool<std::uint64_t>(core->pool(), [&] {
      std::shared_ptr<Protection> protection = core->protection();
      auto linked =
          protection ? protection->link_delivered(s.ns, s.pod, s.to, work / "base") : std::nullopt;
      return linked.value_or(0);
    });
  }
  auto accepted = co_await offer(core, s, standby);
  if (!accepted) {
    co_return accepted.error();
  }
  peer::PeerStream& out = *accepted->stream;
  core->step(s, "Accepted");

  std::uint64_t bytes = 0;
  if (s.mode == Mode::kWarm && accepted->standby_base) {
    core->set(s, "strategy", json::value("standby-then-delta"));
    core->step(s, "BaseAtDestination");
  } else if (s.mode == Mode::kWarm) {
    // The running pod's checkpoint goes first; at the freeze, only what changed since.
    const fs::path base = work / "base";
    auto taken = co_await on_pool<boost::system::result<void, std::string>>(
        core->pool(), [&] { return checkpoint_running_pod(c, core->site(), s.ns, s.pod, base); });
    if (!taken) {
      out.reset({peer::RpcCode::kFailed, taken.error()});
      co_return taken.error();
    }
    core->step(s, "BaseCheckpointed");
    auto sent = co_await send_images(out, base, false);
    if (!sent) {
      co_return "sending the base checkpoint to " + s.to + ": " + sent.error();
    }
    bytes += sent->bytes;
    core->step(s, "BaseTransferred");
  }

  std::uint32_t rounds = 0;
  if (pre_copy) {
    // Rounds until what changed is small or stops shrinking.
    constexpr std::uint32_t kMaxRounds = 6;
    constexpr std::uint64_t kSmall = 4 << 20;
    std::uint64_t previous = UINT64_MAX;
    for (std::uint32_t r = 1; r <= kMaxRounds; ++r) {
      const fs::path round = work / ("pre-" + std::to_string(r));
      std::optional<fs::path> parent;
      if (r > 1) {
        parent = work / ("pre-" + std::to_string(r - 1));
      }
      auto dumped = co_await on_pool<boost::system::result<void, std::string>>(
          core->pool(), [&] { return pre_dump_pod(c, core->site(), s.ns, s.pod, round, parent); });
      if (!dumped) {
        out.reset({peer::RpcCode::kFailed, dumped.error()});
        co_return dumped.error();
      }
      wire::PreCopyRound announce;
      announce.set_round(r);
      if (auto sent = co_await out.send(encode(announce)); !sent) {
        co_return "lost " + s.to + ": " + sent.error().message;
      }
      auto sent = co_await send_images(out, round, false);
      if (!sent) {
        co_return "pre-copying to " + s.to + ": " + sent.error();
      }
      bytes += sent->bytes;
      rounds = r;
      core->step(s, "PreCopied");
      if (sent->bytes < kSmall || sent->bytes * 10 > previous * 9) {
        break;
      }
      previous = sent->bytes;
    }
  }
  if (s.mode == Mode::kLive) {
    wire::PreCopyRound done;  // round 0: no more rounds
    if (auto sent = co_await out.send(encode(done)); !sent) {
      co_return "lost " + s.to + ": " + sent.error().message;
    }
  }

  MoveRequest request;
  request.namespace_name = s.ns;
  request.pod = s.pod;
  request.mode = move;
  request.work = work;
  if (rounds > 0) {
    request.parent = work / ("pre-" + std::to_string(rounds));
  }
  if (move == MoveMode::kPostCopy) {
    // CRIU's page server listens on this site's loopback; the destination reaches it through
    // the peer channel (page_tunnel.hpp).
    request.page_server_address = "127.0.0.1";
    auto port = base::free_loopback_port();
    if (!port) {
      co_return port.error();
    }
    request.page_server_port = *port;
  }
  // Post-copy: the destination may reach the page server until the migration ends here.
  const std::string migration = s.ns + "/" + s.name;
  PageServers* servers = move == MoveMode::kPostCopy ? core->page_servers().get() : nullptr;
  if (servers != nullptr) {
    servers->expose(s.to, migration, request.page_server_port);
  }
  struct Withdraw {
    PageServers* servers;
    const std::string& to;
    const std::string& migration;
    ~Withdraw() {
      if (servers != nullptr) {
        servers->withdraw(to, migration);
      }
    }
  } withdraw{servers, s.to, migration};
  const auto freeze = Clock::now();
  auto checkpoint = co_await on_pool<Checkpoint>(
      core->pool(), [&] { return checkpoint_pod(c, core->site(), request, s.to); });
  if (!checkpoint) {
    out.reset({peer::RpcCode::kFailed, checkpoint.error()});
    co_return checkpoint.error();
  }
  // Lambdas below capture by reference: what they name lives in this coroutine's frame while
  // they run (and GCC 12 mishandles captured copies in coroutines: shared_ptr counts went
  // wrong under ASan).
  std::unique_ptr<SourceCheckpoint> source = std::move(*checkpoint);
  core->step(s, "Checkpointed");

  wire::Checkpointed info;
  info.set_pod(json::serialize(source->pod()));
  info.set_container(source->container());
  info.set_source_log(source->log().string());
  info.set_post_copy(move == MoveMode::kPostCopy);
  if (auto sent = co_await out.send(encode(info)); !sent) {
    co_await give_back_on(core->pool(), *source);
    co_return "lost " + s.to + ": " + sent.error().message + back;
  }
  // Warm: what changed since the base checkpoint, block by block.
  const fs::path base = s.mode == Mode::kWarm ? work / "base" : fs::path();
  auto images = co_await send_images(out, source->images(), false, base);
  if (!images) {
    co_await give_back_on(core->pool(), *source);
    co_return "sending the images to " + s.to + ": " + images.error() + back;
  }
  bytes += images->bytes;
  const double frozen_until_transferred = ms_since(freeze);
  core->step(s, "Transferred");

  auto outcome = co_await receive_as<wire::RestoreOutcome>(out, "the restore's outcome");
  if (!outcome) {
    co_await give_back_on(core->pool(), *source);
    co_return outcome.error() + back;
  }
  if (!outcome->restored()) {
    if (outcome->give_back()) {
      co_await give_back_on(core->pool(), *source);
      wire::Decision d;
      d.set_given_back(true);
      (void)co_await out.send(encode(d));
      auto last = co_await receive_as<wire::RestoreOutcome>(out, "the restore's error");
      const std::string why = last ? last->error() : last.error();
      co_return "restoring at " + s.to + ": " + why + back;
    }
    co_await give_back_on(core->pool(), *source);
    co_return "restoring at " + s.to + ": " + outcome->error() + back;
  }
  core->step(s, move == MoveMode::kPostCopy ? "MemoryComplete" : "Restored");
  // Committed once both sites know: the destination keeps the pod when it reads the commit,
  // this site removes its copy when the destination confirms. Without the confirmation the
  // pod goes on here (and may run at the destination too: never nowhere).
  wire::Decision commit;
  commit.set_commit(true);
  if (auto sent = co_await out.send(encode(commit)); !sent) {
    co_await give_back_on(core->pool(), *source);
    co_return "lost " + s.to + " before the commit: " + sent.error().message + back;
  }
  auto confirmed = co_await receive_as<wire::Decision>(out, "the commit's confirmation");
  if (!confirmed || !confirmed->commit()) {
    co_await give_back_on(core->pool(), *source);
    const std::string why =
        confirmed ? std::string("the destination did not confirm the commit") : confirmed.error();
    co_return why + back + "; it may run at " + s.to + " too";
  }
  auto completed = co_await on_pool<boost::system::result<void, std::string>>(
      core->pool(), [&] { return source->complete(std::chrono::seconds(60)); });
  if (!completed) {
    co_return "moved to " + s.to + ", but " + completed.error();
  }
  core->step(s, "SourceRemoved");
  co_return Done{frozen_until_transferred + outcome->restored_ms(), bytes};
}

// The application's state moves: read at the source, which then stops (so that nothing changes
// it, and so that on one machine the destination's copy alone answers on the port), handed to
// a copy started afresh at the destination. If that fails, the source's pod starts again here
// with the state.
awaitable<Outcome> drive_app(std::shared_ptr<Core> core, Spec s) {
  core->set(s, "strategy", json::value("application-state"));
  core->set(s, "phase", json::value("Running"));
  using PodResult = boost::system::result<json::object, std::string>;
  auto pod =
      co_await on_pool<PodResult>(core->pool(), [&] { return core->site().get_pod(s.ns, s.pod); });
  if (!pod) {
    co_return "pod " + s.ns + "/" + s.pod + " at " + core->options().site + ": " + pod.error();
  }
  auto app = app_endpoint(*pod);
  if (!app) {
    co_return app.error();
  }
  auto accepted = co_await offer(core, s, 0);
  if (!accepted) {
    co_return accepted.error();
  }
  peer::PeerStream& out = *accepted->stream;
  core->step(s, "Accepted");

  const auto freeze = Clock::now();
  using StateResult = boost::system::result<std::string, std::string>;
  auto state = co_await on_pool<StateResult>(
      core->pool(), [&] { return take_app_state(core->site(), s.ns, s.pod, app->port); });
  if (!state) {
    out.reset({peer::RpcCode::kFailed, state.error()});
    co_return state.error() + " (the pod goes on at " + core->options().site + ")";
  }
  core->step(s, "StateTaken");
  json::object created = destination_pod(*pod, core->options().site);
  kube::metadata(created)["annotations"].as_object().erase(kRestoringAnnotation);
  wire::AppPod request;
  request.set_pod(json::serialize(created));
  request.set_port(app->port);
  request.set_state(*state);
  std::string why;
  if (auto sent = co_await out.send(encode(request), true); !sent) {
    why = "lost " + s.to + " with the state: " + sent.error().message;
  } else {
    auto outcome = co_await receive_as<wire::RestoreOutcome>(out, "the restore's outcome");
    if (!outcome) {
      why = outcome.error();
    } else if (!outcome->restored()) {
      why = "restoring the state at " + s.to + ": " + outcome->error();
    }
  }
  if (why.empty()) {
    core->step(s, "Restored");
    co_return Done{ms_since(freeze), request.state().size()};
  }
  auto back = co_await on_pool<boost::system::result<void, std::string>>(
      core->pool(), [&] { return give_app_back(core->site(), *pod, *state, app->port); });
  if (back) {
    co_return why + " (the pod goes on at " + core->options().site + ")";
  }
  co_return why + "; and restarting it at " + core->options().site + " failed: " + back.error();
}

awaitable<void> drive(std::shared_ptr<Core> core, Spec spec) {
  // (No co_await inside ?: — GCC 12 destroys the temporaries of such expressions twice.)
  Outcome outcome;
  if (spec.mode == Mode::kApp) {
    outcome = co_await drive_app(core, spec);
  } else {
    outcome = co_await drive_criu(core, spec);
  }
  if (outcome) {
    spdlog::info("migration {}/{}: pod {} moved to {} ({}), downtime {:.1f} ms", spec.ns, spec.name,
                 spec.pod, spec.to, spec.mode_name, outcome->downtime_ms);
  } else {
    spdlog::warn("migration {}/{}: pod {} did not move to {}: {}", spec.ns, spec.name, spec.pod,
                 spec.to, outcome.error());
  }
  core->finish(spec, outcome);
}

// ---- the destination: receives one pod ----

awaitable<void> answer(peer::PeerStream& stream, bool ok, const std::string& error,
                       bool standby_base = false) {
  wire::OfferAnswer a;
  a.set_ok(ok);
  a.set_error(error);
  a.set_standby_base(standby_base);
  (void)co_await stream.send(encode(a), !ok);
}

awaitable<void> send_outcome(peer::PeerStream& stream, bool restored, const std::string& error,
                             double restored_ms, bool last) {
  wire::RestoreOutcome o;
  o.set_restored(restored);
  o.set_error(error);
  o.set_restored_ms(restored_ms);
  (void)co_await stream.send(encode(o), last);
}

// Asks the source to take the pod back, and waits until it has (or is gone).
awaitable<void> ask_give_back(std::shared_ptr<peer::PeerStream> stream) {
  wire::RestoreOutcome o;
  o.set_give_back(true);
  if (auto sent = co_await stream->send(encode(o)); sent) {
    (void)co_await receive_as<wire::Decision>(*stream, "the pod given back");
  }
}

awaitable<void> receive_criu(std::shared_ptr<Core> core, std::shared_ptr<peer::PeerStream> stream,
                             wire::MigrationOffer offer) {
  const std::string where = offer.namespace_() + "/" + offer.pod();
  auto criu =
      co_await on_pool<boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string>>(
          core->pool(), [&] { return core->criu(); });
  if (!criu) {
    co_await answer(*stream, false, criu.error());
    co_return;
  }
  const fs::path work =
      core->options().work / "in" / directory_name(stream->peer() + "_" + offer.migration());
  std::error_code ec;
  fs::remove_all(work, ec);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{work};
  // Warm: the checkpoint of this pod kept here for failover, when it is the one offered, is the
  // base (linked now: the protection may drop it once the pod is moving).
  bool standby_base = false;
  if (offer.mode() == "warm" && offer.standby_sequence() != 0) {
    standby_base = co_await on_pool<bool>(core->pool(), [&] {
      std::shared_ptr<Protection> protection = core->protection();
      return protection && protection->link_standby(stream->peer(), offer.namespace_(), offer.pod(),
                                                    offer.standby_sequence(), work / "base");
    });
  }
  co_await answer(*stream, true, {}, standby_base);
  if (offer.mode() == "warm" && !standby_base) {
    const fs::path base = work / "base";
    if (auto got = co_await receive_images(*stream, base, false); !got) {
      co_return;  // the source knows
    }
  }
  std::uint32_t rounds = 0;
  if (offer.mode() == "live") {
    for (;;) {
      auto round = co_await receive_as<wire::PreCopyRound>(*stream, "a pre-copy round");
      if (!round) {
        co_return;
      }
      if (round->round() == 0) {
        break;
      }
      if (round->round() != rounds + 1) {
        stream->reset({peer::RpcCode::kProtocol, "pre-copy rounds out of order"});
        co_return;
      }
      rounds = round->round();
      const fs::path dir = work / ("pre-" + std::to_string(rounds));
      if (auto got = co_await receive_images(*stream, dir, false); !got) {
        co_return;
      }
      if (rounds > 1) {  // as CRIU links them at the source
        fs::create_directory_symlink("../pre-" + std::to_string(rounds - 1), dir / "parent", ec);
      }
    }
  }
  auto info = co_await receive_as<wire::Checkpointed>(*stream, "the checkpoint");
  if (!info) {
    co_return;
  }
  const fs::path images = work / "images";
  const fs::path base = offer.mode() == "warm" ? work / "base" : fs::path();
  auto received = co_await receive_images(*stream, images, false, base);
  if (!received) {
    co_return;
  }
  if (rounds > 0) {
    fs::create_directory_symlink("../pre-" + std::to_string(rounds), images / "parent", ec);
  }
  boost::system::error_code jec;
  json::value pod = json::parse(info->pod(), jec);
  if (jec || !pod.is_object() ||
      kube::meta_string(pod.as_object(), "namespace") != offer.namespace_() ||
      kube::meta_string(pod.as_object(), "name") != offer.pod()) {
    co_await send_outcome(*stream, false, "the checkpointed pod is not " + where, 0, true);
    co_return;
  }
  MoveRequest request;
  request.namespace_name = offer.namespace_();
  request.pod = offer.pod();
  request.mode = info->post_copy() ? MoveMode::kPostCopy : MoveMode::kCold;
  asio::io_context& io = core->io();
  std::unique_ptr<PageTunnel> pages;  // post-copy: the source's memory, through the peer channel
  if (info->post_copy()) {
    auto tunnel = PageTunnel::open(
        io, core->node(), stream->peer(), offer.migration(),
        std::chrono::duration_cast<std::chrono::milliseconds>(core->options().deadline));
    if (!tunnel) {
      co_await send_outcome(*stream, false, tunnel.error(), 0, true);
      co_return;
    }
    pages = std::move(*tunnel);
    request.page_server_address = "127.0.0.1";
    request.page_server_port = pages->port();
  }
  auto restored = co_await on_pool<boost::system::result<Restored, std::string>>(core->pool(), [&] {
    return restore_pod(*criu->first, core->site(), pod.as_object(), info->container(),
                       info->source_log(), images, request,
                       [&] { asio::co_spawn(io, ask_give_back(stream), asio::use_future).get(); });
  });
  if (!restored) {
    co_await send_outcome(*stream, false, restored.error(), 0, true);
    co_return;
  }
  co_await send_outcome(*stream, true, {}, restored->restored_ms, false);
  auto decision = co_await receive_as<wire::Decision>(*stream, "the commit");
  if (decision && decision->commit()) {
    wire::Decision confirm;
    confirm.set_commit(true);
    (void)co_await stream->send(encode(confirm), true);
    spdlog::info("migration {} from {}: pod {} runs here", offer.migration(), stream->peer(),
                 where);
    co_return;
  }
  // No commit: the source keeps the pod; this copy goes.
  spdlog::warn("migration {} from {}: no commit ({}); removing the restored copy of {}",
               offer.migration(), stream->peer(),
               decision ? "the source gave up" : decision.error(), where);
  co_await on_pool<bool>(core->pool(), [&] {
    kill_tree(restored->pid);
    return core->site().delete_pod(offer.namespace_(), offer.pod()).has_value();
  });
}

awaitable<void> receive_app(std::shared_ptr<Core> core, std::shared_ptr<peer::PeerStream> stream,
                            wire::MigrationOffer offer) {
  co_await answer(*stream, true, {});
  auto request = co_await receive_as<wire::AppPod>(*stream, "the pod");
  if (!request) {
    co_return;
  }
  const auto begin = Clock::now();
  boost::system::error_code jec;
  json::value pod = json::parse(request->pod(), jec);
  std::string error;
  if (jec || !pod.is_object() ||
      kube::meta_string(pod.as_object(), "namespace") != offer.namespace_() ||
      kube::meta_string(pod.as_object(), "name") != offer.pod()) {
    error = "the pod sent is not " + offer.namespace_() + "/" + offer.pod();
  } else {
    const auto port = static_cast<std::uint16_t>(request->port());
    auto restored = co_await on_pool<boost::system::result<void, std::string>>(core->pool(), [&] {
      auto started = start_app_copy(core->site(), pod.as_object(), port, std::chrono::seconds(30));
      if (!started) {
        return started;
      }
      auto put = put_app_state(port, request->state());
      if (!put) {
        (void)core->site().delete_pod(offer.namespace_(), offer.pod());
      }
      return put;
    });
    if (!restored) {
      error = restored.error();
    }
  }
  co_await send_outcome(*stream, error.empty(), error, ms_since(begin), true);
}

awaitable<void> receive(std::weak_ptr<Core> weak, std::shared_ptr<peer::PeerStream> stream,
                        peer::Bytes request) {
  std::shared_ptr<Core> core = weak.lock();
  if (!core) {
    stream->reset({peer::RpcCode::kFailed, "the site is stopping"});
    co_return;
  }
  wire::MigrationOffer offer;
  const bool parsed = offer.ParseFromArray(request.data(), static_cast<int>(request.size())) &&
                      !offer.namespace_().empty() && !offer.pod().empty();
  const auto mode = parse_mode(offer.mode());
  if (!parsed) {
    co_await answer(*stream, false, "a malformed migration offer");
  } else if (!mode) {
    co_await answer(*stream, false, "unknown mode \"" + offer.mode() + "\"");
  } else {
    spdlog::info("migration {} from {}: receiving pod {}/{} ({})", offer.migration(),
                 stream->peer(), offer.namespace_(), offer.pod(), offer.mode());
    if (*mode == Mode::kApp) {
      co_await asio::co_spawn(core->transfers(), receive_app(core, stream, std::move(offer)),
                              asio::use_awaitable);
    } else {
      co_await asio::co_spawn(core->transfers(), receive_criu(core, stream, std::move(offer)),
                              asio::use_awaitable);
    }
  }
  // Until the source lets go: a stream dropped while the other side has not ended is reset,
  // and the reset would overtake this side's last answer.
  for (;;) {
    auto more = co_await stream->receive();
    if (!more || !*more) {
      break;
    }
  }
}

// ---- the service ----

json::object column(std::string name, std::string type, std::string description) {
  return json::object{{"name", std::move(name)},
                      {"type", std::move(type)},
                      {"format", ""},
                      {"description", std::move(description)},
                      {"priority", 0}};
}

// How long ago the migration was created, as kubectl shows ages.
std::string age(const json::object& migration) {
  const std::string created = text_at(migration.at("metadata").as_object(), "creationTimestamp");
  std::tm tm{};
  if (strptime(created.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) {
    return "<unknown>";
  }
  const auto since =
      std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(timegm(&tm));
  return kube::human_duration(std::chrono::duration_cast<std::chrono::seconds>(since));
}

json::object table(const json::array& items) {
  json::array rows;
  for (const json::value& item : items) {
    const json::object& o = item.as_object();
    const json::object& spec = o.at("spec").as_object();
    const json::object& status = o.at("status").as_object();
    const json::value* downtime = status.if_contains("downtimeMs");
    std::string down = "";
    if (downtime != nullptr && downtime->is_number()) {
      down = std::to_string(static_cast<long long>(std::llround(downtime->to_number<double>()))) +
             "ms";
    }
    rows.push_back(json::object{
        {"cells",
         json::array{o.at("metadata").at("name"), json::value(text_at(spec, "pod")),
                     json::value(text_at(status, "from")), json::value(text_at(spec, "to")),
                     json::value(text_at(spec, "mode")), json::value(text_at(status, "phase")),
                     json::value(down), json::value(age(o))}},
        {"object", json::object{{"kind", "PartialObjectMetadata"},
                                {"apiVersion", "meta.k8s.io/v1"},
                                {"metadata", o.at("metadata")}}}});
  }
  return json::object{
      {"kind", "Table"},
      {"apiVersion", "meta.k8s.io/v1"},
      {"metadata", json::object()},
      {"columnDefinitions",
       json::array{column("Name", "string", "The migration."),
                   column("Pod", "string", "The pod it moves."),
                   column("From", "string", "The site the pod ran at."),
                   column("To", "string", "The site it moves to."),
                   column("Mode", "string", "cold, warm, live or app."),
                   column("Phase", "string", "Pending, Running, Succeeded or Failed."),
                   column("Downtime", "string", "From the freeze until the pod ran again."),
                   column("Age", "string", "Since the migration was created.")}},
      {"rows", std::move(rows)}};
}

class Service final : public Migrations {
 public:
  Service(asio::io_context& io, peer::PeerNode& node, KubeCall local, Options options)
      : core_(std::make_shared<Core>(io, node, std::move(local), std::move(options))) {
    // CRIU's own check takes a fifth of a second: done now, not in a migration's first step.
    asio::post(core_->pool(), [core = core_] { (void)core->criu(); });
    Protection::Options protect;
    protect.site = core_->options().site;
    protect.work = core_->options().work;
    protect.budget = core_->options().protection;
    protect.evacuate = [weak = std::weak_ptr<Core>(core_)](
                           const std::string& ns, const std::string& pod, const std::string& to) {
      if (auto core = weak.lock()) {
        core->evacuate(ns, pod, to);
      }
    };
    protection_ = Protection::start(
        io, node, core_->site(), core_->pool(), core_->transfers(),
        [core = core_.get()] { return core->criu(); }, std::move(protect), core_);
    core_->set_protection(protection_);
    serve_pages(io, node, core_->page_servers());
    std::weak_ptr<Core> weak = core_;
    node.handle(kMethod, [weak](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
      return receive(weak, std::move(stream), std::move(request));
    });
  }

  boost::system::result<Reply, Status> handle(std::string_view method, std::string_view ns,
                                              std::string_view name, std::string_view query,
                                              std::string_view body, bool as_table) override {
    if (method == "GET" && name.empty()) {
      auto selector = kube::LabelSelector::parse(query_value(query, "labelSelector"));
      if (!selector) {
        return Status::bad_request(selector.error());
      }
      json::array items = core_->list(ns, *selector);
      if (as_table) {
        return Reply{200, json::serialize(table(items))};
      }
      return Reply{200, json::serialize(json::object{{"apiVersion", "archipel.io/v1"},
                                                     {"kind", "MigrationList"},
                                                     {"metadata", json::object{}},
                                                     {"items", std::move(items)}})};
    }
    if (ns.empty()) {
      return Status::method_not_allowed("migrations are namespaced: name the namespace");
    }
    if (method == "GET") {
      auto o = core_->get(ns, name);
      if (!o) {
        return o.error();
      }
      return Reply{
          200, json::serialize(as_table ? json::value(table(json::array{*o})) : json::value(*o))};
    }
    if (method == "POST" && name.empty()) {
      auto o = core_->create(ns, body, query.find("fieldValidation=Strict") != query.npos);
      if (!o) {
        return o.error();
      }
      return Reply{201, json::serialize(*o)};
    }
    if (method == "PATCH" && !name.empty()) {
      auto o = core_->patch(ns, name, body);
      if (!o) {
        return o.error();
      }
      return Reply{200, json::serialize(*o)};
    }
    if (method == "DELETE" && !name.empty()) {
      auto o = core_->remove(ns, name);
      if (!o) {
        return o.error();
      }
      return Reply{200, json::serialize(*o)};
    }
    return Status::method_not_allowed(std::string(method) + " is not served on migrations");
  }

  ~Service() override { protection_->stop(); }

  void render_metrics(base::PrometheusText& out) const override {
    core_->render(out);
    protection_->render_metrics(out);
  }

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<Protection> protection_;
};

}  // namespace

std::unique_ptr<Migrations> Migrations::start(asio::io_context& io, peer::PeerNode& node,
                                              KubeCall local, Options options) {
  return std::make_unique<Service>(io, node, std::move(local), std::move(options));
}

}  // namespace archipel::migrate
