#pragma once

// The site's Kubernetes as the sharing bridge sees it (sharing::KubeClient), over the proxy's
// pooled client of the local cluster (Upstream).

#include "archipel/proxy/upstream.hpp"
#include "archipel/sharing/bridge.hpp"

#include <chrono>
#include <memory>

namespace archipel::proxy {

/// Requests time out after `timeout` (watches do not); answers larger than 64 MiB fail.
[[nodiscard]] std::shared_ptr<sharing::KubeClient> kube_client(
    std::shared_ptr<Upstream> upstream,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace archipel::proxy
