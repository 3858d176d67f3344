#pragma once

// A site's end of the peer channel: one authenticated, encrypted connection per peer pair (the
// site whose name sorts first dials; the other accepts), re-dialled with jittered backoff;
// heartbeats every interval feed each peer's failure detector; the site is Isolated when every
// peer is Down. Asio types stay out of this header.

#include "archipel/peer/failure_detector.hpp"
#include "archipel/peer/identity.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace archipel::peer {

struct PeerAddress {
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  PublicKey public_key{};
};

struct PeerStatus {
  std::string name;
  PeerState state = PeerState::kDown;
  double phi = 0;
  std::optional<Duration> rtt;
  bool connected = false;
};

struct LinkCounters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t rejected = 0;  ///< connections closed for a ChannelFault
};

class PeerNode {
 public:
  struct Options {
    Identity identity;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  ///< 0: any free port (see port())
    std::vector<PeerAddress> peers;
    DetectorConfig detector;
    std::chrono::milliseconds heartbeat{100};
  };

  /// Binds and starts on `io` (all of the node's work runs on one strand of it).
  static boost::system::result<std::unique_ptr<PeerNode>, std::string> start(
      boost::asio::io_context& io, Options options);

  /// Stops dialling and accepting and closes every connection.
  virtual ~PeerNode() = default;

  [[nodiscard]] virtual std::uint16_t port() const = 0;
  /// A snapshot, thread-safe.
  [[nodiscard]] virtual std::vector<PeerStatus> status() const = 0;
  [[nodiscard]] virtual bool isolated() const = 0;
  [[nodiscard]] virtual LinkCounters counters() const = 0;
};

}  // namespace archipel::peer
