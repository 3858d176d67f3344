#pragma once

// The scoped reverse proxy: reads a request's scope, plans it (dsl), runs it on the sites of
// the plan — this site's Kubernetes directly, others through the peer channel — and makes one
// Kubernetes answer of theirs. Semantics (docs/proxy.md):
// - no scope: this site only, streamed through unchanged;
// - '|': alternatives in order, failing over on unreachable, timeout or 5xx, never on 4xx;
// - '&': in parallel; lists and gets merged with each item's site, writes on every site, watch
//   streams merged, all resumable through composite resourceVersions;
// - sites that gave no answer are named in Warning headers beside what the others answered.
// Of Asio, only awaitable is in this header.

#include "archipel/dsl/plan.hpp"
#include "archipel/proxy/answer.hpp"
#include "archipel/proxy/upstream.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace archipel::peer {
class PeerNode;
}

namespace archipel::proxy {

/// A request as the front door received it.
struct ClientRequest {
  std::string method;  ///< "GET"
  std::string target;  ///< as received, with any /scope/…/ prefix
  Headers headers;     ///< every request header
  std::string body;

  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

/// A client credential: a bearer token, who it is, and the sites it may touch (empty: all).
struct ClientToken {
  std::string token;
  std::string user;
  std::vector<std::string> sites;
};

/// What happened to one request, for metrics and the access log.
struct RequestRecord {
  std::string verb;                 ///< "list", "watch"… ("discovery" for non-resource paths)
  unsigned code = 0;                ///< the status sent
  std::vector<std::string> sites;   ///< the sites that answered
  std::vector<std::string> failed;  ///< the sites that did not
  std::size_t fan_out = 0;          ///< sites the request was sent to
  bool failed_over = false;
  std::string user;
};

class Proxy {
 public:
  struct Options {
    std::string site;  ///< this site's name
    /// Bounds a request on every site (its answer's head and complete body); not watches.
    std::chrono::milliseconds request_timeout{30000};
    /// Largest answer of one site that is read whole to be merged.
    std::size_t max_merged_bytes = 64 * 1024 * 1024;
    /// When not empty, every request needs one of these tokens (401 otherwise), and a scope
    /// naming a site outside the token's sites is refused (403) before anything runs.
    std::vector<ClientToken> tokens;
  };
  struct Sites {
    /// What this site knows of the federation now (which sites, which reachable).
    std::function<dsl::SiteView()> view;
    /// This site's Kubernetes.
    std::shared_ptr<Upstream> local;
    /// The other sites; nullptr when the site has no peer channel.
    peer::PeerNode* peers = nullptr;
    /// An object was created on several sites at once (a create scoped `a & b`): it is
    /// shared by them from now on (DESIGN.md). Arguments: resource (plural), namespace, name,
    /// the sites. Empty: nothing is shared.
    std::function<void(const std::string&, const std::string&, const std::string&,
                       const std::vector<std::string>&)>
        created_together;
  };

  Proxy(Options options, Sites sites);

  /// Runs one request. Always an answer: failures are Kubernetes Status answers. `record`
  /// says what happened once the answer's head is known. The request's body is taken (it goes
  /// to the sites); `request` and `record` must outlive the returned awaitable.
  boost::asio::awaitable<std::unique_ptr<Answer>> serve(ClientRequest& request,
                                                        RequestRecord& record);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace archipel::proxy
