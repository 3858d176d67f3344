#pragma once

// Streams between two sites over their peer connection: a request and its answers, or any
// ordered exchange of messages both ways (a watch, checkpoint images). Many streams share the
// one connection of a pair; each direction of each stream is flow-controlled, so a slow
// consumer holds back its own producer and nobody else.
//
// Every coroutine here may be awaited from any executor; the work runs on the peer node's
// strand. Awaiting coroutines honour terminal cancellation: a cancelled send() or receive()
// resets the stream (kCancelled) and returns that error.

#include "archipel/peer/secure_channel.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace archipel::peer {

/// Why a stream ended badly. The numbers travel on the wire (StreamReset.code).
enum class RpcCode : std::uint8_t {
  kUnreachable = 1,       ///< no connection to the peer, or it was lost
  kDeadlineExceeded = 2,  ///< the stream's deadline passed
  kCancelled = 3,         ///< one side gave up (the caller left, or reset it)
  kUnknownMethod = 4,     ///< the receiving site serves no such method
  kFailed = 5,            ///< the handler failed (its message says why)
  kTooLarge = 6,          ///< a message over kMaxStreamMessage
  kOverloaded = 7,        ///< too many streams open on the connection
  kProtocol = 8,          ///< the other side broke the stream protocol (credit overrun, ...)
};

[[nodiscard]] const char* to_string(RpcCode code) noexcept;

struct RpcError {
  RpcCode code;
  std::string message;
};

template <class T>
using RpcResult = boost::system::result<T, RpcError>;

/// Largest single message (the rest of a frame is a few bytes of header).
inline constexpr std::size_t kMaxStreamMessage = 8 * 1024 * 1024;

/// One end of a stream. Thread-safe; destroying the last reference to an end that has not
/// finished both ways resets the stream (kCancelled).
class PeerStream {
 public:
  virtual ~PeerStream() = default;

  /// The site at the other end.
  [[nodiscard]] virtual const std::string& peer() const noexcept = 0;

  /// Sends one message, waiting while the other side has granted no credit (back-pressure).
  /// `last` ends this side's half of the stream. Errors: the stream's reset reason, kTooLarge,
  /// or kProtocol when this half already ended.
  virtual boost::asio::awaitable<RpcResult<void>> send(Bytes message, bool last = false) = 0;

  /// The next message from the other side, or std::nullopt once the other side ended its half.
  /// Errors: the stream's reset reason.
  virtual boost::asio::awaitable<RpcResult<std::optional<Bytes>>> receive() = 0;

  /// Waits until the stream is over: both halves ended (std::nullopt) or it was reset (the
  /// reason). A site serving a request whose opener ended its half with it learns this way
  /// that nobody waits for the rest of the answer (the opener resets the stream when it lets
  /// go early). A cancelled wait returns kCancelled and leaves the stream as it is.
  virtual boost::asio::awaitable<std::optional<RpcError>> closed() = 0;

  /// Ends the stream both ways at once; the other side's pending and next calls return `why`.
  virtual void reset(RpcError why) = 0;
};

/// Serves one method on the receiving site: spawned on the node's io_context (not its strand, so
/// a busy handler never delays heartbeats) with the stream and the opener's first message. When it
/// returns, this side's half ends normally if it has not yet. Exceptions are caught, logged and
/// turned into a reset (kFailed).
using StreamHandler =
    std::function<boost::asio::awaitable<void>(std::shared_ptr<PeerStream>, Bytes request)>;

}  // namespace archipel::peer
