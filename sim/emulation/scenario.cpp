#include "emulation/scenario.hpp"

#include "yaml_fields.hpp"

#include "archipel/dsl/scope.hpp"
#include "archipel/kube/resource.hpp"
#include "archipel/netem/units.hpp"

#include <yaml-cpp/yaml.h>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace archipel::sim {
namespace {

namespace json = boost::json;
using namespace yaml_fields;

// A YAML value as JSON: quoted scalars are strings; plain ones that read as numbers, booleans
// or null are those (replicas: 3), the rest strings.
json::value to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    json::object o;
    for (const auto& kv : n) {
      o[kv.first.Scalar()] = to_json(kv.second);
    }
    return o;
  }
  if (n.IsSequence()) {
    json::array a;
    for (const auto& item : n) {
      a.push_back(to_json(item));
    }
    return a;
  }
  if (n.IsNull()) {
    return nullptr;
  }
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") {
    return json::value(s);
  }
  if (s == "true" || s == "false") {
    return s == "true";
  }
  std::int64_t i = 0;
  if (auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
      ec == std::errc() && end == s.data() + s.size()) {
    return i;
  }
  double d = 0;
  if (auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      ec == std::errc() && end == s.data() + s.size()) {
    return d;
  }
  return json::value(s);
}

json::object json_object(const YAML::Node& n, const std::string& what) {
  if (!n.IsMap()) {
    fail(n, what + ": expected a map");
  }
  return to_json(n).as_object();
}

class Parser {
 public:
  explicit Parser(Scenario& s) : s_(s) {}

