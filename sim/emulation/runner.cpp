#include "emulation/runner.hpp"

#include "archipel/base/ports.hpp"
#include "archipel/kube/resource.hpp"
#include "archipel/proxy/upstream.hpp"
#include "emulation/federation.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

namespace archipel::sim {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Reply {
  unsigned status = 0;
  std::string body;
};
using Call = boost::system::result<Reply, std::string>;

// The message of a Kubernetes Status, or the start of the body.
std::string message_of(const Reply& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (const json::value* m = v.as_object().if_contains("message"); m && m->is_string()) {
      return std::to_string(r.status) + " " + std::string(m->as_string());
    }
  }
  return std::to_string(r.status) + " " + r.body.substr(0, 200);
}

// What sharing keeps identical: an object's intent (never its uid, versions or status).
json::object intent(const json::object& o) {
  json::object out;
  for (const char* key : {"data", "binaryData", "stringData", "spec"}) {
    if (const json::value* v = o.if_contains(key)) {
      out[key] = *v;
    }
  }
  if (const json::value* m = o.if_contains("metadata"); m && m->is_object()) {
    for (const char* key : {"labels", "annotations"}) {
      if (const json::value* v = m->as_object().if_contains(key)) {
        out[key] = *v;
      }
    }
  }
  return out;
}

