#pragma once

// The SharedObjects API (archipel.io/v1, cluster-scoped), served by each site's front door
// from its sharing service: what this site shares, with whom, and how far each replica is.
//
//   GET    /apis/archipel.io/v1/sharedobjects[/NAME]   list or get (as a Table for kubectl)
//   POST   /apis/archipel.io/v1/sharedobjects          share: creates the group, or adds sites
//   PUT    /apis/archipel.io/v1/sharedobjects/NAME     sets the group's sites
//   DELETE /apis/archipel.io/v1/sharedobjects/NAME     stops sharing with every other site
//
// Sites removed (PUT, DELETE) keep their copies; with ?removedCopies=Delete they delete them.
//
// A SharedObject names what is shared in its spec: {resource: "namespaces", name: "team-a"}
// (the namespace's objects of the shared kinds) or {resource: "configmaps", namespace:
// "team-a", name: "app"} (one object), and with whom: sites. Its name is derived from that
// ("namespace.team-a", "configmaps.team-a.app"). Its status: objects, outbox, conflicts and,
// per replica, connected, acknowledged, behind (its lag, in deltas), lastSync.

#include "archipel/kube/status.hpp"
#include "archipel/sharing/service.hpp"

#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace archipel::proxy {

class SharedObjects {
 public:
  struct Reply {
    unsigned code = 200;
    std::string body;  ///< JSON
  };

  /// `service` must outlive it. `self`: this site; `sites`: every site of the federation
  /// (the others may be named); `shared_kinds`: what a shared namespace carries.
  SharedObjects(sharing::SharingService& service, std::string self, std::vector<std::string> sites,
                std::vector<std::string> shared_kinds);

  /// Serves `method` on the collection (`name` empty) or one SharedObject; `query` is the
  /// request's query string (without '?'). Errors are Kubernetes Statuses.
  [[nodiscard]] boost::system::result<Reply, kube::Status> handle(std::string_view method,
                                                                  std::string_view name,
                                                                  std::string_view query,
                                                                  std::string_view body,
                                                                  bool as_table) const;

 private:
  sharing::SharingService& service_;
  std::string self_;
  std::vector<std::string> sites_;
  std::vector<std::string> shared_kinds_;
};

/// The SharedObject name of group `id` ("namespace/team-a" → "namespace.team-a").
[[nodiscard]] std::string shared_object_name(std::string_view group);

}  // namespace archipel::proxy
