#pragma once

// The apps/v1 Deployment controller of the embedded cluster: keeps spec.replicas pods of the
// current template (owned through ownerReferences, labelled pod-template-hash), replaces pods
// one at a time when the template changes (surge 1, unavailable 0), and reports status. Like a
// Kubernetes controller it is an API client: it creates and deletes pods through KubeApi, so
// they pass the same validation and defaults as any user's.

#include "archipel/cluster/api.hpp"

#include <chrono>
#include <memory>

namespace archipel::cluster {

class DeploymentController {
 public:
  /// Starts the controller's thread. `api` (and its store) must outlive it.
  static std::unique_ptr<DeploymentController> start(
      KubeApi& api, std::chrono::milliseconds resync = std::chrono::seconds(1));
  virtual ~DeploymentController() = default;
};

}  // namespace archipel::cluster
