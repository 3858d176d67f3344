#pragma once

// Running a request on another site: the receiving site forwards it over the peer channel
// (method "kube.request") to that site's archipel, which runs it on its own Kubernetes and
// streams the answer back. The serving side never looks at scopes: a forwarded request runs
// where it lands.

#include "archipel/peer/peer_node.hpp"
#include "archipel/proxy/answer.hpp"
#include "archipel/proxy/upstream.hpp"

#include <memory>
#include <string>

namespace archipel::proxy {

inline constexpr std::string_view kKubeMethod = "kube.request";

/// Serves kube.request on `node` from now on: each request runs on `upstream`.
void serve_remote_requests(peer::PeerNode& node, std::shared_ptr<Upstream> upstream);

/// Runs `request` on `site` through `node`. Fails at once when the site is not connected.
boost::asio::awaitable<SiteResult<std::unique_ptr<Answer>>> send_remote(peer::PeerNode& node,
                                                                        std::string site,
                                                                        ForwardRequest request);

}  // namespace archipel::proxy
