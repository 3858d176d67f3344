#pragma once
// What a simulation run saw: its events, the states of sites, peers and links over time, the
// latencies of requests per scope, convergence times of shared objects, migrations, and the
// scenario's expectations. Written as JSON (every figure) and as one self-contained HTML page
// with plots (inline SVG, no script, no network). How to read it: docs/simulation.md.

#include <boost/json/value.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace archipel::sim {

struct Report {
  std::string scenario;
  std::string description;
  std::string source;      ///< the scenario file
  std::string started_at;  ///< RFC 3339
  double duration_s = 0;
  bool short_run = false;
  std::vector<std::string> sites;

  /// One step of the timeline as it ran.
  struct Step {
    std::string name;
    int line = 0;
    double start_s = 0;
    double end_s = 0;
    bool skipped = false;  ///< a long-only step in a short run
    bool ok = true;
    std::string detail;
  };
  std::vector<Step> steps;

  /// The sites as sampled by the runner (every few hundred ms).
  struct Sample {
    double t_s = 0;
    std::map<std::string, bool> site_up;  ///< the front door answered /readyz
    /// "viewer>peer" → Reachable, Suspected or Down, as the viewer's detector says.
    std::map<std::string, std::string> peer_state;
    /// "a-b" (a < b) → up, cut or stalled.
    std::map<std::string, std::string> link_state;
  };
  std::vector<Sample> samples;

  /// Request latencies in ms, by scope ("" : the receiving site alone, shown as ".").
  std::map<std::string, std::vector<double>> latencies_ms;
  std::map<std::string, unsigned> request_failures;  ///< by scope

  struct Convergence {
    std::string object;
    std::vector<std::string> sites;
    double ms = 0;  ///< until identical at every site (or the bound, when it did not happen)
    double within_ms = 0;
    bool converged = false;
  };
  std::vector<Convergence> convergence;

  struct Migration {
    std::string name;
    std::string pod;
    std::string from;
    std::string to;
    std::string mode;
    std::string strategy;
    std::string phase;
    double downtime_ms = 0;
    double image_bytes = 0;
    std::vector<std::pair<std::string, double>> steps;  ///< name, ms since the start
    std::string message;
  };
  std::vector<Migration> migrations;

  /// Bytes carried per link ("a-b") over the run.
  std::map<std::string, double> link_bytes;

  struct Expectation {
    std::string step;
    int line = 0;
    bool ok = false;
    std::string detail;
  };
  std::vector<Expectation> expectations;

  [[nodiscard]] bool passed() const;
  [[nodiscard]] boost::json::value to_json() const;
  [[nodiscard]] std::string to_html() const;
};

/// Now, as Kubernetes writes times ("2026-11-25T08:10:46Z").
std::string utc_now_rfc3339();

}  // namespace archipel::sim
