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

  // The site's components (embedded cluster, peer channel, proxy, sharing, migration) start
  // here as their issues land; the site then runs until SIGINT or SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::info("site running; stop with SIGINT or SIGTERM");
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("stopping on signal {}", received);
  return kExitOk;
}

}  // namespace archipel::cli
