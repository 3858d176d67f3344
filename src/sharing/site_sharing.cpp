#include "archipel/sharing/site_sharing.hpp"

namespace archipel::sharing {

std::unique_ptr<SiteSharing> SiteSharing::start(boost::asio::io_context& io, peer::PeerNode& node,
                                                RecordStore& store,
                                                std::shared_ptr<KubeClient> kube, SchemaOf schema,
                                                SharingService::Options service,
                                                Bridge::Options bridge) {
  std::unique_ptr<SiteSharing> s(new SiteSharing());
  SiteSharing* self = s.get();
  const std::lock_guard starting(s->starting_);
  // The bridge reports only for groups it follows, which the service names once started.
  s->bridge_ = Bridge::start(
      io, std::move(kube), std::move(bridge),
      [self](const std::string& group, const ObjectKey& key,
             std::optional<boost::json::object> observed) {
        self->started_service().local_change(group, key, std::move(observed));
      },
      [self](const std::string& group, const std::string& prefix,
             std::vector<std::pair<ObjectKey, boost::json::object>> items) {
        self->started_service().local_snapshot(group, prefix, std::move(items));
      });
  SharingService::Hooks hooks;
  hooks.write = [self](const std::string& group, const LocalWrite& w) {
    self->bridge_->write(group, w);
  };
  hooks.joined = [self](const std::string& group) { self->bridge_->follow(group); };
  hooks.left = [self](const std::string& group) { self->bridge_->unfollow(group); };
  s->service_ = SharingService::start(io, node, store, std::move(schema), std::move(service),
                                      std::move(hooks));
  return s;
}

SharingService& SiteSharing::started_service() {
  const std::lock_guard started(starting_);  // uncontended once start() has returned
  return *service_;
}

SiteSharing::~SiteSharing() {
  service_.reset();
  bridge_.reset();
}

}  // namespace archipel::sharing
