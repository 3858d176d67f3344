#pragma once
// What the studies share to run SimGrid (private to sim/simgrid): one simulation per child
// process (SimGrid's engine is a singleton that cannot be started twice in a process), its
// result handed back as JSON; and the engine's options.

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <string>

namespace archipel::sim::simgrid_run {

/// Runs `simulation` in a child process (it may create SimGrid's engine) and returns the JSON
/// it returned; the error says how the child failed.
boost::system::result<boost::json::value, std::string> in_child(
    const std::function<boost::json::value()>& simulation);

/// Creates the engine for this process: logs quiet, the CM02 network model without TCP
/// factors (latency and bandwidth as given), no cross-traffic.
void start_engine();

}  // namespace archipel::sim::simgrid_run
