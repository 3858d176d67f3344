#pragma once

// The site's front door (`listen.api`): an HTTP/1.1 server speaking the Kubernetes API. It
// serves what the site itself knows — the Sites API (sites.hpp), Prometheus metrics on
// /metrics, /healthz /livez /readyz — and hands every other request to the scoped proxy
// (proxy.hpp), streaming its answer back; the archipel.io group is added to the clusters'
// discovery. Asio types stay out of this header.

#include "archipel/proxy/proxy.hpp"
#include "archipel/proxy/shared_objects.hpp"
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
    /// Serve HTTPS with this PEM certificate chain and key (both, or neither: plain HTTP).
    /// Clients send bearer tokens only over HTTPS.
    std::string tls_cert_file;
    std::string tls_key_file;
    /// How many threads run the io_context. With one, connections run on it directly; with
    /// more (or 0: unknown), each on its own strand, which costs about a fifth of a proxied
    /// request's CPU (bench/proxy_bench.sh).
    unsigned threads = 0;
  };
  /// A namespaced archipel.io resource the site serves itself (Migrations): one request, its
  /// JSON answer or a Kubernetes Status. `ns` is empty for a list across namespaces.
  struct ResourceRequest {
    std::string_view method;
    std::string_view ns;
    std::string_view name;
    std::string_view query;
    std::string_view body;
    bool as_table = false;
  };
  struct ResourceReply {
    unsigned code = 200;
    std::string body;
  };
  using ResourceHandler =
      std::function<boost::system::result<ResourceReply, kube::Status>(const ResourceRequest&)>;

  /// What the front door serves; each must outlive it.
  struct Services {
    SiteDirectory* sites = nullptr;
    /// The SharedObjects API; nullptr when the site shares nothing (no peer channel).
    const SharedObjects* shared = nullptr;
    /// The Migration API (/apis/archipel.io/v1/[namespaces/NS/]migrations[/NAME]); empty when
    /// the site cannot move pods.
    ResourceHandler migrations;
    /// Runs every other request; nullptr: they are answered 404.
    Proxy* proxy = nullptr;
    /// Called after each proxied request (metrics, access log) with its method and target; on
    /// the session's thread.
    std::function<void(std::string_view, std::string_view, const RequestRecord&,
                       std::chrono::nanoseconds)>
        on_request;
    /// The body of /metrics (Prometheus text).
    std::function<std::string()> metrics;
    /// Whether the site is ready for traffic (/readyz; /livez and /healthz only need the
    /// process to answer).
    std::function<bool()> ready = [] { return true; };
  };

  /// Binds and starts accepting on `io`.
  static boost::system::result<std::unique_ptr<FrontDoor>, std::string> start(
      boost::asio::io_context& io, const Options& options, Services services);

  /// Stops accepting and closes every connection.
  virtual ~FrontDoor() = default;

  [[nodiscard]] virtual std::uint16_t port() const = 0;
};

}  // namespace archipel::proxy
