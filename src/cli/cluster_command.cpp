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

int serve_embedded_cluster(const site::Endpoint& listen, const std::filesystem::path& data,
                           std::size_t max_body_bytes,
                           const std::function<void(std::uint16_t)>& on_listening) {
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
  api_options.max_body_bytes = max_body_bytes;
  cluster::KubeApi api(**store, api_options);
  auto deployments = cluster::DeploymentController::start(api);
  boost::asio::io_context io;
  cluster::ApiServer::Options options;
  options.host = listen.host;
  options.port = listen.port;
  auto server = cluster::ApiServer::start(io, api, options);
  if (!server) {
    spdlog::error("embedded cluster: {}", server.error());
    return kExitFailed;
  }
  spdlog::info("embedded cluster: serving the Kubernetes API on {}:{}, data in {}", listen.host,
               (*server)->port(), data.string());
  on_listening((*server)->port());

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
  return serve_embedded_cluster(*listen, o.data, o.max_body_bytes, [&](std::uint16_t port) {
    std::cout << "listening on " << listen->host << ":" << port << std::endl;
  });
}

}  // namespace archipel::cli
