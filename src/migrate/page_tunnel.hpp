#pragma once
// Post-copy's memory travels inside the peer channel (private to the migration service).
//
// In a post-copy migration the restored process faults its pages in from CRIU's page server at
// the source. That server speaks plain, unauthenticated TCP: whoever connects first reads the
// process's memory. So it listens on the source's loopback only, and the destination's
// lazy-pages daemon reaches it through the two sites' peer connection (authenticated,
// encrypted, flow-controlled beside the other streams): the destination listens on its own
// loopback, and each connection to that port becomes one "migrate.pages" stream to the source,
// which connects it to the page server it runs for that migration, and for that destination
// only.

#include "archipel/peer/peer_node.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace boost::asio {
class io_context;
}

namespace archipel::migrate {

inline constexpr const char* kPagesMethod = "migrate.pages";

/// Source side: the page servers this site runs, by the destination allowed to reach each and
/// the migration it serves. Thread-safe.
class PageServers {
 public:
  void expose(const std::string& destination, const std::string& migration, std::uint16_t port);
  void withdraw(const std::string& destination, const std::string& migration);
  [[nodiscard]] std::optional<std::uint16_t> port(const std::string& destination,
                                                  const std::string& migration) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::uint16_t> ports_;
};

/// Serves "migrate.pages" on `node`: the stream is relayed to the loopback page server that
/// `servers` exposes to the opening site for the migration its request names.
void serve_pages(boost::asio::io_context& io, peer::PeerNode& node,
                 std::weak_ptr<PageServers> servers);

/// Destination side: a port on this site's loopback for the lazy-pages daemon; every connection
/// to it is relayed to `source`'s page server for `migration`. Destroying the tunnel closes the
/// port and the connections still open.
class PageTunnel {
 public:
  static boost::system::result<std::unique_ptr<PageTunnel>, std::string> open(
      boost::asio::io_context& io, peer::PeerNode& node, std::string source, std::string migration,
      std::chrono::milliseconds deadline);
  ~PageTunnel();
  PageTunnel(const PageTunnel&) = delete;
  PageTunnel& operator=(const PageTunnel&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  struct State;  // the listener and its connections (page_tunnel.cpp)

 private:
  PageTunnel(std::shared_ptr<State> state, std::uint16_t port)
      : state_(std::move(state)), port_(port) {}
  std::shared_ptr<State> state_;
  std::uint16_t port_;
};

}  // namespace archipel::migrate
