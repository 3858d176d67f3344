#include "migrate/protection.hpp"

#include "archipel/dsl/scope.hpp"
#include "archipel/kube/object.hpp"
#include "archipel/migrate/images.hpp"
#include "archipel/migrate/pod_move.hpp"
#include "migrate.pb.h"
#include "migrate/async.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <vector>

namespace archipel::migrate {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

constexpr const char* kCheckpointMethod = "migrate.checkpoint";
constexpr const char* kOwnedMethod = "migrate.owned";

std::string annotation(const json::object& pod, const char* key) {
  const json::value* v = kube::find_path(pod, {"metadata", "annotations", key});
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::uint64_t epoch_of(const json::object& pod) {
  const std::string e = annotation(pod, kEpochAnnotation);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), v);
  return ec == std::errc() && end == e.data() + e.size() && v > 0 ? v : 1;
}

// The sites a failover scope names, in the order written ("nantes | rennes": nantes, rennes).
std::vector<std::string> failover_sites(const std::string& scope) {
  std::vector<std::string> out;
  auto parsed = dsl::parse_scope(scope);
  if (!parsed || parsed->binding_count() == 0) {
    return out;
  }
  // Depth first, left to right.
  std::function<void(const dsl::ScopeExpr&)> walk = [&](const dsl::ScopeExpr& e) {
    if (e.kind() == dsl::ScopeExpr::Kind::kSite) {
      const std::string name(e.site_name());
      if (std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
      return;
    }
    if (e.kind() == dsl::ScopeExpr::Kind::kAllOf || e.kind() == dsl::ScopeExpr::Kind::kAnyOf) {
      for (const dsl::ScopeExpr operand : e.operands()) {
        walk(operand);
      }
    }
  };
  walk(parsed->binding(0).expr);
  return out;
}

// A pod's one container, running: its name ("" when not so).
std::string running_container(const json::object& pod) {
  boost::system::error_code ec;
  const json::value v(pod);
  const json::value* statuses = v.find_pointer("/status/containerStatuses", ec);
  if (statuses == nullptr || !statuses->is_array() || statuses->as_array().size() != 1) {
    return {};
  }
  const json::value& cs = statuses->as_array().front();
  const json::value* running = cs.find_pointer("/state/running", ec);
  const json::value* name = cs.is_object() ? cs.as_object().if_contains("name") : nullptr;
  if (running == nullptr || name == nullptr || !name->is_string()) {
    return {};
  }
  return std::string(name->as_string());
}

std::string key_of(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

std::string directory_of(const std::string& key) {
  std::string s = key;
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

// Replaces `to` by `from` (a directory).
void rotate(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::rename(from, to, ec);
}

// Hard links of the images in `from` into `to` (a new directory): the images of a checkpoint
// are never written again once taken, and a link costs no copy.
bool link_images(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::create_directories(to.parent_path(), ec);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::create_hard_links, ec);
  if (ec) {
    spdlog::warn("protection: linking {} into {}: {}", from.string(), to.string(), ec.message());
    fs::remove_all(to, ec);
    return false;
  }
  return true;
}

// A pod this site runs and protects.
struct Protected {
  std::string ns;
  std::string name;
  json::object pod;
  std::string container;
  std::uint64_t epoch = 1;
  std::vector<std::string> failover;
  CheckpointPacer pacer{CheckpointPacer::Budget{}};
  Clock::time_point due;
  std::uint64_t sequence = 0;                      // of the last checkpoint taken
  std::map<std::string, std::uint64_t> delivered;  // by failover site: its newest checkpoint
  bool busy = false;
  bool seen = true;       // in the last listing
  bool evacuate = false;  // archipel.io/on-degraded: evacuate
};

// The newest checkpoint of another site's pod, kept here.
struct Standby {
  std::string owner;
  std::string ns;
  std::string name;
  json::object pod;
  std::string container;
  std::string source_log;
  std::uint64_t epoch = 1;
  std::uint64_t sequence = 0;
  std::vector<std::string> failover;
  bool restoring = false;
  Clock::time_point retry_after{};
};

class Impl final : public Protection, public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, peer::PeerNode& node, KubePodSite& site, asio::thread_pool& pool,
       asio::thread_pool& transfers, CriuAccess criu, Options options,
       std::shared_ptr<void> keepalive)
      : io_(io),
        node_(node),
        site_(site),
        pool_(pool),
        transfers_(transfers),
        criu_(std::move(criu)),
        options_(std::move(options)),
        keepalive_(std::move(keepalive)) {}

  void begin() {
    std::weak_ptr<Impl> weak = shared_from_this();
    node_.handle(kCheckpointMethod,
                 [weak](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
                   return serve_checkpoint(weak, std::move(stream), std::move(request));
                 });
    node_.handle(kOwnedMethod,
                 [weak](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
                   return serve_owned(weak, std::move(stream), std::move(request));
                 });
    asio::co_spawn(io_, loop(shared_from_this()), asio::detached);
  }

  void stop() override {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }

  std::optional<std::uint64_t> link_delivered(const std::string& ns, const std::string& name,
                                              const std::string& target,
                                              const fs::path& to) override {
    const std::string key = key_of(ns, name);
    // Under the lock, and not while a checkpoint is under way: `current` stays as it is.
    std::lock_guard lock(mu_);
    auto it = protected_.find(key);
    if (it == protected_.end() || it->second.busy || it->second.sequence == 0) {
      return std::nullopt;
    }
    auto held = it->second.delivered.find(target);
    if (held == it->second.delivered.end() || held->second != it->second.sequence ||
        !link_images(options_.work / "protect" / directory_of(key) / "current", to)) {
      return std::nullopt;
    }
    return it->second.sequence;
  }

  bool link_standby(const std::string& owner, const std::string& ns, const std::string& name,
                    std::uint64_t sequence, const fs::path& to) override {
    const std::string key = key_of(ns, name);
    std::lock_guard lock(mu_);  // a received checkpoint replaces `current` under it
    auto it = standby_.find(key);
    return it != standby_.end() && it->second.owner == owner && !it->second.restoring &&
           it->second.sequence == sequence &&
           link_images(options_.work / "standby" / directory_of(key) / "current", to);
  }

  void render_metrics(base::PrometheusText& out) const override {
    std::lock_guard lock(mu_);
    out.family("archipel_protection_checkpoints_total", "counter",
               "Checkpoints of protected pods taken here and shipped to failover sites.");
    out.sample("archipel_protection_checkpoints_total", {}, checkpoints_);
    out.family("archipel_protection_checkpoint_bytes_total", "counter",
               "Checkpoint bytes sent to failover sites.");
    out.sample("archipel_protection_checkpoint_bytes_total", {}, checkpoint_bytes_);
    out.family("archipel_protection_frozen_seconds_total", "counter",
               "Time protected pods spent frozen by their checkpoints.");
    out.sample("archipel_protection_frozen_seconds_total", {}, frozen_seconds_);
    out.family("archipel_protection_interval_seconds", "gauge",
               "The pacer's interval between two checkpoints of a protected pod.");
    for (const auto& [key, p] : protected_) {
      out.sample("archipel_protection_interval_seconds", {{"namespace", p.ns}, {"pod", p.name}},
                 std::chrono::duration<double>(p.pacer.interval()).count());
    }
    out.family("archipel_standby_checkpoints", "gauge",
               "Checkpoints of other sites' pods kept here for failover.");
    out.sample("archipel_standby_checkpoints", {}, static_cast<std::uint64_t>(standby_.size()));
    out.family("archipel_failovers_total", "counter",
               "Pods restored here because their site was declared Down.");
    out.sample("archipel_failovers_total", {}, failovers_);
    out.family("archipel_fenced_total", "counter",
               "Copies of pods stopped here because another site runs them at a newer epoch.");
    out.sample("archipel_fenced_total", {}, fenced_);
  }

 private:
  // ---- the loop: peer states every tick, the site's pods every scan ----

  static awaitable<void> loop(std::shared_ptr<Impl> self) {
    asio::steady_timer timer(self->io_);
    auto next_scan = Clock::now();
    bool scanning = false;
    for (;;) {
      timer.expires_after(self->options_.tick);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      {
        std::lock_guard lock(self->mu_);
        if (self->stopped_) {
          co_return;
        }
      }
      self->watch_peers();
      if (Clock::now() >= next_scan && !scanning) {
        scanning = true;
        co_await self->scan();
        scanning = false;
        next_scan = Clock::now() + self->options_.scan;
      }
    }
  }

  struct PeerView {
    peer::PeerState state = peer::PeerState::kDown;
    bool connected = false;
  };

  std::map<std::string, PeerView> peers() const {
    std::map<std::string, PeerView> out;
    for (const peer::PeerStatus& s : node_.status()) {
      out[s.name] = {s.state, s.connected};
    }
    return out;
  }

  static bool usable(const PeerView& v) { return v.connected && v.state != peer::PeerState::kDown; }

  // Links that came back: announce what runs here. Owners declared Down: fail over.
  void watch_peers() {
    const auto view = peers();
    std::vector<std::string> returned;
    std::vector<std::string> restore;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, v] : view) {
        // What runs here is known after the first scan: announcing before would be wrong.
        const bool up = usable(v) && scanned_;
        auto [it, fresh] = up_.try_emplace(name, false);
        if (up && !it->second) {
          returned.push_back(name);
        }
        it->second = up;
      }
      for (auto& [key, s] : standby_) {
        if (s.restoring || Clock::now() < s.retry_after) {
          continue;
        }
        auto owner = view.find(s.owner);
        if (owner == view.end() || owner->second.state != peer::PeerState::kDown) {
          continue;
        }
        // The first failover site, in the scope's order, that is not Down restores it.
        bool mine = false;
        for (const std::string& f : s.failover) {
          if (f == s.owner) {
            continue;
          }
          if (f == options_.site) {
            mine = true;
            break;
          }
          auto other = view.find(f);
          if (other != view.end() && other->second.state != peer::PeerState::kDown) {
            break;
          }
        }
        if (mine) {
          s.restoring = true;
          restore.push_back(key);
        }
      }
    }
    for (const auto& [ns, name, to] : evacuations(view)) {
      spdlog::warn("protection: the links of {} degrade: moving {}/{} to {}", options_.site, ns,
                   name, to);
      options_.evacuate(ns, name, to);
    }
    for (const std::string& peer : returned) {
      asio::co_spawn(io_, announce(shared_from_this(), peer), asio::detached);
    }
    for (const std::string& key : restore) {
      asio::co_spawn(io_, fail_over(shared_from_this(), key), asio::detached);
    }
  }

  // The pods to move out now, and where: when at least half of the peers have been Suspected
  // or Down for `degraded_for`, each pod whose policy says so goes to the first of its failover
  // sites still Reachable (once; again after kEvacuationRetry if it is still here).
  struct Evacuation {
    std::string ns, name, to;
  };
  std::vector<Evacuation> evacuations(const std::map<std::string, PeerView>& view) {
    constexpr auto kEvacuationRetry = std::chrono::seconds(10);
    std::vector<Evacuation> out;
    std::size_t degraded = 0;
    for (const auto& [name, v] : view) {
      if (!v.connected || v.state != peer::PeerState::kReachable) {
        ++degraded;
      }
    }
    const auto now = Clock::now();
    std::lock_guard lock(mu_);
    if (degraded == 0 || degraded * 2 < view.size()) {
      degraded_since_.reset();
      return out;
    }
    if (!degraded_since_) {
      degraded_since_ = now;
    }
    if (now - *degraded_since_ < options_.degraded_for || !options_.evacuate) {
      return out;
    }
    std::erase_if(evacuated_, [&](const auto& e) { return now - e.second >= kEvacuationRetry; });
    for (auto& [key, p] : protected_) {
      auto last = evacuated_.find(key);
      if (!p.evacuate || p.busy || last != evacuated_.end()) {
        continue;
      }
      for (const std::string& f : p.failover) {
        auto v = view.find(f);
        if (f != options_.site && v != view.end() && v->second.connected &&
            v->second.state == peer::PeerState::kReachable) {
          evacuated_[key] = now;
          out.push_back({p.ns, p.name, f});
          break;
        }
      }
    }
    return out;
  }

  // Lists the site's pods; starts protecting the protected ones, checkpoints those due.
  awaitable<void> scan() {
    using Pods = boost::system::result<std::vector<json::object>, std::string>;
    auto pods = co_await on_pool<Pods>(pool_, [&] { return site_.list_pods(); });
    if (!pods) {
      spdlog::debug("protection: cannot list pods: {}", pods.error());
      co_return;
    }
    std::vector<std::string> due;
    std::vector<Protected> withdrawn;
    {
      std::lock_guard lock(mu_);
      for (auto& [key, p] : protected_) {
        p.seen = false;
      }
      for (json::object& pod : *pods) {
        const std::string scope = annotation(pod, kFailoverAnnotation);
        const std::string container = running_container(pod);
        if (scope.empty() || annotation(pod, kMigrateAnnotation) != "criu" || container.empty() ||
            !annotation(pod, kRestoringAnnotation).empty() ||
            !annotation(pod, kMigratingToAnnotation).empty() ||
            kube::find_path(pod, {"metadata", "deletionTimestamp"}) != nullptr) {
          continue;
        }
        const std::string ns(kube::meta_string(pod, "namespace"));
        const std::string name(kube::meta_string(pod, "name"));
        auto [it, fresh] = protected_.try_emplace(
            key_of(ns, name),
            Protected{.ns = ns, .name = name, .pacer = CheckpointPacer(options_.budget)});
        Protected& p = it->second;
        if (fresh) {
          p.due = Clock::now();
          spdlog::info("protection: {}/{} is protected by {}", ns, name, scope);
        }
        p.seen = true;
        p.container = container;
        p.epoch = epoch_of(pod);
        p.failover = failover_sites(scope);
        p.evacuate = annotation(pod, kOnDegradedAnnotation) == "evacuate";
        p.pod = std::move(pod);
        if (!p.busy && Clock::now() >= p.due) {
          p.busy = true;
          due.push_back(it->first);
        }
      }
      for (auto it = protected_.begin(); it != protected_.end();) {
        if (it->second.seen || it->second.busy) {
          ++it;
          continue;
        }
        withdrawn.push_back(std::move(it->second));
        it = protected_.erase(it);
      }
      scanned_ = true;
    }
    for (const std::string& key : due) {
      asio::co_spawn(transfers_, protect(shared_from_this(), key), asio::detached);
    }
    for (Protected& p : withdrawn) {
      std::error_code ec;
      fs::remove_all(options_.work / "protect" / directory_of(key_of(p.ns, p.name)), ec);
      spdlog::info("protection: {}/{} is no longer protected", p.ns, p.name);
      for (const std::string& target : p.failover) {
        if (target != options_.site) {
          asio::co_spawn(io_, withdraw(shared_from_this(), p.ns, p.name, target), asio::detached);
        }
      }
    }
  }

  // ---- the owner: one checkpoint of a protected pod, shipped ----

  static awaitable<void> protect(std::shared_ptr<Impl> self, std::string key) {
    Protected p;  // a copy of what the checkpoint needs
    std::vector<std::string> targets;
    {
      std::lock_guard lock(self->mu_);
      auto it = self->protected_.find(key);
      if (it == self->protected_.end()) {
        co_return;
      }
      p.ns = it->second.ns;
      p.name = it->second.name;
      p.pod = it->second.pod;
      p.container = it->second.container;
      p.epoch = it->second.epoch;
      p.sequence = it->second.sequence;
      p.delivered = it->second.delivered;
      const auto view = self->peers();
      for (const std::string& f : it->second.failover) {
        auto v = view.find(f);
        if (f != self->options_.site && v != view.end() && usable(v->second)) {
          targets.push_back(f);
        }
      }
    }
    const fs::path dir = self->options_.work / "protect" / directory_of(key);
    std::chrono::microseconds frozen{0};
    std::uint64_t most_bytes = 0;
    bool taken = false;
    bool fenced = false;
    if (!targets.empty()) {
      auto criu = co_await on_pool<
          boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string>>(
          self->pool_, [&] { return self->criu_(); });
      if (criu) {
        const auto start = Clock::now();
        auto dumped = co_await on_pool<boost::system::result<void, std::string>>(self->pool_, [&] {
          return checkpoint_running_pod(*criu->first, self->site_, p.ns, p.name, dir / "next");
        });
        frozen = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
        if (!dumped) {
          spdlog::warn("protection: checkpointing {}: {}", key, dumped.error());
        } else {
          taken = true;
        }
      } else {
        spdlog::warn("protection: {} cannot be checkpointed: {}", key, criu.error());
      }
    }
    std::map<std::string, std::uint64_t> delivered;
    if (taken) {
      const std::uint64_t sequence = p.sequence + 1;
      for (const std::string& target : targets) {
        auto shipped = co_await self->ship(p, target, sequence, dir);
        if (shipped.stale) {
          fenced = true;
          break;
        }
        if (shipped.bytes) {
          delivered[target] = sequence;
          most_bytes = std::max(most_bytes, *shipped.bytes);
        }
      }
      rotate(dir / "next", dir / "current");
    }
    if (fenced) {
      co_await self->fence(p.ns, p.name, "a failover site runs it at a newer epoch");
    }
    std::lock_guard lock(self->mu_);
    auto it = self->protected_.find(key);
    if (it == self->protected_.end()) {
      co_return;
    }
    Protected& q = it->second;
    q.busy = false;
    if (taken) {
      q.sequence += 1;
      q.delivered = std::move(delivered);
      q.pacer.record(frozen, most_bytes);
      ++self->checkpoints_;
      self->checkpoint_bytes_ += most_bytes;
      self->frozen_seconds_ += std::chrono::duration<double>(frozen).count();
    }
    q.due = Clock::now() + q.pacer.interval();
  }

  struct Shipped {
    std::optional<std::uint64_t> bytes;  // delivered
    bool stale = false;
  };

  // Sends the checkpoint in `dir`/next to `target`: a delta against `dir`/current when the
  // target holds that one.
  awaitable<Shipped> ship(const Protected& p, const std::string& target, std::uint64_t sequence,
                          const fs::path& dir) {
    wire::Checkpoint c;
    c.set_namespace_(p.ns);
    c.set_name(p.name);
    c.set_pod(json::serialize(destination_pod(p.pod, options_.site)));
    c.set_container(p.container);
    c.set_source_log(site_.log_path(p.ns, p.name, p.container).string());
    c.set_epoch(p.epoch);
    c.set_sequence(sequence);
    auto held = p.delivered.find(target);
    if (held != p.delivered.end() && held->second == sequence - 1) {
      c.set_base_sequence(held->second);
    }
    const auto deadline = std::chrono::duration_cast<std::chrono::milliseconds>(options_.deadline);
    auto stream = co_await node_.open(target, kCheckpointMethod, encode(c), deadline, false);
    if (!stream) {
      co_return Shipped{};
    }
    auto answer = co_await receive_as<wire::CheckpointAnswer>(**stream, "the checkpoint's answer");
    if (!answer) {
      co_return Shipped{};
    }
    if (answer->stale()) {
      spdlog::warn("protection: {} runs {}/{} at epoch {} (here: {})", target, p.ns, p.name,
                   answer->epoch(), p.epoch);
      co_return Shipped{std::nullopt, true};
    }
    if (!answer->accept()) {
      spdlog::warn("protection: {} refused the checkpoint of {}/{}: {}", target, p.ns, p.name,
                   answer->error());
      co_return Shipped{};
    }
    fs::path base;
    if (answer->use_base()) {
      base = dir / "current";
    }
    auto sent = co_await send_images(**stream, dir / "next", true, base);
    if (!sent) {
      spdlog::warn("protection: shipping {}/{} to {}: {}", p.ns, p.name, target, sent.error());
      co_return Shipped{};
    }
    co_return Shipped{sent->bytes, false};
  }

  // Tells `target` to drop its checkpoint of a pod this site no longer protects (deleted,
  // moved away): a failover must not bring it back.
  static awaitable<void> withdraw(std::shared_ptr<Impl> self, std::string ns, std::string name,
                                  std::string target) {
    wire::Checkpoint c;
    c.set_namespace_(ns);
    c.set_name(name);
    c.set_withdraw(true);
    auto answer =
        co_await self->node_.call(target, kCheckpointMethod, encode(c), std::chrono::seconds(30));
    if (!answer) {
      spdlog::debug("protection: {} keeps a checkpoint of {}/{}: {}", target, ns, name,
                    answer.error().message);
    }
  }

  // Stops this site's copy of a pod that another site runs at a newer epoch.
  awaitable<void> fence(std::string ns, std::string name, std::string why) {
    auto deleted = co_await on_pool<boost::system::result<void, std::string>>(
        pool_, [&] { return site_.delete_pod(ns, name); });
    if (deleted) {
      spdlog::warn("protection: fenced {}/{}: {}", ns, name, why);
      std::lock_guard lock(mu_);
      ++fenced_;
      protected_.erase(key_of(ns, name));
    } else {
      spdlog::error("protection: cannot fence {}/{}: {}", ns, name, deleted.error());
    }
  }

  // ---- a failover site: checkpoints of others' pods ----

  // Whether this site runs `ns`/`name` at an epoch that makes `epoch` from `sender` stale;
  // also true when the sender's copy wins and this site's must go (`fence_here`).
  struct Verdict {
    bool sender_stale = false;
    bool fence_here = false;
    std::uint64_t local_epoch = 0;
  };
  Verdict compare(const json::object* local, std::uint64_t epoch, const std::string& sender) const {
    Verdict v;
    if (local == nullptr || running_container(*local).empty() ||
        !annotation(*local, kRestoringAnnotation).empty()) {
      return v;
    }
    v.local_epoch = epoch_of(*local);
    if (v.local_epoch > epoch || (v.local_epoch == epoch && options_.site < sender)) {
      v.sender_stale = true;
    } else {
      v.fence_here = true;
    }
    return v;
  }

  // Forgets the checkpoint of `key` that `owner` shipped here (not one being restored).
  void drop_standby(const std::string& key, const std::string& owner) {
    {
      std::lock_guard lock(mu_);
      auto it = standby_.find(key);
      if (it == standby_.end() || it->second.owner != owner || it->second.restoring) {
        return;
      }
      standby_.erase(it);
    }
    std::error_code ec;
    fs::remove_all(options_.work / "standby" / directory_of(key), ec);
    spdlog::info("protection: dropped the checkpoint of {} ({} no longer protects it)", key, owner);
  }

  static awaitable<void> serve_checkpoint(std::weak_ptr<Impl> weak,
                                          std::shared_ptr<peer::PeerStream> stream,
                                          peer::Bytes request) {
    auto self = weak.lock();
    wire::Checkpoint c;
    if (!self || !c.ParseFromArray(request.data(), static_cast<int>(request.size())) ||
        c.namespace_().empty() || c.name().empty()) {
      wire::CheckpointAnswer no;
      no.set_error(self ? "a malformed checkpoint" : "the site is stopping");
      (void)co_await stream->send(encode(no), true);
      co_return;
    }
    co_await asio::co_spawn(self->transfers_, self->keep(stream, std::move(c)),
                            asio::use_awaitable);
    for (;;) {  // until the owner lets go (see the migrations' receive)
      auto more = co_await stream->receive();
      if (!more || !*more) {
        break;
      }
    }
  }

  awaitable<void> keep(std::shared_ptr<peer::PeerStream> stream, wire::Checkpoint c) {
    const std::string key = key_of(c.namespace_(), c.name());
    if (c.withdraw()) {
      drop_standby(key, stream->peer());
      (void)co_await stream->send(encode(wire::CheckpointAnswer{}), true);
      co_return;
    }
    using PodResult = boost::system::result<json::object, std::string>;
    auto local =
        co_await on_pool<PodResult>(pool_, [&] { return site_.get_pod(c.namespace_(), c.name()); });
    const Verdict verdict = compare(local ? &*local : nullptr, c.epoch(), stream->peer());
    wire::CheckpointAnswer answer;
    if (verdict.sender_stale) {
      answer.set_stale(true);
      answer.set_epoch(verdict.local_epoch);
      (void)co_await stream->send(encode(answer), true);
      co_return;
    }
    if (verdict.fence_here) {
      co_await fence(c.namespace_(), c.name(),
                     stream->peer() + " runs it at epoch " + std::to_string(c.epoch()));
    }
    boost::system::error_code ec;
    json::value pod = json::parse(c.pod(), ec);
    if (ec || !pod.is_object()) {
      answer.set_error("the checkpoint's pod is no JSON object");
      (void)co_await stream->send(encode(answer), true);
      co_return;
    }
    const fs::path dir = options_.work / "standby" / directory_of(key);
    bool use_base = false;
    {
      std::lock_guard lock(mu_);
      auto it = standby_.find(key);
      if (it != standby_.end() && it->second.restoring) {
        answer.set_error("restoring it now");
        use_base = false;
      } else {
        use_base = it != standby_.end() && it->second.owner == stream->peer() &&
                   c.base_sequence() != 0 && it->second.sequence == c.base_sequence();
      }
    }
    if (!answer.error().empty()) {
      (void)co_await stream->send(encode(answer), true);
      co_return;
    }
    answer.set_accept(true);
    answer.set_use_base(use_base);
    if (auto sent = co_await stream->send(encode(answer)); !sent) {
      co_return;
    }
    fs::path base;
    if (use_base) {
      base = dir / "current";
    }
    std::error_code fec;
    fs::remove_all(dir / "next", fec);
    auto received = co_await receive_images(*stream, dir / "next", true, base);
    if (!received) {
      co_return;
    }
    std::lock_guard lock(mu_);
    Standby& s = standby_[key];
    if (s.restoring) {  // its images are being restored: they stay
      fs::remove_all(dir / "next", fec);
      co_return;
    }
    rotate(dir / "next", dir / "current");
    s.owner = stream->peer();
    s.ns = c.namespace_();
    s.name = c.name();
    s.container = c.container();
    s.source_log = c.source_log();
    s.epoch = c.epoch();
    s.sequence = c.sequence();
    s.failover = failover_sites(annotation(pod.as_object(), kFailoverAnnotation));
    s.pod = std::move(pod.as_object());
  }

  static awaitable<void> fail_over(std::shared_ptr<Impl> self, std::string key) {
    Standby s;
    {
      std::lock_guard lock(self->mu_);
      auto it = self->standby_.find(key);
      if (it == self->standby_.end()) {
        co_return;
      }
      s = it->second;
    }
    const auto start = Clock::now();
    spdlog::warn("protection: {} is Down: restoring {} from its checkpoint {} (epoch {} -> {})",
                 s.owner, key, s.sequence, s.epoch, s.epoch + 1);
    json::object pod = s.pod;
    json::object& notes = kube::metadata(pod)["annotations"].as_object();
    notes[kEpochAnnotation] = std::to_string(s.epoch + 1);
    notes[kFailedOverFromAnnotation] = s.owner;
    const fs::path images = self->options_.work / "standby" / directory_of(key) / "current";
    auto criu =
        co_await on_pool<boost::system::result<std::pair<const Criu*, CriuFeatures>, std::string>>(
            self->pool_, [&] { return self->criu_(); });
    boost::system::result<Restored, std::string> restored(boost::system::in_place_error,
                                                          std::string("no CRIU"));
    if (criu) {
      MoveRequest request;
      request.namespace_name = s.ns;
      request.pod = s.name;
      request.mode = MoveMode::kCold;
      restored = co_await on_pool<boost::system::result<Restored, std::string>>(self->pool_, [&] {
        return restore_pod(*criu->first, self->site_, pod, s.container, s.source_log, images,
                           request, nullptr);
      });
    } else {
      restored =
          boost::system::result<Restored, std::string>(boost::system::in_place_error, criu.error());
    }
    std::lock_guard lock(self->mu_);
    auto it = self->standby_.find(key);
    if (!restored) {
      spdlog::error("protection: restoring {} failed: {} (again in 5 s)", key, restored.error());
      if (it != self->standby_.end()) {
        it->second.restoring = false;
        it->second.retry_after = Clock::now() + std::chrono::seconds(5);
      }
      co_return;
    }
    spdlog::warn("protection: {} runs here now (restored in {:.0f} ms)", key,
                 std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    ++self->failovers_;
    if (it != self->standby_.end()) {
      self->standby_.erase(it);
    }
    std::error_code ec;  // the images are the running pod's now
    fs::remove_all(self->options_.work / "standby" / directory_of(key), ec);
  }

  // ---- links that come back ----

  static awaitable<void> announce(std::shared_ptr<Impl> self, std::string peer) {
    wire::OwnedPods owned;
    {
      std::lock_guard lock(self->mu_);
      for (const auto& [key, p] : self->protected_) {
        wire::OwnedPod* o = owned.add_pods();
        o->set_namespace_(p.ns);
        o->set_name(p.name);
        o->set_epoch(p.epoch);
      }
    }
    auto answer =
        co_await self->node_.call(peer, kOwnedMethod, encode(owned), std::chrono::seconds(30));
    if (!answer) {
      spdlog::debug("protection: telling {} what runs here: {}", peer, answer.error().message);
    }
  }

  static awaitable<void> serve_owned(std::weak_ptr<Impl> weak,
                                     std::shared_ptr<peer::PeerStream> stream,
                                     peer::Bytes request) {
    auto self = weak.lock();
    wire::OwnedPods owned;
    wire::OwnedAnswer answer;
    if (self && owned.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
      // Checkpoints of the opener's pods it no longer runs protected: dropped.
      std::set<std::string> listed;
      for (const wire::OwnedPod& o : owned.pods()) {
        listed.insert(key_of(o.namespace_(), o.name()));
      }
      std::vector<std::string> gone;
      {
        std::lock_guard lock(self->mu_);
        for (const auto& [key, s] : self->standby_) {
          if (s.owner == stream->peer() && !listed.contains(key)) {
            gone.push_back(key);
          }
        }
      }
      for (const std::string& key : gone) {
        self->drop_standby(key, stream->peer());
      }
      for (const wire::OwnedPod& o : owned.pods()) {
        using PodResult = boost::system::result<json::object, std::string>;
        auto local = co_await on_pool<PodResult>(
            self->pool_, [&] { return self->site_.get_pod(o.namespace_(), o.name()); });
        const Verdict v = self->compare(local ? &*local : nullptr, o.epoch(), stream->peer());
        if (v.fence_here) {
          co_await self->fence(o.namespace_(), o.name(),
                               stream->peer() + " runs it at epoch " + std::to_string(o.epoch()));
          answer.set_fenced(answer.fenced() + 1);
        }
        // Its checkpoints kept here are of a pod that runs again: they are no longer needed.
        std::lock_guard lock(self->mu_);
        auto it = self->standby_.find(key_of(o.namespace_(), o.name()));
        if (it != self->standby_.end() && !it->second.restoring &&
            it->second.owner != stream->peer() && it->second.epoch < o.epoch()) {
          self->standby_.erase(it);
        }
      }
    }
    (void)co_await stream->send(encode(answer), true);
  }

  asio::io_context& io_;
  peer::PeerNode& node_;
  KubePodSite& site_;
  asio::thread_pool& pool_;
  asio::thread_pool& transfers_;
  CriuAccess criu_;
  Options options_;
  std::shared_ptr<void> keepalive_;
  mutable std::mutex mu_;
  bool stopped_ = false;
  bool scanned_ = false;            // the site's pods were listed once
  std::map<std::string, bool> up_;  // by peer: usable at the last tick
  std::map<std::string, Protected> protected_;
  std::map<std::string, Standby> standby_;
  std::optional<Clock::time_point> degraded_since_;     // at least half of the peers
  std::map<std::string, Clock::time_point> evacuated_;  // by pod: when it was last sent off
  std::uint64_t checkpoints_ = 0;
  std::uint64_t checkpoint_bytes_ = 0;
  double frozen_seconds_ = 0;
  std::uint64_t failovers_ = 0;
  std::uint64_t fenced_ = 0;
};

}  // namespace

std::shared_ptr<Protection> Protection::start(asio::io_context& io, peer::PeerNode& node,
                                              KubePodSite& site, asio::thread_pool& pool,
                                              asio::thread_pool& transfers, CriuAccess criu,
                                              Options options, std::shared_ptr<void> keepalive) {
  auto p = std::make_shared<Impl>(io, node, site, pool, transfers, std::move(criu),
                                  std::move(options), std::move(keepalive));
  p->begin();
  return p;
}

}  // namespace archipel::migrate
