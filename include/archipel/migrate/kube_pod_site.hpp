#pragma once
// A site's pods through its Kubernetes API (the embedded cluster: its runtime runs them as
// processes of this machine and keeps their logs under one directory), as a move needs them.

#include "archipel/migrate/pod_move.hpp"

#include <boost/system/result.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace archipel::migrate {

/// One request to the site's Kubernetes and its answer, read whole (blocking).
struct KubeReply {
  unsigned status = 0;
  std::string body;
};
using KubeCall = std::function<boost::system::result<KubeReply, std::string>(
    const std::string& method, const std::string& target, const std::string& body)>;

class KubePodSite final : public PodSite {
 public:
  /// `pods_dir`: where the site's runtime keeps its pods (their logs are
  /// pods_dir/NAMESPACE/POD/CONTAINER.log).
  KubePodSite(std::string name, KubeCall call, std::filesystem::path pods_dir);

  [[nodiscard]] std::string name() const override { return name_; }
  boost::system::result<boost::json::object, std::string> get_pod(const std::string& ns,
                                                                  const std::string& name) override;
  boost::system::result<void, std::string> put_pod(const boost::json::object& pod) override;
  boost::system::result<void, std::string> put_pod_status(
      const std::string& ns, const std::string& name, const boost::json::object& status) override;
  boost::system::result<void, std::string> delete_pod(const std::string& ns,
                                                      const std::string& name) override;
  [[nodiscard]] std::filesystem::path log_path(const std::string& ns, const std::string& pod,
                                               const std::string& container) const override;
  /// Every pod of the site.
  boost::system::result<std::vector<boost::json::object>, std::string> list_pods();

 private:
  boost::system::result<KubeReply, std::string> call(const std::string& method,
                                                     const std::string& target,
                                                     const std::string& body = {});

  std::string name_;
  KubeCall call_;
  std::filesystem::path pods_dir_;
};

}  // namespace archipel::migrate
