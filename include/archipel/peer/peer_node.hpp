#pragma once

// A site's end of the peer channel: one authenticated, encrypted connection per peer pair (the
// site whose name sorts first dials; the other accepts), re-dialled with jittered backoff;
// heartbeats every interval feed each peer's failure detector; the site is Isolated when every
// peer is Down. Streams (stream.hpp) multiplex requests over the connections. Of Asio, only
// awaitable is in this header.

#include "archipel/peer/failure_detector.hpp"
#include "archipel/peer/identity.hpp"
#include "archipel/peer/stream.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
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

struct LinkCounters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t rejected = 0;          ///< connections closed for a ChannelFault
  std::uint64_t streams_opened = 0;    ///< by this site
  std::uint64_t streams_accepted = 0;  ///< opened by peers and served here
  std::uint64_t streams_reset = 0;     ///< ended with an error, either side
};

struct PeerStatus {
  std::string name;
  PeerState state = PeerState::kDown;
  double phi = 0;
  std::optional<Duration> rtt;
  bool connected = false;
  LinkCounters link;  ///< this peer's share (rejected: connections that claimed to be it)
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
    /// Credit each direction of a stream starts with (bytes in flight before the receiver
    /// consumes them).
    std::uint32_t stream_window = 1024 * 1024;
    /// Streams a peer may have open towards this site at once; more are refused (kOverloaded).
    std::size_t max_incoming_streams = 1024;
    /// Called on the node's strand (it must not block) when a peer's state or connection, or
    /// the site's isolation, changes; read status() for the new picture.
    std::function<void()> on_change;
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

  /// Serves `method` for every peer from now on (replacing a previous handler). Thread-safe.
  virtual void handle(std::string method, StreamHandler handler) = 0;

  /// Opens a stream to `peer` running `method` there, with `request` as the first message
  /// (`last`: nothing follows it). Completes once the request is queued, without waiting for an
  /// answer. `deadline` bounds the whole stream on both sites (zero: none). Errors:
  /// kUnreachable at once when the peer is not connected (callers fail over; nothing waits
  /// for a reconnection), kTooLarge.
  virtual boost::asio::awaitable<RpcResult<std::shared_ptr<PeerStream>>> open(
      std::string peer, std::string method, Bytes request, std::chrono::milliseconds deadline,
      bool last = true) = 0;

  /// A request and its one answer: open() then receive(). An answer missing when the stream
  /// ends is kFailed.
  boost::asio::awaitable<RpcResult<Bytes>> call(std::string peer, std::string method, Bytes request,
                                                std::chrono::milliseconds deadline);
};

}  // namespace archipel::peer