// The collection an object is created in ("/api/v1/namespaces/team-a/configmaps").
std::string collection_of(const json::object& object) {
  const auto text = [&](const json::object& o, const char* key) {
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const kube::ResourceType* type =
      kube::find_kind(text(object, "apiVersion"), text(object, "kind"));
  std::string ns = "default";
  if (const json::value* m = object.if_contains("metadata"); m && m->is_object()) {
    if (std::string given = text(m->as_object(), "namespace"); !given.empty()) {
      ns = given;
    }
  }
  std::string out = type->group.empty()
                        ? std::string("/api/v1")
                        : "/apis/" + std::string(type->group) + "/" + std::string(type->version);
  if (type->namespaced) {
    out += "/namespaces/" + ns;
  }
  return out + "/" + std::string(type->plural);
}

struct Outcome {
  bool ok = true;
  std::string detail;
  bool check = false;  // an expectation (reported even when it holds)
};

// Helpers that build texts outside coroutines (GCC 12 mishandles ?: temporaries in them).
std::string fixed_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string scope_text(const std::string& scope) {
  return scope.empty() ? "." : scope;
}

Outcome answered(const Reply& r, const std::string& success) {
  if (r.status / 100 == 2) {
    return {true, success};
  }
  return {false, message_of(r)};
}

std::string describe(const netem::LinkProfile& p) {
  return "latency " + std::to_string(p.latency.count() / 1000) + " ms, jitter " +
         std::to_string(p.jitter.count() / 1000) + " ms, " +
         (p.bandwidth_bytes_per_second == 0
              ? std::string("unlimited")
              : std::to_string(p.bandwidth_bytes_per_second) + " B/s");
}

std::string failed_migration(const std::string& name, const std::string& phase,
                             const std::string& message) {
  std::string out = name + ": " + (phase.empty() ? std::string("no answer") : phase);
  if (!message.empty()) {
    out += " (" + message + ")";
  }
  if (phase != "Failed") {
    out += " within the bound";
  }
  return out;
}

// The value of the sample printed as `name` (labels included) in a Prometheus text page.
std::optional<double> sample_of(const std::string& page, const std::string& name) {
  std::size_t pos = 0;
  while ((pos = page.find(name, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || page[pos - 1] == '\n';
    const std::size_t after = pos + name.size();
    if (line_start && after < page.size() && page[after] == ' ') {
      const std::size_t end = page.find('\n', after);
      const std::string text = page.substr(after + 1, end - after - 1);
      try {
        return std::stod(text);
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    pos = after;
  }
  return std::nullopt;
}

std::string metric_text(const Metric& m, std::optional<double> value, std::optional<double> first) {
  if (!value) {
    return m.name + " not found at " + m.site;
  }
  std::string out = m.name + " = " + fixed_text(*value) + " at " + m.site;
  if (m.increase) {
    out += " (from " + fixed_text(*first) + ")";
  }
  return out;
}

std::string phase_of(const std::string& pod) {
  boost::system::error_code ec;
  json::value v = json::parse(pod, ec);
  const json::value* phase = ec ? nullptr : v.find_pointer("/status/phase", ec);
  return phase && phase->is_string() ? std::string(phase->as_string()) : "no phase";
}

class Runner {
 public:
  Runner(asio::io_context& io, const Scenario& s, const RunOptions& o, Federation& f)
      : io_(io), s_(s), o_(o), f_(f) {}

  awaitable<boost::system::result<void, std::string>> run(Report& report) {
    start_ = Clock::now();
    for (const std::string& site : s_.sites) {
      proxy::Upstream::Options options;
      options.url = f_.front_door(site);
      auto upstream = proxy::Upstream::create(io_, options);
      if (!upstream) {
        co_return upstream.error();
      }
      sites_[site] = std::move(*upstream);
    }
    asio::co_spawn(io_, sample_loop(report), asio::detached);
    // Every site up and seeing every other before the first step.
    const auto ready_by = Clock::now() + 60s;
    for (;;) {
      bool all = true;
      for (const std::string& a : s_.sites) {
        for (const std::string& b : s_.sites) {
          all = all && (!linked(s_, a, b) || peer_state_[a + ">" + b] == "Reachable");
        }
      }
      if (all) {
        break;
      }
      if (Clock::now() > ready_by) {
        stop_ = true;
        co_return std::string("the sites did not all see each other within 60 s (logs: ") +
            (o_.out / "sites").string() + ")";
      }
      co_await sleep(100ms);
    }
    start_ = Clock::now();  // the scenario's time starts with a connected federation
    report.samples.clear();
    for (std::size_t i = 0; i < s_.steps.size(); ++i) {
      const Step& step = s_.steps[i];
      if (o_.progress) {
        o_.progress(i, s_.steps.size(), step.name);
      }
      Report::Step record{step.name, step.line, now_s(), 0, false, true, {}};
      if (o_.short_run && step.long_only) {
        record.skipped = true;
        record.end_s = record.start_s;
        report.steps.push_back(std::move(record));
        continue;
      }
      if (step.at) {
        const auto due = start_ + *step.at;
        if (Clock::now() < due) {
          co_await sleep(std::chrono::duration_cast<Millis>(due - Clock::now()));
        }
        record.start_s = now_s();
      }
      Outcome outcome = co_await std::visit(
          [&](const auto& action) { return perform(action, report); }, step.action);
      record.end_s = now_s();
      record.ok = outcome.ok;
      record.detail = outcome.detail;
      if (outcome.check || !outcome.ok) {
        report.expectations.push_back({step.name, step.line, outcome.ok, outcome.detail});
      }
      report.steps.push_back(std::move(record));
    }
    if (o_.progress) {
      o_.progress(s_.steps.size(), s_.steps.size(), "done");
    }
    co_await sleep(300ms);  // one more sample of the final state
    stop_ = true;
    report.duration_s = now_s();
    for (std::size_t i = 0; i < s_.sites.size(); ++i) {
      for (std::size_t j = i + 1; j < s_.sites.size(); ++j) {
        if (!linked(s_, s_.sites[i], s_.sites[j])) {
          continue;
        }
        report.link_bytes[s_.sites[i] + "-" + s_.sites[j]] =
            static_cast<double>(f_.link_bytes(s_.sites[i], s_.sites[j]));
      }
    }
    co_return boost::system::result<void, std::string>();
  }

  [[nodiscard]] bool sampler_done() const { return sampler_done_; }

  // The workloads this run started, to stop them at the end wherever they run now.
  const std::map<std::string, std::uint16_t>& pod_ports() const { return pod_ports_; }

 private:
  double now_s() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  awaitable<void> sleep(Millis d) {
    asio::steady_timer t(io_);
    t.expires_after(d);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  // One request; `timeout` bounds the head and the body.
  awaitable<Call> call(proxy::Upstream& upstream, std::string method, std::string target,
                       std::string body = {}, std::string scope = {},
                       std::string content_type = "application/json", Millis timeout = 10s) {
    proxy::ForwardRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.timeout = timeout;
    request.headers.emplace_back("Accept", "application/json");
    if (!request.body.empty()) {
      request.headers.emplace_back("Content-Type", content_type);
    }
    if (!scope.empty()) {
      request.headers.emplace_back("X-Archipel-Scope", scope);
    }
    auto answer = co_await upstream.send(request);
    if (!answer) {
      co_return Call(boost::system::in_place_error, answer.error().message);
    }
    auto read = co_await proxy::read_body(**answer, 32 * 1024 * 1024);
    if (!read) {
      co_return Call(boost::system::in_place_error, read.error().message);
    }
    co_return Reply{(*answer)->status, std::move(*read)};
  }

  awaitable<Call> at(const std::string& site, std::string method, std::string target,
                     std::string body = {}, std::string scope = {},
                     std::string content_type = "application/json") {
    co_return co_await call(*sites_.at(site), std::move(method), std::move(target), std::move(body),
                            std::move(scope), std::move(content_type));
  }

  // ---- sampling ----

  awaitable<void> sample_loop(Report& report) {
    while (!stop_) {
      Report::Sample sample;
      sample.t_s = now_s();
      for (const std::string& site : s_.sites) {
        bool up = false;
        if (f_.alive(site)) {
          auto metrics = co_await call(*sites_.at(site), "GET", "/metrics", {}, {}, {}, 1s);
          up = metrics && metrics->status == 200;
          if (up) {
            read_peer_states(site, metrics->body);
          }
        }
        sample.site_up[site] = up;
        for (const std::string& peer : s_.sites) {
          if (linked(s_, site, peer)) {
            const std::string key = site + ">" + peer;
            if (!up) {
              peer_state_.erase(key);
            } else if (auto it = peer_state_.find(key); it != peer_state_.end()) {
              sample.peer_state[key] = it->second;
            }
          }
        }
      }
      for (std::size_t i = 0; i < s_.sites.size(); ++i) {
        for (std::size_t j = i + 1; j < s_.sites.size(); ++j) {
          if (!linked(s_, s_.sites[i], s_.sites[j])) {
            continue;
          }
          sample.link_state[s_.sites[i] + "-" + s_.sites[j]] =
              f_.link_state(s_.sites[i], s_.sites[j]);
        }
      }
      report.samples.push_back(std::move(sample));
      co_await sleep(200ms);
    }
    sampler_done_ = true;
  }

  // archipel_peer_state{peer="nantes",state="Reachable"} 1
  void read_peer_states(const std::string& site, const std::string& metrics) {
    constexpr std::string_view kFamily = "archipel_peer_state{peer=\"";
    std::size_t pos = 0;
    while ((pos = metrics.find(kFamily, pos)) != std::string::npos) {
      const std::size_t peer_begin = pos + kFamily.size();
      const std::size_t peer_end = metrics.find('"', peer_begin);
      const std::size_t state_begin = metrics.find("state=\"", peer_end);
      const std::size_t state_end = metrics.find('"', state_begin + 7);
      const std::size_t line_end = metrics.find('\n', state_end);
      if (peer_end == std::string::npos || state_begin == std::string::npos ||
          state_end == std::string::npos) {
        return;
      }
      const std::string value = metrics.substr(state_end + 2, line_end - state_end - 2);
      if (value.find('1') != std::string::npos &&
          value.find_first_not_of(" 1\r") == std::string::npos) {
        peer_state_[site + ">" + metrics.substr(peer_begin, peer_end - peer_begin)] =
            metrics.substr(state_begin + 7, state_end - state_begin - 7);
      }
      pos = state_end;
    }
  }

  // ---- actions ----

  awaitable<Outcome> perform(const Requests& r, Report& report) {
    unsigned failed = 0;
    std::string first_error;
    auto& latencies = report.latencies_ms[r.scope];
    for (unsigned i = 0; i < r.count; ++i) {
      const auto begin = Clock::now();
      auto reply = co_await at(r.site, r.method, r.path, {}, r.scope);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
      const bool ok = reply && (r.expect_status != 0 ? reply->status == r.expect_status
                                                     : reply->status / 100 == 2);
      if (ok) {
        latencies.push_back(ms);
      } else {
        ++failed;
        if (first_error.empty() && reply) {
          first_error = message_of(*reply);
        } else if (first_error.empty()) {
          first_error = reply.error();
        }
      }
    }
    report.request_failures[r.scope] += failed;
    std::string detail = std::to_string(r.count) + " × " + r.method + " " + r.path + " scoped '" +
                         scope_text(r.scope) + "' at " + r.site;
    if (failed > 0) {
      detail += ": " + std::to_string(failed) + " failed (" + first_error + ")";
    }
    co_return Outcome{failed == 0, detail, r.expect_status != 0};
  }

  awaitable<Outcome> perform(const Write& w, Report&) {
    auto reply =
        co_await at(w.site, "POST", collection_of(w.object), json::serialize(w.object), w.scope);
    if (!reply) {
      co_return Outcome{false, reply.error()};
    }
    if (reply->status / 100 != 2) {
      co_return Outcome{false, message_of(*reply)};
    }
    co_return Outcome{true, "created through " + w.site + " on '" + scope_text(w.scope) + "'"};
  }

  awaitable<Outcome> perform(const Edit& e, Report&) {
    auto reply = co_await at(e.site, "PATCH", e.object.path(), json::serialize(e.patch), {},
                             "application/merge-patch+json");
    if (!reply) {
      co_return Outcome{false, reply.error()};
    }
    co_return answered(*reply, "patched at " + e.site);
  }

  awaitable<Outcome> perform(const Delete& d, Report&) {
    auto reply = co_await at(d.site, "DELETE", d.object.path());
    if (!reply) {
      co_return Outcome{false, reply.error()};
    }
    co_return answered(*reply, "deleted at " + d.site);
  }

  awaitable<Outcome> perform(const Share& sh, Report&) {
    json::object spec{{"resource", sh.object.resource}, {"name", sh.object.name}};
    if (!sh.object.namespace_name.empty()) {
      spec["namespace"] = sh.object.namespace_name;
    }
    spec["sites"] = json::array(sh.with.begin(), sh.with.end());
    const json::object body{
        {"apiVersion", "archipel.io/v1"}, {"kind", "SharedObject"}, {"spec", std::move(spec)}};
    auto reply =
        co_await at(sh.site, "POST", "/apis/archipel.io/v1/sharedobjects", json::serialize(body));
    if (!reply) {
      co_return Outcome{false, reply.error()};
    }
    co_return answered(*reply, sh.object.text() + " shared by " + sh.site);
  }

  awaitable<Outcome> perform(const LinkChange& c, Report&) {
    std::string detail;
    for (const auto& [a, b] : c.pairs) {
      f_.change(c.kind, a, b);
      detail += (detail.empty() ? "" : ", ") + a + "-" + b;
    }
    co_return Outcome{true, detail + ": " + f_.link_state(c.pairs[0].first, c.pairs[0].second)};
  }

  awaitable<Outcome> perform(const LinkShape& l, Report&) {
    f_.shape(l.pair.first, l.pair.second, l.profile);
    co_return Outcome{true, describe(l.profile)};
  }

  awaitable<Outcome> perform(const Crash& c, Report&) {
    auto crashed = f_.crash(c.site);
    if (!crashed) {
      co_return Outcome{false, crashed.error()};
    }
    co_return Outcome{true, "killed (SIGKILL)"};
  }

  awaitable<Outcome> perform(const Restart& r, Report&) {
    auto started = f_.restart(r.site);
    if (!started) {
      co_return Outcome{false, started.error()};
    }
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      auto ready = co_await at(r.site, "GET", "/readyz");
      if (ready && ready->status == 200) {
        co_return Outcome{true, "ready again"};
      }
      co_await sleep(100ms);
    }
    co_return Outcome{false, "not ready within 30 s (log: " + f_.log(r.site).string() + ")"};
  }

  awaitable<Outcome> perform(const StartPod& p, Report&) {
    auto port = base::free_loopback_port();
    if (!port) {
      co_return Outcome{false, port.error()};
    }
    const json::object ns{{"apiVersion", "v1"},
                          {"kind", "Namespace"},
                          {"metadata", json::object{{"name", p.pod.namespace_name}}}};
    (void)co_await at(p.site, "POST", "/api/v1/namespaces", json::serialize(ns));
    json::object annotations;
    for (const auto& [k, v] : p.annotations) {
      annotations[k] = v;
    }
    const std::string program = (o_.workloads / p.workload).string();
    const json::object pod{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", json::object{{"name", p.pod.name},
                                  {"namespace", p.pod.namespace_name},
                                  {"annotations", std::move(annotations)}}},
        {"spec",
         json::object{{"containers",
                       json::array{json::object{
                           {"name", p.workload},
                           {"image", "local"},
                           {"command", json::array{program, "--port", std::to_string(*port)}},
                           {"ports", json::array{json::object{{"containerPort", *port}}}}}}}}}};
    auto reply = co_await at(p.site, "POST", "/api/v1/namespaces/" + p.pod.namespace_name + "/pods",
                             json::serialize(pod));
    if (!reply) {
      co_return Outcome{false, reply.error()};
    }
    if (reply->status / 100 != 2) {
      co_return Outcome{false, message_of(*reply)};
    }
    pod_ports_[p.pod.text()] = *port;
    if (p.workload == "cart" || p.workload == "api") {
      http_pods_.insert(p.pod.text());
    }
    co_return Outcome{true, p.workload + " on port " + std::to_string(*port) + " at " + p.site};
  }

  awaitable<Outcome> perform(const Http& h, Report&) {
    auto port = pod_ports_.find(h.pod.text());
    if (port == pod_ports_.end()) {
      co_return Outcome{false, "no pod " + h.pod.text() + " was started by this scenario", true};
    }
    auto& upstream = workload_upstream(port->second);
    if (!upstream) {
      co_return Outcome{false, "no client for the workload", true};
    }
    auto reply = co_await call(*upstream, h.method, h.path);
    if (!reply) {
      co_return Outcome{false, h.pod.text() + ": " + reply.error(), !h.expect.empty()};
    }
    const bool ok = reply->status / 100 == 2 &&
                    (h.expect.empty() || reply->body.find(h.expect) != std::string::npos);
    std::string body = reply->body.substr(0, 200);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) {
      body.pop_back();
    }
    co_return Outcome{ok, std::to_string(reply->status) + " " + body, !h.expect.empty()};
  }

  std::unique_ptr<proxy::Upstream>& workload_upstream(std::uint16_t port) {
    auto& slot = workloads_[port];
    if (!slot) {
      proxy::Upstream::Options options;
      options.url = "http://127.0.0.1:" + std::to_string(port);
      if (auto u = proxy::Upstream::create(io_, options)) {
        slot = std::move(*u);
      }
    }
    return slot;
  }

  awaitable<Outcome> perform(const Migrate& m, Report& report) {
    const json::object body{
        {"apiVersion", "archipel.io/v1"},
        {"kind", "Migration"},
        {"metadata", json::object{{"generateName", m.pod.name + "-"}}},
        {"spec", json::object{{"pod", m.pod.name}, {"to", m.to}, {"mode", m.mode}}}};
    const std::string collection =
        "/apis/archipel.io/v1/namespaces/" + m.pod.namespace_name + "/migrations";
    auto created = co_await at(m.site, "POST", collection, json::serialize(body));
    if (!created) {
      co_return Outcome{false, created.error(), true};
    }
    if (created->status != 201) {
      co_return Outcome{false, message_of(*created), true};
    }
    const std::string name(json::parse(created->body).at("metadata").at("name").as_string());
    const auto deadline = Clock::now() + m.within;
    json::object last;
    std::string phase;
    while (Clock::now() < deadline) {
      auto got = co_await at(m.site, "GET", collection + "/" + name);
      boost::system::error_code ec;
      if (got && got->status == 200) {
        json::value v = json::parse(got->body, ec);
        if (!ec && v.is_object()) {
          last = v.as_object();
          const json::value* p = last.at("status").as_object().if_contains("phase");
          phase.clear();
          if (p != nullptr && p->is_string()) {
            phase = p->as_string();
          }
          if (phase == "Succeeded" || phase == "Failed") {
            break;
          }
        }
      }
      co_await sleep(100ms);
    }
    Report::Migration record{name, m.pod.text(), m.site, m.to, m.mode};
    record.phase = phase;
    if (!last.empty()) {
      const json::object& status = last.at("status").as_object();
      auto number = [&](const char* key) {
        const json::value* v = status.if_contains(key);
        return v && v->is_number() ? v->to_number<double>() : 0.0;
      };
      auto text = [&](const char* key) {
        const json::value* v = status.if_contains(key);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
      };
      record.downtime_ms = number("downtimeMs");
      record.image_bytes = number("imageBytes");
      record.strategy = text("strategy");
      record.message = text("message");
      if (const json::value* steps = status.if_contains("steps"); steps && steps->is_array()) {
        for (const json::value& step : steps->as_array()) {
          record.steps.emplace_back(std::string(step.at("name").as_string()),
                                    step.at("atMs").to_number<double>());
        }
      }
    }
    report.migrations.push_back(record);
    if (phase != "Succeeded") {
      co_return Outcome{false, failed_migration(name, phase, record.message), true};
    }
    co_return Outcome{true,
                      name + ": " + record.strategy + ", downtime " +
                          std::to_string(static_cast<int>(record.downtime_ms)) + " ms",
                      true};
  }

  awaitable<Outcome> perform(const Converge& c, Report& report) {
    const auto begin = Clock::now();
    const auto deadline = begin + c.within;
    std::string why;
    bool converged = false;
    for (;;) {
      std::optional<json::object> first;
      bool same = true;
      bool present = false;
      bool absent = false;
      for (const std::string& site : c.sites) {
        auto got = co_await at(site, "GET", c.object.path());
        if (!got || (got->status != 200 && got->status != 404)) {
          same = false;
          why = site + ": ";
          if (got) {
            why += message_of(*got);
          } else {
            why += got.error();
          }
          break;
        }
        if (got->status == 404) {
          absent = true;
          continue;
        }
        present = true;
        boost::system::error_code ec;
        json::value v = json::parse(got->body, ec);
        if (ec || !v.is_object()) {
          same = false;
          why = site + ": not a JSON object";
          break;
        }
        json::object mine = intent(v.as_object());
        if (!first) {
          first = std::move(mine);
        } else if (*first != mine) {
          same = false;
          why = "differs at " + site;
        }
      }
      if (same && present && absent) {
        same = false;
        why = "present at some sites only";
      }
      if (same) {
        converged = true;
        why = present ? "identical" : "absent everywhere";
        break;
      }
      if (Clock::now() >= deadline) {
        break;
      }
      co_await sleep(5ms);  // fine enough for the cross-check with the simulation
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
    report.convergence.push_back(
        {c.object.text(), c.sites, ms, static_cast<double>(c.within.count()), converged});
    if (!converged) {
      co_return Outcome{
          false, "not identical within " + std::to_string(c.within.count()) + " ms: " + why, true};
    }
    co_return Outcome{true, why + " after " + std::to_string(static_cast<int>(ms)) + " ms", true};
  }

  awaitable<Outcome> perform(const Absent& a, Report&) {
    const auto deadline = Clock::now() + a.within;
    for (;;) {
      auto got = co_await at(a.site, "GET", a.object.path());
      if (!got) {
        co_return Outcome{false, got.error(), true};
      }
      if (got->status == 404) {
        co_return Outcome{true, "not at " + a.site, true};
      }
      if (Clock::now() >= deadline) {
        co_return Outcome{false, "present at " + a.site, true};
      }
      co_await sleep(50ms);
    }
  }

  awaitable<Outcome> perform(const Running& r, Report&) {
    const auto deadline = Clock::now() + r.within;
    std::string last = "no answer";
    for (;;) {
      auto got = co_await at(r.site, "GET",
                             "/api/v1/namespaces/" + r.pod.namespace_name + "/pods/" + r.pod.name);
      if (got && got->status == 200) {
        last = phase_of(got->body);
        if (last == "Running" && !serves_http(r.pod.text())) {
          co_return Outcome{true, r.pod.text() + " runs at " + r.site, true};
        }
        if (last == "Running") {  // and serves: its HTTP answers
          auto& upstream = workload_upstream(pod_ports_.at(r.pod.text()));
          if (upstream) {
            auto health = co_await call(*upstream, "GET", "/healthz", {}, {}, {}, 1s);
            if (health && health->status == 200) {
              co_return Outcome{true, r.pod.text() + " runs and serves at " + r.site, true};
            }
          }
          last = "Running, not serving yet";
        }
      } else if (got) {
        last = message_of(*got);
      }
      if (Clock::now() >= deadline) {
        co_return Outcome{false, r.pod.text() + " at " + r.site + ": " + last, true};
      }
      co_await sleep(50ms);
    }
  }

  awaitable<Outcome> perform(const PeerState& p, Report&) {
    const auto begin = Clock::now();
    const auto deadline = begin + p.within;
    for (;;) {
      auto metrics = co_await at(p.site, "GET", "/metrics");
      if (metrics && metrics->status == 200) {
        read_peer_states(p.site, metrics->body);
      }
      const std::string now = peer_state_[p.site + ">" + p.peer];
      if (now == p.state) {
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
        co_return Outcome{true,
                          p.site + " holds " + p.peer + " " + p.state + " after " +
                              std::to_string(static_cast<int>(ms)) + " ms",
                          true};
      }
      if (Clock::now() >= deadline) {
        co_return Outcome{false, p.site + " holds " + p.peer + " " + now, true};
      }
      co_await sleep(20ms);
    }
  }

  awaitable<Outcome> perform(const Metric& m, Report&) {
    const auto deadline = Clock::now() + m.within;
    std::optional<double> first;
    std::optional<double> value;
    for (;;) {
      auto metrics = co_await at(m.site, "GET", "/metrics");
      if (metrics && metrics->status == 200) {
        value = sample_of(metrics->body, m.name);
      }
      if (value && !first) {
        first = value;
      }
      const bool holds = value && (!m.min || *value >= *m.min) && (!m.max || *value <= *m.max) &&
                         (!m.increase || *value - *first >= *m.increase);
      if (holds || Clock::now() >= deadline) {
        co_return Outcome{holds, metric_text(m, value, first), true};
      }
      co_await sleep(50ms);
    }
  }

  awaitable<Outcome> perform(const Wait& w, Report&) {
    co_await sleep(w.duration);
    co_return Outcome{true, {}};
  }

  asio::io_context& io_;
  const Scenario& s_;
  const RunOptions& o_;
  Federation& f_;
  Clock::time_point start_;
  bool stop_ = false;
  bool sampler_done_ = false;
  std::map<std::string, std::unique_ptr<proxy::Upstream>> sites_;
  std::map<std::uint16_t, std::unique_ptr<proxy::Upstream>> workloads_;
  std::map<std::string, std::string> peer_state_;  // "site>peer"
  std::map<std::string, std::uint16_t> pod_ports_;
  std::set<std::string> http_pods_;  // those serving HTTP (/healthz)

  bool serves_http(const std::string& pod) const { return http_pods_.contains(pod); }
};

// Stops the workloads the run started, wherever they run now (a site's pods outlive it).
void stop_workloads(const fs::path& workloads, const std::map<std::string, std::uint16_t>& ports) {
  std::set<std::string> ours;
  for (const auto& [pod, port] : ports) {
    ours.insert(std::to_string(port));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');) {
      argv.push_back(arg);
    }
    if (argv.size() >= 3 && fs::path(argv[0]).parent_path() == workloads &&
        argv[argv.size() - 2] == "--port" && ours.contains(argv.back())) {
      ::kill(std::stoi(pid), SIGKILL);
    }
  }
}

}  // namespace

boost::system::result<Report, std::string> run_scenario(const Scenario& scenario,
                                                        const RunOptions& options) {
  Report report;
  report.scenario = scenario.name;
  report.description = scenario.description;
  report.source = scenario.source.string();
  report.started_at = utc_now_rfc3339();
  report.short_run = options.short_run;
  report.sites = scenario.sites;

  asio::io_context io;
  auto federation = Federation::start(io, scenario, {options.archipel, options.out / "sites"});
  if (!federation) {
    return boost::system::result<Report, std::string>(boost::system::in_place_error,
                                                      federation.error());
  }
  Runner runner(io, scenario, options, **federation);
  auto done = asio::co_spawn(io, runner.run(report), asio::use_future);
  // The links relay on this thread too: run until the scenario is over and the sampler stopped.
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    io.run_for(std::chrono::milliseconds(50));
  }
  const auto sampler_deadline = Clock::now() + std::chrono::seconds(3);
  while (!runner.sampler_done() && Clock::now() < sampler_deadline) {
    io.run_for(std::chrono::milliseconds(50));
  }
  auto result = done.get();
  federation->reset();
  stop_workloads(options.workloads, runner.pod_ports());
  if (!result) {
    return boost::system::result<Report, std::string>(boost::system::in_place_error,
                                                      result.error());
  }
  return report;
}

}  // namespace archipel::sim