  void parse(const YAML::Node& root) {
    only_keys(root, "the scenario",
              {"name", "description", "sites", "links", "failure_detector", "steps"});
    s_.name = scalar(root["name"], "name");
    s_.description = optional_scalar(root, "description", "");
    const YAML::Node sites = root["sites"];
    if (!sites.IsSequence() || sites.size() < 2) {
      fail(sites.IsDefined() ? sites : root, "sites: expected a list of at least two site names");
    }
    for (const auto& site : sites) {
      std::string name = scalar(site, "sites[]");
      if (!dsl::is_dns1123_label(name)) {
        fail(site, "sites: '" + name + "' is not a site name (a DNS-1123 label)");
      }
      if (std::find(s_.sites.begin(), s_.sites.end(), name) != s_.sites.end()) {
        fail(site, "sites: '" + name + "' twice");
      }
      s_.sites.push_back(std::move(name));
    }
    if (const YAML::Node links = root["links"]; links.IsDefined()) {
      only_keys(links, "links", {"topology", "hub", "latency", "jitter", "bandwidth", "pairs"});
      const std::string topology = optional_scalar(links, "topology", "links", "full");
      if (topology == "star") {
        site(links["hub"], "links.hub");
        s_.hub = links["hub"].Scalar();
      } else if (topology != "full") {
        fail(links["topology"], "links.topology: expected full or star, got '" + topology + "'");
      } else if (links["hub"].IsDefined()) {
        fail(links["hub"], "links.hub: only a star has a hub (topology: star)");
      }
      s_.links = profile(links, "links", {});
      if (const YAML::Node pairs = links["pairs"]; pairs.IsDefined()) {
        if (!pairs.IsMap()) {
          fail(pairs, "links.pairs: expected a map of 'a-b: {latency: …}'");
        }
        for (const auto& kv : pairs) {
          auto p = pair_of_dashed(kv.first);
          if (!linked(s_, p.first, p.second)) {
            fail(kv.first, "links.pairs: no link between " + p.first + " and " + p.second +
                               " in a star around " + s_.hub);
          }
          only_keys(kv.second, "links.pairs." + kv.first.Scalar(),
                    {"latency", "jitter", "bandwidth"});
          s_.pair_links[ordered(p)] =
              profile(kv.second, "links.pairs." + kv.first.Scalar(), s_.links);
        }
      }
    }
    if (const YAML::Node fd = root["failure_detector"]; fd.IsDefined()) {
      only_keys(fd, "failure_detector", {"heartbeat"});
      s_.heartbeat = duration(fd["heartbeat"], "failure_detector.heartbeat");
      if (s_.heartbeat < Millis(10) || s_.heartbeat > Millis(60'000)) {
        fail(fd["heartbeat"], "failure_detector.heartbeat: expected 10ms to 60s");
      }
    }
    const YAML::Node steps = root["steps"];
    if (!steps.IsSequence() || steps.size() == 0) {
      fail(steps.IsDefined() ? steps : root, "steps: expected a list of steps");
    }
    for (const auto& step : steps) {
      s_.steps.push_back(parse_step(step));
    }
  }

 private:
  netem::LinkProfile profile(const YAML::Node& n, const std::string& what,
                             netem::LinkProfile base) {
    if (n["latency"].IsDefined()) {
      base.latency = std::chrono::duration_cast<std::chrono::microseconds>(
          netem_duration(n["latency"], what + ".latency"));
    }
    if (n["jitter"].IsDefined()) {
      base.jitter = netem_duration(n["jitter"], what + ".jitter");
    }
    if (n["bandwidth"].IsDefined()) {
      auto b = netem::parse_bandwidth(scalar(n["bandwidth"], what + ".bandwidth"));
      if (!b) {
        fail(n["bandwidth"], what + ".bandwidth: " + b.error());
      }
      base.bandwidth_bytes_per_second = *b;
    }
    return base;
  }

  static std::chrono::microseconds netem_duration(const YAML::Node& n, const std::string& what) {
    auto d = netem::parse_duration(scalar(n, what));
    if (!d) {
      fail(n, what + ": " + d.error());
    }
    return *d;
  }

  void site(const YAML::Node& n, const std::string& what) const {
    const std::string name = scalar(n, what);
    if (std::find(s_.sites.begin(), s_.sites.end(), name) == s_.sites.end()) {
      fail(n, what + ": '" + name + "' is not a site of the scenario");
    }
  }
  std::string site_of(const YAML::Node& map, const std::string& what) const {
    site(map["site"], what + ".site");
    return map["site"].Scalar();
  }

  static std::pair<std::string, std::string> ordered(std::pair<std::string, std::string> p) {
    if (p.second < p.first) {
      std::swap(p.first, p.second);
    }
    return p;
  }

  std::pair<std::string, std::string> pair_of_dashed(const YAML::Node& n) const {
    const std::string text = scalar(n, "links.pairs");
    const std::size_t dash = text.find('-');
    // Site names may hold dashes: split where both halves are sites.
    for (std::size_t i = dash; i != std::string::npos; i = text.find('-', i + 1)) {
      const std::string a = text.substr(0, i);
      const std::string b = text.substr(i + 1);
      if (is_site(a) && is_site(b) && a != b) {
        return {a, b};
      }
    }
    fail(n, "links.pairs: '" + text + "' is not two sites of the scenario joined by '-'");
  }

  bool is_site(const std::string& name) const {
    return std::find(s_.sites.begin(), s_.sites.end(), name) != s_.sites.end();
  }

  std::vector<std::pair<std::string, std::string>> pairs_of(const YAML::Node& n,
                                                            const std::string& what) const {
    std::vector<std::pair<std::string, std::string>> out;
    if (n.IsScalar()) {  // every link of one site
      site(n, what);
      for (const std::string& other : s_.sites) {
        if (other != n.Scalar() && linked(s_, other, n.Scalar())) {
          out.emplace_back(n.Scalar(), other);
        }
      }
      return out;
    }
    if (!n.IsSequence() || n.size() != 2) {
      fail(n, what + ": expected a site (all its links) or two sites [a, b]");
    }
    site(n[0], what + "[0]");
    site(n[1], what + "[1]");
    if (n[0].Scalar() == n[1].Scalar()) {
      fail(n, what + ": a link joins two different sites");
    }
    if (!linked(s_, n[0].Scalar(), n[1].Scalar())) {
      fail(n, what + ": no link between " + n[0].Scalar() + " and " + n[1].Scalar() +
                  " in a star around " + s_.hub);
    }
    out.emplace_back(n[0].Scalar(), n[1].Scalar());
    return out;
  }

  static ObjectRef object_ref(const YAML::Node& n, const std::string& what) {
    const std::string text = scalar(n, what);
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, '/');) {
      parts.push_back(part);
    }
    const kube::ResourceType* type = nullptr;
    if (!parts.empty()) {
      for (const kube::ResourceType& t : kube::resource_types()) {
        if (t.plural == parts[0]) {
          type = &t;
        }
      }
    }
    if (type == nullptr) {
      fail(n, what +
                  ": expected RESOURCE/NAMESPACE/NAME (configmaps/team-a/settings) or "
                  "namespaces/NAME, got '" +
                  text + "'");
    }
    if (type->namespaced && parts.size() == 3 && !parts[1].empty() && !parts[2].empty()) {
      return ObjectRef{parts[0], parts[1], parts[2]};
    }
    if (!type->namespaced && parts.size() == 2 && !parts[1].empty()) {
      return ObjectRef{parts[0], "", parts[1]};
    }
    fail(n, what + ": '" + text + "': " + std::string(type->plural) +
                (type->namespaced ? " are namespaced: RESOURCE/NAMESPACE/NAME"
                                  : " are not namespaced: RESOURCE/NAME"));
  }

  static PodRef pod_ref(const YAML::Node& n, const std::string& what) {
    const std::string text = scalar(n, what);
    const std::size_t slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
        text.find('/', slash + 1) != std::string::npos) {
      fail(n, what + ": expected NAMESPACE/NAME, got '" + text + "'");
    }
    return PodRef{text.substr(0, slash), text.substr(slash + 1)};
  }

  std::vector<std::string> site_list(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence() || n.size() == 0) {
      fail(n, what + ": expected a list of sites");
    }
    std::vector<std::string> out;
    for (const auto& s : n) {
      site(s, what + "[]");
      out.push_back(s.Scalar());
    }
    return out;
  }

  std::string scope(const YAML::Node& map, const std::string& what) const {
    std::string text = optional_scalar(map, "scope", what);
    if (!text.empty()) {
      auto parsed = dsl::parse_scope(text);
      if (!parsed) {
        fail(map["scope"], what + ".scope: " + parsed.error().render());
      }
    }
    return text;
  }

  Step parse_step(const YAML::Node& n) {
    if (!n.IsMap()) {
      fail(n, "steps[]: expected a map with one action (requests, write, cut, migrate, …)");
    }
    Step step;
    step.line = n.Mark().line + 1;
    std::string action;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (key == "name" || key == "at" || key == "long") {
        continue;
      }
      if (!action.empty()) {
        fail(kv.first, "a step has one action: '" + action + "' and '" + key + "'");
      }
      action = key;
    }
    if (action.empty()) {
      fail(n, "a step without an action (requests, write, cut, migrate, …)");
    }
    if (n["at"].IsDefined()) {
      step.at = duration(n["at"], "at");
    }
    if (n["long"].IsDefined()) {
      const std::string v = scalar(n["long"], "long");
      if (v != "true" && v != "false") {
        fail(n["long"], "long: expected true or false");
      }
      step.long_only = v == "true";
    }
    const YAML::Node a = n[action];
    step.action = parse_action(action, a);
    step.name = n["name"].IsDefined() ? scalar(n["name"], "name") : describe(action, a);
    return step;
  }

  static std::string describe(const std::string& action, const YAML::Node& a) {
    if (a.IsScalar()) {
      return action + " " + a.Scalar();
    }
    if (a.IsSequence()) {
      std::string out = action;
      for (const auto& item : a) {
        out += " " + (item.IsScalar() ? item.Scalar() : std::string("…"));
      }
      return out;
    }
    std::string out = action;
    for (const char* key : {"pod", "object", "site", "scope", "to", "mode", "path"}) {
      if (a[key].IsDefined() && a[key].IsScalar()) {
        out += " " + a[key].Scalar();
      }
    }
    return out;
  }

  Action parse_action(const std::string& action, const YAML::Node& a) {
    const std::string& w = action;
    if (action == "requests") {
      only_keys(a, w, {"site", "scope", "method", "path", "count", "expect_status"});
      Requests r;
      r.site = site_of(a, w);
      r.scope = scope(a, w);
      r.method = optional_scalar(a, "method", w, "GET");
      r.path = scalar(a["path"], w + ".path");
      if (!r.path.starts_with('/')) {
        fail(a["path"], w + ".path: expected an API path (/api/v1/…)");
      }
      if (a["count"].IsDefined()) {
        r.count = number(a["count"], w + ".count", 1, 1'000'000);
      }
      if (a["expect_status"].IsDefined()) {
        r.expect_status = number(a["expect_status"], w + ".expect_status", 100, 599);
      }
      return r;
    }
    if (action == "write") {
      only_keys(a, w, {"site", "scope", "object"});
      Write r{site_of(a, w), scope(a, w), json_object(a["object"], w + ".object")};
      const std::string api = r.object.contains("apiVersion") && r.object["apiVersion"].is_string()
                                  ? std::string(r.object["apiVersion"].as_string())
                                  : "";
      const std::string kind = r.object.contains("kind") && r.object["kind"].is_string()
                                   ? std::string(r.object["kind"].as_string())
                                   : "";
      if (kube::find_kind(api, kind) == nullptr) {
        fail(a["object"], w + ".object: apiVersion '" + api + "' kind '" + kind +
                              "' is not a kind the sites serve");
      }
      return r;
    }
    if (action == "edit") {
      only_keys(a, w, {"site", "object", "patch"});
      return Edit{site_of(a, w), object_ref(a["object"], w + ".object"),
                  json_object(a["patch"], w + ".patch")};
    }
    if (action == "delete") {
      only_keys(a, w, {"site", "object"});
      return Delete{site_of(a, w), object_ref(a["object"], w + ".object")};
    }
    if (action == "share") {
      only_keys(a, w, {"site", "object", "with"});
      return Share{site_of(a, w), object_ref(a["object"], w + ".object"),
                   site_list(a["with"], w + ".with")};
    }
    if (action == "cut" || action == "heal" || action == "stall" || action == "resume") {
      const auto kind = action == "cut"     ? LinkChange::Kind::kCut
                        : action == "heal"  ? LinkChange::Kind::kHeal
                        : action == "stall" ? LinkChange::Kind::kStall
                                            : LinkChange::Kind::kResume;
      return LinkChange{kind, pairs_of(a, w)};
    }
    if (action == "link") {
      only_keys(a, w, {"between", "latency", "jitter", "bandwidth"});
      auto pairs = pairs_of(a["between"], w + ".between");
      if (pairs.size() != 1) {
        fail(a["between"], w + ".between: expected two sites [a, b]");
      }
      return LinkShape{pairs[0], profile(a, w, link_profile(s_, pairs[0].first, pairs[0].second))};
    }
    if (action == "crash" || action == "restart") {
      site(a, w);
      if (action == "crash") {
        return Crash{a.Scalar()};
      }
      return Restart{a.Scalar()};
    }
    if (action == "pod") {
      only_keys(a, w, {"site", "pod", "workload", "annotations"});
      StartPod p{
          site_of(a, w), pod_ref(a["pod"], w + ".pod"), scalar(a["workload"], w + ".workload"), {}};
      if (p.workload != "cart" && p.workload != "counter" && p.workload != "api" &&
          p.workload != "memory") {
        fail(a["workload"], w + ".workload: expected cart, counter, api or memory");
      }
      if (const YAML::Node notes = a["annotations"]; notes.IsDefined()) {
        if (!notes.IsMap()) {
          fail(notes, w + ".annotations: expected a map");
        }
        for (const auto& kv : notes) {
          p.annotations[kv.first.Scalar()] = scalar(kv.second, w + ".annotations");
        }
      }
      return p;
    }
    if (action == "http") {
      only_keys(a, w, {"pod", "method", "path", "expect"});
      Http h{pod_ref(a["pod"], w + ".pod"), optional_scalar(a, "method", w, "GET"),
             scalar(a["path"], w + ".path"), optional_scalar(a, "expect", w)};
      return h;
    }
    if (action == "migrate") {
      only_keys(a, w, {"site", "pod", "to", "mode", "within"});
      Migrate m{site_of(a, w), pod_ref(a["pod"], w + ".pod"), "", "live"};
      site(a["to"], w + ".to");
      m.to = a["to"].Scalar();
      m.mode = optional_scalar(a, "mode", w, "live");
      if (m.mode != "cold" && m.mode != "warm" && m.mode != "live" && m.mode != "app") {
        fail(a["mode"], w + ".mode: expected cold, warm, live or app");
      }
      if (a["within"].IsDefined()) {
        m.within = duration(a["within"], w + ".within");
      }
      return m;
    }
    if (action == "converge") {
      only_keys(a, w, {"object", "sites", "within"});
      Converge c{object_ref(a["object"], w + ".object"), site_list(a["sites"], w + ".sites")};
      if (a["within"].IsDefined()) {
        c.within = duration(a["within"], w + ".within");
      }
      return c;
    }
    if (action == "absent") {
      only_keys(a, w, {"object", "site", "within"});
      Absent r{object_ref(a["object"], w + ".object"), site_of(a, w)};
      if (a["within"].IsDefined()) {
        r.within = duration(a["within"], w + ".within");
      }
      return r;
    }
    if (action == "running") {
      only_keys(a, w, {"pod", "site", "within"});
      Running r{pod_ref(a["pod"], w + ".pod"), site_of(a, w)};
      if (a["within"].IsDefined()) {
        r.within = duration(a["within"], w + ".within");
      }
      return r;
    }
    if (action == "peer_state") {
      only_keys(a, w, {"site", "peer", "state", "within"});
      PeerState p{site_of(a, w), "", scalar(a["state"], w + ".state")};
      site(a["peer"], w + ".peer");
      p.peer = a["peer"].Scalar();
      if (p.state != "Reachable" && p.state != "Suspected" && p.state != "Down") {
        fail(a["state"], w + ".state: expected Reachable, Suspected or Down");
      }
      if (a["within"].IsDefined()) {
        p.within = duration(a["within"], w + ".within");
      }
      return p;
    }
    if (action == "metric") {
      only_keys(a, w, {"site", "name", "min", "max", "increase", "within"});
      Metric m{site_of(a, w), scalar(a["name"], w + ".name")};
      for (auto [key, field] : {std::pair{"min", &m.min}, std::pair{"max", &m.max},
                                std::pair{"increase", &m.increase}}) {
        if (a[key].IsDefined()) {
          *field = real(a[key], w + "." + key);
        }
      }
      if (!m.min && !m.max && !m.increase) {
        fail(a, w + ": give min, max or increase");
      }
      if (a["within"].IsDefined()) {
        m.within = duration(a["within"], w + ".within");
      }
      return m;
    }
    if (action == "wait") {
      return Wait{duration(a, w)};
    }
    fail(a,
         "unknown action '" + action +
             "' (requests, write, edit, delete, share, cut, heal, stall, resume, link, crash, "
             "restart, pod, http, migrate, converge, absent, running, peer_state, metric, wait)");
  }

  Scenario& s_;
};

}  // namespace

