#pragma once
// Application-level migration (`archipel.io/migrate: app`): the pod's process serves its own
// state, GET /checkpoint, and takes it back, POST /restore with that body, on the port its
// container declares (pods run on the site's host network). Blocking.

#include "archipel/migrate/pod_move.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace archipel::migrate {

struct AppEndpoint {
  std::uint16_t port = 0;
};

/// Where the pod's application serves its state: the first containerPort of its container.
/// An error when the pod is not annotated `archipel.io/migrate: app` or declares no port.
boost::system::result<AppEndpoint, std::string> app_endpoint(const boost::json::object& pod);

/// Reads the state of the pod's application, then deletes the pod and waits until it is gone
/// (its process with it), so that nothing changes the state afterwards. If the pod cannot be
/// deleted, it goes on and the error says so.
boost::system::result<std::string, std::string> take_app_state(PodSite& site, const std::string& ns,
                                                               const std::string& pod,
                                                               std::uint16_t port);

/// Creates `pod` (a new copy of the application, started afresh by the site's runtime) and
/// waits until its container runs.
boost::system::result<void, std::string> start_app_copy(PodSite& site,
                                                        const boost::json::object& pod,
                                                        std::uint16_t port,
                                                        std::chrono::milliseconds timeout);

/// Hands `state` to the application listening on `port` (POST /restore), retrying while it is
/// not yet listening.
boost::system::result<void, std::string> put_app_state(std::uint16_t port,
                                                       const std::string& state);

/// A move that failed after take_app_state: `source_pod` is created again at `site` and gets
/// `state` back.
boost::system::result<void, std::string> give_app_back(PodSite& site,
                                                       const boost::json::object& source_pod,
                                                       const std::string& state,
                                                       std::uint16_t port);

}  // namespace archipel::migrate
