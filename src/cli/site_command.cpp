#include "archipel/base/log.hpp"
#include "archipel/base/prometheus.hpp"
#include "archipel/migrate/migrations.hpp"
#include "archipel/peer/metrics.hpp"
#include "archipel/peer/peer_node.hpp"
#include "archipel/proxy/front_door.hpp"
#include "archipel/proxy/kube_client.hpp"
#include "archipel/proxy/metrics.hpp"
#include "archipel/proxy/proxy.hpp"
#include "archipel/proxy/remote.hpp"
#include "archipel/proxy/sites.hpp"
#include "archipel/proxy/upstream.hpp"
#include "archipel/sharing/metrics.hpp"
#include "archipel/sharing/schema.hpp"
#include "archipel/sharing/site_sharing.hpp"
#include "archipel/sharing/store.hpp"
#include "archipel/site/config.hpp"
#include "cli/commands.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>
#include <vector>

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
// has an identity), the Sites API fed by it, the scoped proxy to this site's Kubernetes
// (`cluster_url`) and to the other sites, sharing (with the peer channel: its groups, their
// store, the bridge to this site's Kubernetes and the SharedObjects API), and the front door
// serving them, /metrics and the health endpoints. Stopped in reverse order when the site stops.
class SiteServices {
 public:
  int start(const site::SiteConfig& config, const std::string& cluster_url) {
    std::vector<proxy::SiteDirectory::Peer> directory_peers;
    if (!config.identity.empty()) {
      if (const int code = start_peer_channel(config); code != kExitOk) {
        return code;
      }
    }
    if (const int code = start_proxy(config, cluster_url); code != kExitOk) {
      return code;
    }
    if (node_) {
      if (const int code = start_sharing(config); code != kExitOk) {
        return code;
      }
    }
    if (node_ && config.cluster.mode == site::ClusterConfig::Mode::kEmbedded) {
      start_migrations(config);
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
    options.tls_cert_file = config.api_tls_cert_file.string();
    options.tls_key_file = config.api_tls_key_file.string();
    options.threads = threads_wanted_;
    proxy::FrontDoor::Services services;
    services.sites = directory_.get();
    services.proxy = proxy_.get();
    if (migrations_) {
      services.migrations = [this](const proxy::FrontDoor::ResourceRequest& r)
          -> boost::system::result<proxy::FrontDoor::ResourceReply, kube::Status> {
        auto answer = migrations_->handle(r.method, r.ns, r.name, r.query, r.body, r.as_table);
        if (!answer) {
          return answer.error();
        }
        return proxy::FrontDoor::ResourceReply{answer->code, std::move(answer->body)};
      };
    }
    services.shared = shared_objects_.get();
    services.on_request = [this](std::string_view method, std::string_view target,
                                 const proxy::RequestRecord& record,
                                 std::chrono::nanoseconds took) {
      proxy_metrics_.record(record, took);
      if (!spdlog::should_log(spdlog::level::info)) {
        return;  // the access log is off: do not build its line
      }
      std::string sites;
      for (const std::string& s : record.sites) {
        sites += (sites.empty() ? "" : ",") + s;
      }
      std::string failed;
      for (const std::string& s : record.failed) {
        failed += (failed.empty() ? "" : ",") + s;
      }
      spdlog::info("{} {} {} verb={} sites=[{}] failed=[{}]{} {:.1f}ms{}{}", method, target,
                   record.code, record.verb, sites, failed, record.failed_over ? " failover" : "",
                   std::chrono::duration<double, std::milli>(took).count(),
                   record.user.empty() ? "" : " user=", record.user);
    };
    services.metrics = [this] {
      base::PrometheusText text;
      if (node_) {
        peer::render_metrics(*node_, text);
      }
      proxy_metrics_.render(text);
      if (sharing_) {
        sharing::render_metrics(sharing_->service(), sharing_->bridge(), text);
      }
      if (migrations_) {
        migrations_->render_metrics(text);
      }
      return text.take();
    };
    auto door = proxy::FrontDoor::start(io_, options, std::move(services));
    if (!door) {
      spdlog::error("front door: {}", door.error());
      return kExitFailed;
    }
    front_door_ = std::move(*door);
    spdlog::info(
        "front door: listening on {}:{} (scoped Kubernetes API, sites API, /metrics, "
        "/healthz)",
        config.api.host, front_door_->port());
    directory_ready_ = true;
    for (unsigned i = 0; i < threads_wanted_; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    return kExitOk;
  }

  ~SiteServices() {
    front_door_.reset();
    migrations_.reset();
    shared_objects_.reset();
    sharing_.reset();  // waits for its strand: the io_context still runs
    records_.reset();
    node_.reset();
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

 private:
  int start_proxy(const site::SiteConfig& config, const std::string& cluster_url) {
    proxy::Upstream::Options upstream;
    upstream.url = cluster_url;
    const site::ClusterConfig& c = config.cluster;
    if (c.mode == site::ClusterConfig::Mode::kEmbedded) {
      // Our own process on loopback, with the certificate it serves (often self-signed).
      upstream.insecure_skip_tls_verify = true;
    } else {
      if (!c.token_file.empty()) {
        auto token = site::read_token_file(c.token_file);
        if (!token) {
          std::cerr << "archipel: cannot read cluster.token_file " << c.token_file.string() << "\n";
          return kExitUsage;
        }
        upstream.bearer_token = *token;
      }
      upstream.ca_file = c.ca_file.string();
      upstream.client_cert_file = c.client_cert_file.string();
      upstream.client_key_file = c.client_key_file.string();
      upstream.insecure_skip_tls_verify = c.insecure_skip_tls_verify;
    }
    auto local = proxy::Upstream::create(io_, upstream);
    if (!local) {
      std::cerr << "archipel: cluster: " << local.error() << "\n";
      return kExitUsage;
    }
    local_ = std::shared_ptr<proxy::Upstream>(std::move(*local));
    if (node_) {
      proxy::serve_remote_requests(*node_, local_);
    }
    proxy::Proxy::Options options;
    options.site = config.name;
    for (const site::ClientTokenConfig& t : config.client_tokens) {
      options.tokens.push_back({t.token, t.user, t.sites});
    }
    proxy::Proxy::Sites sites;
    sites.local = local_;
    sites.peers = node_.get();
    // A create scoped `a & b` of a shared kind: the object is shared by those sites.
    sites.created_together = [this](const std::string& resource, const std::string& ns,
                                    const std::string& name,
                                    const std::vector<std::string>& where) {
      if (sharing_ &&
          std::find(shared_kinds_.begin(), shared_kinds_.end(), resource) != shared_kinds_.end()) {
        sharing_->service().share_among(sharing::group_id(resource, ns, name), where);
      }
    };
    std::vector<std::string> peer_names;
    for (const site::PeerConfig& p : config.peers) {
      peer_names.push_back(p.name);
    }
    sites.view = [this, name = config.name, peer_names] {
      std::vector<dsl::SiteView::Site> peers;
      const auto status = node_ ? node_->status() : std::vector<peer::PeerStatus>();
      for (const std::string& p : peer_names) {
        bool reachable = false;
        for (const peer::PeerStatus& s : status) {
          reachable =
              reachable || (s.name == p && s.connected && s.state != peer::PeerState::kDown);
        }
        peers.push_back({p, reachable});
      }
      return dsl::SiteView(name, std::move(peers));
    };
    proxy_ = std::make_unique<proxy::Proxy>(std::move(options), std::move(sites));
    return kExitOk;
  }

  int start_sharing(const site::SiteConfig& config) {
    auto records = sharing::RecordStore::open(config.data_dir);
    if (!records) {
      spdlog::error("sharing: {}", records.error());
      return kExitFailed;
    }
    records_ = std::move(*records);
    sharing::Bridge::Options bridge;
    if (!config.sharing.kinds.empty()) {
      bridge.shared_kinds = config.sharing.kinds;
    }
    bridge.local_fields = config.sharing.local_fields;
    shared_kinds_ = bridge.shared_kinds;
    const std::vector<std::string> kinds = shared_kinds_;
    sharing::SharingService::Options options;
    options.site = config.name;
    sharing_ = sharing::SiteSharing::start(io_, *node_, *records_, proxy::kube_client(local_),
                                           sharing::kube_list_shape, std::move(options),
                                           std::move(bridge));
    std::vector<std::string> sites{config.name};
    for (const site::PeerConfig& p : config.peers) {
      sites.push_back(p.name);
    }
    shared_objects_ = std::make_unique<proxy::SharedObjects>(sharing_->service(), config.name,
                                                             std::move(sites), kinds);
    spdlog::info("sharing: store in {}", config.data_dir.string());
    return kExitOk;
  }

  // Pods of the embedded cluster move to other sites (its runtime runs them as processes of
  // this machine, which CRIU checkpoints). The drivers reach the cluster through the proxy's
  // pooled client, from their own threads.
  void start_migrations(const site::SiteConfig& config) {
    migrate::Migrations::Options options;
    options.site = config.name;
    for (const site::PeerConfig& p : config.peers) {
      options.peers.push_back(p.name);
    }
    options.work = config.data_dir / "migrations";
    options.pods_dir = config.data_dir / "pods";
    auto client = proxy::kube_client(local_);
    migrate::KubeCall call =
        [this, client](
            const std::string& method, const std::string& target,
            const std::string& body) -> boost::system::result<migrate::KubeReply, std::string> {
      auto r =
          boost::asio::co_spawn(io_, client->request(method, target, body), boost::asio::use_future)
              .get();
      if (!r) {
        return r.error();
      }
      return migrate::KubeReply{r->status, std::move(r->body)};
    };
    migrations_ = migrate::Migrations::start(io_, *node_, std::move(call), std::move(options));
  }

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

  // Declared before the io_context, so destroyed after it: coroutines still pending in it when
  // the site stops (a Sites API watch holds a subscription to the directory) are destroyed with
  // it, and must find these alive.
  std::unique_ptr<proxy::SiteDirectory> directory_;
  std::atomic<bool> directory_ready_{false};
  proxy::ProxyMetrics proxy_metrics_;
  // Half the cores: the site's Kubernetes runs on the same machine. Measured on 2 cores
  // (bench/proxy_bench.sh): one thread proxies 19k GET/s, two threads 13k (cross-thread
  // wake-ups cost more than they give when the cluster and the client share the cores).
  const unsigned threads_wanted_ = std::max(1U, std::thread::hardware_concurrency() / 2);
  // The hint lets a single thread skip some of the scheduler's locking.
  boost::asio::io_context io_{static_cast<int>(threads_wanted_)};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::unique_ptr<peer::PeerNode> node_;
  std::shared_ptr<proxy::Upstream> local_;
  std::unique_ptr<proxy::Proxy> proxy_;
  std::vector<std::string> shared_kinds_;
  std::unique_ptr<sharing::RecordStore> records_;
  std::unique_ptr<sharing::SiteSharing> sharing_;
  std::unique_ptr<proxy::SharedObjects> shared_objects_;
  std::unique_ptr<migrate::Migrations> migrations_;
  std::unique_ptr<proxy::FrontDoor> front_door_;
  std::vector<std::thread> threads_;
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

  // The embedded cluster first (its port may be chosen by the system), then the peer channel,
  // the proxy and the front door in front of it.
  SiteServices services;
  if (config->cluster.mode == site::ClusterConfig::Mode::kEmbedded) {
    EmbeddedCluster c;
    c.listen = config->cluster.listen;
    c.data = config->data_dir;
    c.tls_cert = config->cluster.tls_cert_file;
    c.tls_key = config->cluster.tls_key_file;
    int services_code = kExitOk;
    const int code = serve_embedded_cluster(c, [&](std::uint16_t port) {
      const std::string url = std::string(c.tls_cert.empty() ? "http" : "https") + "://" +
                              site::Endpoint{c.listen.host, port}.to_string();
      services_code = services.start(*config, url);
      return services_code == kExitOk;
    });
    return services_code != kExitOk ? services_code : code;
  }
  // sigwait below needs the signals blocked in every thread, the services' included.
  const sigset_t signals = block_stop_signals();
  if (const int code = services.start(*config, config->cluster.url); code != kExitOk) {
    return code;
  }
  spdlog::info("site running with external cluster {}; stop with SIGINT or SIGTERM",
               config->cluster.url);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("stopping on signal {}", received);
  return kExitOk;
}

}  // namespace archipel::cli
