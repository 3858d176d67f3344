#pragma once
// Plays a scenario against real sites (emulation): starts the federation, waits until every
// site sees every other, runs the steps in order (each not before its `at`), samples the sites'
// and links' states all along, and returns what it saw. A failed step is recorded and the run
// goes on: the report shows everything that happened.

#include "emulation/scenario.hpp"
#include "report/report.hpp"

#include <boost/system/result.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace archipel::sim {

struct RunOptions {
  std::filesystem::path archipel;   ///< the binary that runs a site
  std::filesystem::path workloads;  ///< where the cart, counter, api and memory programs are
  std::filesystem::path out;        ///< the sites' files (sites/) go here
  bool short_run = false;           ///< skip the steps marked `long: true`
  /// Called when a step starts (index from 0) and once more at the end (index == total).
  std::function<void(std::size_t index, std::size_t total, const std::string& step)> progress;
};

/// Errors are what prevented the run (the sites did not start, or never saw each other); what
/// went wrong during the run is in the report.
boost::system::result<Report, std::string> run_scenario(const Scenario& scenario,
                                                        const RunOptions& options);

}  // namespace archipel::sim
