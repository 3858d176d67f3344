#pragma once

// The site's front door (`listen.api`): an HTTP/1.1 server speaking the Kubernetes API. So far
// it serves what the site itself knows — the Sites API (sites.hpp), Prometheus metrics on
// /metrics, /healthz /livez /readyz — and answers every other path with a Kubernetes 404
// Status; scoped execution on the sites' clusters comes with the proxy (issue #5).
// Asio types stay out of this header.

#include "archipel/proxy/sites.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace archipel::proxy {

class FrontDoor {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  ///< 0: any free port (see port())
    std::chrono::seconds idle_timeout{120};
    std::size_t max_header_bytes = 64 * 1024;
    std::size_t max_body_bytes = 3 * 1024 * 1024;
  };
  /// What the front door serves; each must outlive it.
  struct Services {
    SiteDirectory* sites = nullptr;
    /// The body of /metrics (Prometheus text).
    std::function<std::string()> metrics;
    /// Whether the site is ready for traffic (/readyz; /livez and /healthz only need the
    /// process to answer).
    std::function<bool()> ready = [] { return true; };
  };

  /// Binds and starts accepting on `io`; each connection runs on its own strand.
  static boost::system::result<std::unique_ptr<FrontDoor>, std::string> start(
      boost::asio::io_context& io, const Options& options, Services services);

  /// Stops accepting and closes every connection.
  virtual ~FrontDoor() = default;

  [[nodiscard]] virtual std::uint16_t port() const = 0;
};

}  // namespace archipel::proxy
