#include "archipel/base/log.hpp"
#include "archipel/base/prometheus.hpp"
#include "archipel/peer/metrics.hpp"
#include "archipel/peer/peer_node.hpp"
#include "archipel/proxy/front_door.hpp"
#include "archipel/proxy/sites.hpp"
#include "archipel/site/config.hpp"
#include "cli/commands.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

namespace archipel::cli {
namespace {

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// What a site runs beside its Kubernetes, on its own threads: the peer channel (when the site
// has an identity), the Sites API fed by it, and the front door serving that, /metrics and the
// health endpoints. Stopped in reverse order when the site stops.
class SiteServices {
 public:
  int start(const site::SiteConfig& config) {
    std::vector<proxy::SiteDirectory::Peer> directory_peers;
    if (!config.identity.empty()) {
      if (const int code = start_peer_channel(config); code != kExitOk) {
        return code;
      }
    }
    for (const site::PeerConfig& p : config.peers) {
      directory_peers.push_back({p.name, p.address.to_string(), p.public_key});
    }
    directory_ = std::make_unique<proxy::SiteDirectory>(
        config.name, config.peer.to_string(), std::move(directory_peers),
        [this]() -> proxy::SiteDirectory::Picture {
          if (!node_) {
            return {};
          }
          return {node_->status(), node_->isolated()};
        });
    proxy::FrontDoor::Options options;
    options.host = config.api.host;
    options.port = config.api.port;
    proxy::FrontDoor::Services services;
    services.sites = directory_.get();
    services.metrics = [this] {
      base::PrometheusText text;
      if (node_) {
        peer::render_metrics(*node_, text);
      }
      return text.take();
    };
    auto door = proxy::FrontDoor::start(io_, options, std::move(services));
    if (!door) {
      spdlog::error("front door: {}", door.error());
      return kExitFailed;
    }
    front_door_ = std::move(*door);
    spdlog::info("front door: listening on {}:{} (sites API, /metrics, /healthz)", config.api.host,
                 front_door_->port());
    directory_ready_ = true;
    thread_ = std::thread([this] { io_.run(); });
    return kExitOk;
  }

  ~SiteServices() {
    front_door_.reset();
    node_.reset();
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  int start_peer_channel(const site::SiteConfig& config) {
    auto identity = peer::Identity::load(config.identity);
    if (!identity) {
      std::cerr << "archipel: identity: " << identity.error() << "\n";
      return kExitUsage;
    }
    if (identity->site != config.name) {
      std::cerr << "archipel: " << config.identity.string() << " is the identity of site '"
                << identity->site << "', not '" << config.name << "'\n";
      return kExitUsage;
    }
    peer::PeerNode::Options options;
    options.identity = *identity;
    options.host = config.peer.host;
    options.port = config.peer.port;
    options.heartbeat = config.detector.heartbeat;
    options.detector.heartbeat_interval = config.detector.heartbeat;
    options.detector.suspect_phi = config.detector.suspect_phi;
    options.detector.down_phi = config.detector.down_phi;
    for (std::size_t i = 0; i < config.peers.size(); ++i) {
      const site::PeerConfig& p = config.peers[i];
      auto key = peer::decode_public_key(p.public_key);
      if (!key) {
        std::cerr << "archipel: invalid configuration: " << config.source.string() << ": peers["
                  << i << "].public_key: required when the site has an identity\n";
        return kExitUsage;
      }
      options.peers.push_back({p.name, p.address.host, p.address.port, *key});
    }
    // Runs on the peer channel's strand: a Sites API watch sees each change as it happens.
    options.on_change = [this] {
      if (directory_ready_) {
        directory_->refresh();
      }
    };
    auto node = peer::PeerNode::start(io_, std::move(options));
    if (!node) {
      spdlog::error("peer channel: {}", node.error());
      return kExitFailed;
    }
    node_ = std::move(*node);
    spdlog::info("peer channel: listening on {}:{} for {} peers", config.peer.host, node_->port(),
                 config.peers.size());
    return kExitOk;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::unique_ptr<peer::PeerNode> node_;
  std::unique_ptr<proxy::SiteDirectory> directory_;
  std::atomic<bool> directory_ready_{false};
  std::unique_ptr<proxy::FrontDoor> front_door_;
  std::thread thread_;
};

}  // namespace

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

  // The site's components start here as their issues land: the peer channel (when the site has
  // an identity), the front door, and the embedded cluster.
  if (config->cluster.mode != site::ClusterConfig::Mode::kEmbedded) {
    // sigwait below needs the signals blocked in every thread, the services' included.
    block_stop_signals();
  }
  SiteServices services;
  if (const int code = services.start(*config); code != kExitOk) {
    return code;
  }
  if (config->cluster.mode == site::ClusterConfig::Mode::kEmbedded) {
    EmbeddedCluster c;
    c.listen = config->cluster.listen;
    c.data = config->data_dir;
    c.tls_cert = config->cluster.tls_cert_file;
    c.tls_key = config->cluster.tls_key_file;
    return serve_embedded_cluster(c, [](std::uint16_t) {});
  }
  // An external kube-apiserver needs nothing local yet: the proxy (issue #5) will front it.
  const sigset_t signals = block_stop_signals();
  spdlog::info("site running with external cluster {}; stop with SIGINT or SIGTERM",
               config->cluster.url);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("stopping on signal {}", received);
  return kExitOk;
}

}  // namespace archipel::cli