std::string ObjectRef::text() const {
  return namespace_name.empty() ? resource + "/" + name
                                : resource + "/" + namespace_name + "/" + name;
}

std::string ObjectRef::path() const {
  for (const kube::ResourceType& t : kube::resource_types()) {
    if (t.plural != resource) {
      continue;
    }
    std::string out = t.group.empty()
                          ? std::string("/api/v1")
                          : "/apis/" + std::string(t.group) + "/" + std::string(t.version);
    if (t.namespaced) {
      out += "/namespaces/" + namespace_name;
    }
    return out + "/" + resource + "/" + name;
  }
  return {};
}

std::string ScenarioError::render() const {
  return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
}

bool linked(const Scenario& s, const std::string& a, const std::string& b) {
  return a != b && (s.hub.empty() || a == s.hub || b == s.hub);
}

netem::LinkProfile link_profile(const Scenario& s, const std::string& a, const std::string& b) {
  auto it = s.pair_links.find(a < b ? std::make_pair(a, b) : std::make_pair(b, a));
  return it == s.pair_links.end() ? s.links : it->second;
}

boost::system::result<Scenario, ScenarioError> parse_scenario(std::string_view yaml,
                                                              const std::filesystem::path& file) {
  Scenario s;
  s.source = file;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      return ScenarioError{file.string(), 0, "expected a map (name, sites, links, steps)"};
    }
    Parser(s).parse(root);
  } catch (const yaml_fields::Failure& f) {
    return ScenarioError{file.string(), f.line, f.message};
  } catch (const YAML::Exception& e) {
    return ScenarioError{file.string(), e.mark.line + 1, e.msg};
  }
  return s;
}

boost::system::result<Scenario, ScenarioError> load_scenario(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return ScenarioError{file.string(), 0, "cannot read it"};
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_scenario(text.str(), file);
}

}  // namespace archipel::sim
