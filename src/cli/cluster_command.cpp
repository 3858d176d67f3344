#include "archipel/base/log.hpp"
#include "archipel/cluster/api_server.hpp"
#include "archipel/cluster/deployment_controller.hpp"
#include "archipel/cluster/pod_runtime.hpp"
#include "archipel/site/config.hpp"
#include "cli/commands.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>
#include <thread>

namespace archipel::cli {

int serve_embedded_cluster(const EmbeddedCluster& c,
                           const std::function<bool(std::uint16_t)>& on_listening) {
  const site::Endpoint& listen = c.listen;
  const std::filesystem::path& data = c.data;
  auto store = cluster::ObjectStore::open(data / "cluster");
  if (!store) {
    spdlog::error("embedded cluster: {}", store.error());
    return kExitFailed;
  }
  cluster::PodRuntime::Options runtime_options;
  runtime_options.dir = data / "pods";
  auto runtime = cluster::PodRuntime::start(**store, runtime_options);
  cluster::KubeApi::Options api_options;
  api_options.log_path = [&runtime](std::string_view ns, std::string_view pod,
                                    std::string_view container) {
    return runtime->log_path(ns, pod, container);
  };
  api_options.container_running = [&runtime](std::string_view ns, std::string_view pod,
                                             std::string_view container) {
    return runtime->running(ns, pod, container);
  };
  api_options.graceful_pod_deletion = true;
  api_options.max_body_bytes = c.max_body_bytes;
  cluster::KubeApi api(**store, api_options);
  auto deployments = cluster::DeploymentController::start(api);
  boost::asio::io_context io;
  cluster::ApiServer::Options options;
  options.host = listen.host;
  options.port = listen.port;
  options.tls_cert_file = c.tls_cert.string();
  options.tls_key_file = c.tls_key.string();
  options.bookmark_interval = std::chrono::seconds(std::max(1u, c.bookmark_seconds));
  auto server = cluster::ApiServer::start(io, api, options);
  if (!server) {
    spdlog::error("embedded cluster: {}", server.error());
    return kExitFailed;
  }
  spdlog::info("embedded cluster: serving the Kubernetes API on {}://{}:{}, data in {}",
               c.tls_cert.empty() ? "http" : "https", listen.host, (*server)->port(),
               data.string());
  if (!on_listening((*server)->port())) {
    (*server)->stop();
    return kExitFailed;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) {
      spdlog::info("stopping on signal {}", signal);
      (*server)->stop();
      io.stop();
    }
  });
  // Two threads: a long request (a big list) does not stall every other client.
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  return kExitOk;
}

int cluster(const ClusterOptions& o) {
  auto listen = site::parse_endpoint(o.listen);
  if (!listen) {
    std::cerr << "archipel: --listen: " << listen.error() << "\n";
    return kExitUsage;
  }
  base::init_logging("", *base::parse_log_level(o.log_level));
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    std::cerr << "archipel: --tls-cert and --tls-key go together\n";
    return kExitUsage;
  }
  EmbeddedCluster c{*listen, o.data, o.max_body_bytes, o.tls_cert, o.tls_key, o.bookmark_seconds};
  return serve_embedded_cluster(c, [&](std::uint16_t port) {
    std::cout << "listening on " << listen->host << ":" << port << std::endl;
    return true;
  });
}

}  // namespace archipel::cli
