#pragma once
// A simulation scenario (sim/scenarios/*.yaml): the sites, the links between them, and a
// timeline of steps — requests, writes, sharing, faults, migrations — some of which check an
// expectation. Parsing only: every mistake is found before a site starts, with its line.
// The format is documented in docs/simulation.md.

#include "archipel/netem/link_emulator.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace archipel::sim {

using Millis = std::chrono::milliseconds;

/// An object of a site's Kubernetes: "configmaps/team-a/settings" (namespaced) or
/// "namespaces/team-a".
struct ObjectRef {
  std::string resource;  ///< plural
  std::string namespace_name;
  std::string name;
  [[nodiscard]] std::string text() const;
  /// Its path on the Kubernetes API ("/api/v1/namespaces/team-a/configmaps/settings").
  [[nodiscard]] std::string path() const;
};

/// A pod of the scenario: "shop/cart".
struct PodRef {
  std::string namespace_name;
  std::string name;
  [[nodiscard]] std::string text() const { return namespace_name + "/" + name; }
};

// ---- steps ----

/// Requests through a site's front door, with a scope; their latencies go to the report under
/// the scope. Each must answer `expect_status` (any 2xx when 0).
struct Requests {
  std::string site;
  std::string scope;  ///< "" : the site alone
  std::string method = "GET";
  std::string path;
  unsigned count = 1;
  unsigned expect_status = 0;
};
/// Creates an object through a site's front door, with a scope (the sites it is created on).
struct Write {
  std::string site;
  std::string scope;
  boost::json::object object;
};
/// A merge patch of an object at one site (its own Kubernetes, no scope).
struct Edit {
  std::string site;
  ObjectRef object;
  boost::json::object patch;
};
/// Deletes an object at one site.
struct Delete {
  std::string site;
  ObjectRef object;
};
/// Shares an object or a namespace from a site with others (archipel share).
struct Share {
  std::string site;
  ObjectRef object;  ///< namespaces/NAME for a whole namespace
  std::vector<std::string> with;
};
/// A fault or a repair of the links between two sites, or of every link of one site.
struct LinkChange {
  enum class Kind { kCut, kHeal, kStall, kResume };
  Kind kind;
  std::vector<std::pair<std::string, std::string>> pairs;
};
/// New latency, jitter or bandwidth on the links between two sites.
struct LinkShape {
  std::pair<std::string, std::string> pair;
  netem::LinkProfile profile;
};
/// Kills a site's process (SIGKILL), or starts it again (same data).
struct Crash {
  std::string site;
};
struct Restart {
  std::string site;
};
/// Starts a workload (a program of tests/workloads: cart, counter, api) as a pod at a site.
struct StartPod {
  std::string site;
  PodRef pod;
  std::string workload;
  std::map<std::string, std::string> annotations;
};
/// One HTTP request to a workload's port; the body must contain `expect` (when given).
struct Http {
  PodRef pod;
  std::string method = "GET";
  std::string path;
  std::string expect;
};
/// A planned migration (a Migration made at `site`); expected to succeed within `within`.
struct Migrate {
  std::string site;
  PodRef pod;
  std::string to;
  std::string mode = "live";
  Millis within{60'000};
};
// ---- checks ----
/// The object holds the same data, labels and annotations at every site named, within
/// `within` (the time it took is the object's convergence time in the report).
struct Converge {
  ObjectRef object;
  std::vector<std::string> sites;
  Millis within{2000};
};
/// The object does not exist at the site (any more, within `within`).
struct Absent {
  ObjectRef object;
  std::string site;
  Millis within{0};
};
/// The pod runs at the site within `within` (a cart or an api: and answers its /healthz).
struct Running {
  PodRef pod;
  std::string site;
  Millis within{20'000};
};
/// `site`'s failure detector holds `peer` in `state` (Reachable, Suspected, Down) within
/// `within`.
struct PeerState {
  std::string site;
  std::string peer;
  std::string state;
  Millis within{5000};
};
/// A sample of a site's /metrics (`name` as it is printed, labels included) reaches `min`,
/// stays at most `max`, or grows by `increase` from when the step starts, within `within`.
struct Metric {
  std::string site;
  std::string name;
  std::optional<double> min;
  std::optional<double> max;
  std::optional<double> increase;
  Millis within{10'000};
};
struct Wait {
  Millis duration{0};
};

using Action =
    std::variant<Requests, Write, Edit, Delete, Share, LinkChange, LinkShape, Crash, Restart,
                 StartPod, Http, Migrate, Converge, Absent, Running, PeerState, Metric, Wait>;

struct Step {
  std::string name;          ///< as the report shows it (given, or made from the action)
  std::optional<Millis> at;  ///< not before this time since the start
  bool long_only = false;    ///< skipped by a short run (`long: true`)
  int line = 0;
  Action action;
};

struct Scenario {
  std::string name;
  std::string description;
  std::vector<std::string> sites;
  /// Empty: every two sites are linked (full mesh); else a star: only this site and each
  /// other are (links.topology: star, links.hub).
  std::string hub;
  netem::LinkProfile links;                                                      ///< every pair
  std::map<std::pair<std::string, std::string>, netem::LinkProfile> pair_links;  ///< a<b
  Millis heartbeat{100};  ///< the sites' failure detectors
  std::vector<Step> steps;
  std::filesystem::path source;
};

struct ScenarioError {
  std::string file;
  int line = 0;  ///< 1-based; 0 for the whole file
  std::string message;
  [[nodiscard]] std::string render() const;
};

boost::system::result<Scenario, ScenarioError> load_scenario(const std::filesystem::path& file);
boost::system::result<Scenario, ScenarioError> parse_scenario(std::string_view yaml,
                                                              const std::filesystem::path& file);

/// Whether the scenario links `a` and `b` (every two sites, or the hub and each other).
[[nodiscard]] bool linked(const Scenario& s, const std::string& a, const std::string& b);

/// The profile of the link between `a` and `b` (either order).
[[nodiscard]] netem::LinkProfile link_profile(const Scenario& s, const std::string& a,
                                              const std::string& b);

}  // namespace archipel::sim
