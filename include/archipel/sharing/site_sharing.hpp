#pragma once

// A site's sharing as one piece: the sharing service and the bridge to the site's Kubernetes,
// wired to each other (the bridge reports to the service, the service writes through the
// bridge and tells it which groups to follow).

#include "archipel/sharing/bridge.hpp"
#include "archipel/sharing/service.hpp"

#include <memory>
#include <mutex>

namespace archipel::sharing {

class SiteSharing {
 public:
  /// Starts both on `io`; `node` and `store` must outlive the result.
  static std::unique_ptr<SiteSharing> start(boost::asio::io_context& io, peer::PeerNode& node,
                                            RecordStore& store, std::shared_ptr<KubeClient> kube,
                                            SchemaOf schema, SharingService::Options service,
                                            Bridge::Options bridge);

  /// Stops the service, then the bridge.
  ~SiteSharing();

  SiteSharing(const SiteSharing&) = delete;
  SiteSharing& operator=(const SiteSharing&) = delete;

  SharingService& service() noexcept { return *service_; }
  Bridge& bridge() noexcept { return *bridge_; }

 private:
  SiteSharing() = default;

  SharingService& started_service();

  std::unique_ptr<Bridge> bridge_;
  std::mutex starting_;  // held until service_ is set: the bridge's first reports wait for it
  std::unique_ptr<SharingService> service_;
};

}  // namespace archipel::sharing
