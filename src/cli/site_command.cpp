#include "archipel/base/log.hpp"
#include "archipel/site/config.hpp"
#include "cli/commands.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

namespace archipel::cli {

int site(const SiteOptions& o) {
  auto config = site::load_site_config(o.config);
  if (!config) {
    std::cerr << "archipel: invalid configuration: " << config.error().render() << "\n";
    return kExitUsage;
  }
  base::init_logging(config->name, config->log_level);
  std::string peers;
  for (const site::PeerConfig& p : config->peers) {
    peers += (peers.empty() ? "" : ", ") + p.name + "@" + p.address.to_string();
  }
  spdlog::info(
      "config {}: api {}, peer {}, cluster {} {}, data {}, peers [{}]", config->source.string(),
      config->api.to_string(), config->peer.to_string(),
      config->cluster.mode == site::ClusterConfig::Mode::kEmbedded ? "embedded" : "external",
      config->cluster.mode == site::ClusterConfig::Mode::kEmbedded
          ? config->cluster.listen.to_string()
          : config->cluster.url,
      config->data_dir.string(), peers);
  if (o.check_only) {
    std::cout << "configuration of site " << config->name << " is valid\n";
    return kExitOk;
  }

  // The site's components start here as their issues land: today, the embedded cluster.
  if (config->cluster.mode == site::ClusterConfig::Mode::kEmbedded) {
    EmbeddedCluster c;
    c.listen = config->cluster.listen;
    c.data = config->data_dir;
    c.tls_cert = config->cluster.tls_cert_file;
    c.tls_key = config->cluster.tls_key_file;
    return serve_embedded_cluster(c, [](std::uint16_t) {});
  }
  // An external kube-apiserver needs nothing local yet: the proxy (issue #5) will front it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::info("site running with external cluster {}; stop with SIGINT or SIGTERM",
               config->cluster.url);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("stopping on signal {}", received);
  return kExitOk;
}

}  // namespace archipel::cli
