#pragma once
// The studies at scale, each driving Archipel's sans-IO protocol cores with SimGrid actors:
// the failure detector (peer::PeerHealth) and the sharing protocol (sharing::GroupReplica).
// Deterministic for a study's seed.

#include "report/report.hpp"
#include "simgrid/study.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <string>
#include <vector>

namespace archipel::sim {

struct StudyOutcome {
  boost::json::object results;              ///< every figure
  std::string html;                         ///< the study's sections: plots and tables
  std::vector<Report::Expectation> checks;  ///< the study's checks, with what they saw
};

/// `progress(done, total, what)` is told of each simulation as it starts.
using StudyProgress = std::function<void(std::size_t, std::size_t, const std::string&)>;

StudyOutcome run_detection(const Study& study, const DetectionStudy& d, const StudyProgress& p);
StudyOutcome run_convergence(const Study& study, const ConvergenceStudy& c, const StudyProgress& p);

}  // namespace archipel::sim
