#pragma once

// Serves a KubeApi over HTTP/1.1 (keep-alive, chunked watch streams), the way kube-apiserver
// does for kubectl and client libraries. Asio types stay out of this header.

#include "archipel/cluster/api.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace archipel::cluster {

class ApiServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  ///< 0: any free port (see port())
    std::chrono::seconds idle_timeout{120};
    std::chrono::seconds bookmark_interval{60};
    /// Serve HTTPS with this PEM certificate chain and key (both, or neither: plain HTTP).
    std::string tls_cert_file;
    std::string tls_key_file;
  };

  /// Binds and starts accepting on `io`. `api` must outlive the server. Runs entirely on `io`'s
  /// threads; each connection has its own strand.
  static boost::system::result<std::unique_ptr<ApiServer>, std::string> start(
      boost::asio::io_context& io, KubeApi& api, const Options& options);

  virtual ~ApiServer() = default;

  /// The bound port.
  [[nodiscard]] virtual std::uint16_t port() const = 0;

  /// Stops accepting and closes every connection (watches end). Safe from any thread.
  virtual void stop() = 0;
};

}  // namespace archipel::cluster
