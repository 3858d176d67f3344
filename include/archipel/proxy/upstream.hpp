#pragma once

// The site's own Kubernetes API, as the proxy reaches it: the embedded cluster or an external
// kube-apiserver (URL, bearer token or client certificate, CA). Keep-alive connections are
// pooled; each request borrows one and gives it back when its answer has been read through.
// Of Asio, only awaitable is in this header.

#include "archipel/proxy/answer.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace archipel::proxy {

class Upstream {
 public:
  struct Options {
    std::string url;           ///< "http://127.0.0.1:7102" or "https://host:6443"
    std::string bearer_token;  ///< sent as Authorization (empty: none)
    std::string ca_file;       ///< verify the server against this CA bundle (empty: system's)
    std::string client_cert_file;
    std::string client_key_file;
    bool insecure_skip_tls_verify = false;
    std::size_t max_idle = 64;  ///< idle connections kept
    std::chrono::milliseconds connect_timeout{5000};
    std::size_t max_header_bytes = 64 * 1024;
  };

  /// Checks the options (URL, certificate files) without connecting.
  static boost::system::result<std::unique_ptr<Upstream>, std::string> create(
      boost::asio::io_context& io, Options options);

  virtual ~Upstream() = default;

  /// Sends `request` and returns the answer once its head has arrived. Fails (SiteFailure)
  /// when no connection can be made, or the head does not come within request.timeout. A
  /// pooled connection the server closed meanwhile is replaced transparently. `request` must
  /// outlive the returned awaitable.
  virtual boost::asio::awaitable<SiteResult<std::unique_ptr<Answer>>> send(
      const ForwardRequest& request) = 0;

  /// "http://127.0.0.1:7102", for logs.
  [[nodiscard]] virtual const std::string& url() const noexcept = 0;
};

}  // namespace archipel::proxy
