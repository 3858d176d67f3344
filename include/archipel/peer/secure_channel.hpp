#pragma once

// The peer channel's security, sans-IO: bytes from the socket go in, bytes for the socket and
// decrypted frames come out. The transport (Asio) only moves bytes.
//
// Handshake (3 messages, mutual authentication with forward secrecy):
//   1. initiator → responder: its site name and an ephemeral X25519 public key;
//   2. responder → initiator: its name, its ephemeral key, and an Ed25519 signature over the
//      transcript so far;
//   3. initiator → responder: its signature over the whole transcript.
// Each side checks the other's signature against the public key its configuration pins for
// that site name. Session keys come from the two ephemeral keys (crypto_kx); each direction
// then runs an XChaCha20-Poly1305 secretstream, so a frame that is altered, replayed, dropped
// or reordered fails to decrypt. Every message on the wire is a 4-byte big-endian length and
// that many bytes; lengths over the configured maximum close the channel.

#include "archipel/peer/identity.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace archipel::peer {

using Bytes = std::vector<std::uint8_t>;

/// Why a channel was closed: counted per reason and logged once.
enum class ChannelFault {
  kUnknownPeer,   ///< the other side claims a site name we do not know, or not the one dialled
  kBadSignature,  ///< its signature does not verify against the pinned key
  kMalformed,     ///< a handshake message of the wrong shape
  kTampered,      ///< a frame failed authentication (altered, replayed, reordered, truncated)
  kOversized,     ///< a length prefix over the maximum
  kProtocol,      ///< a message at the wrong moment
};

[[nodiscard]] const char* to_string(ChannelFault f) noexcept;

struct ChannelError {
  ChannelFault fault;
  std::string message;
};

/// The public keys a site accepts, by site name (from the federation configuration).
using KeyLookup = std::function<std::optional<PublicKey>(std::string_view site)>;

class SecureChannel {
 public:
  static constexpr std::size_t kDefaultMaxFrame = 16 * 1024 * 1024;

  /// The dialling side. `expected_peer` is the site it means to reach.
  static std::unique_ptr<SecureChannel> initiator(const Identity& self, std::string expected_peer,
                                                  KeyLookup keys,
                                                  std::size_t max_frame = kDefaultMaxFrame);
  /// The accepting side: any site `keys` knows may connect.
  static std::unique_ptr<SecureChannel> responder(const Identity& self, KeyLookup keys,
                                                  std::size_t max_frame = kDefaultMaxFrame);

  virtual ~SecureChannel() = default;

  /// Bytes to write to the socket (handshake messages, then sealed frames), taken by the call.
  [[nodiscard]] virtual Bytes take_output() = 0;
  /// The same into `into` (its previous contents are discarded and its storage becomes the
  /// channel's next output buffer): a writer alternating two buffers allocates nothing.
  virtual void take_output(Bytes& into) = 0;

  /// Feeds bytes read from the socket. Returns the application frames they completed (possibly
  /// none), or the fault that must close the connection; after an error the channel is dead.
  [[nodiscard]] virtual boost::system::result<std::vector<Bytes>, ChannelError> feed(
      std::span<const std::uint8_t> bytes) = 0;

  /// Queues an application frame (only once established()).
  [[nodiscard]] virtual boost::system::result<void, ChannelError> send(
      std::span<const std::uint8_t> payload) = 0;

  [[nodiscard]] virtual bool established() const noexcept = 0;
  /// The authenticated site at the other end (empty until established).
  [[nodiscard]] virtual const std::string& peer() const noexcept = 0;
};

}  // namespace archipel::peer
