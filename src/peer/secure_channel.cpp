#include "archipel/peer/secure_channel.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace archipel::peer {
namespace {

constexpr std::string_view kLabel = "archipel-peer-handshake-v1";
constexpr std::uint8_t kHello = 1;
constexpr std::uint8_t kHelloReply = 2;
constexpr std::uint8_t kFinish = 3;
constexpr std::size_t kKey = 32;
constexpr std::size_t kSig = crypto_sign_BYTES;
constexpr std::size_t kHeader = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr std::size_t kTag = crypto_secretstream_xchacha20poly1305_ABYTES;

using Result = boost::system::result<std::vector<Bytes>, ChannelError>;

ChannelError error(ChannelFault f, std::string message) {
  return {f, std::move(message)};
}

void put_frame(Bytes& out, std::span<const std::uint8_t> body) {
  const auto n = static_cast<std::uint32_t>(body.size());
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), body.begin(), body.end());
}

void append(Bytes& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
}
void append(Bytes& b, std::span<const std::uint8_t> s) {
  b.insert(b.end(), s.begin(), s.end());
}

// A handshake message: type, then name (length-prefixed), key, signature as the type needs.
struct Message {
  std::uint8_t type = 0;
  std::string name;
  std::array<std::uint8_t, kKey> key{};
  std::array<std::uint8_t, kSig> sig{};
};

std::optional<Message> parse(std::span<const std::uint8_t> b) {
  Message m;
  if (b.empty())
    return std::nullopt;
  m.type = b[0];
  std::size_t at = 1;
  if (m.type == kHello || m.type == kHelloReply) {
    if (b.size() < at + 1)
      return std::nullopt;
    const std::size_t n = b[at++];
    if (n == 0 || n > 63 || b.size() < at + n + kKey)
      return std::nullopt;
    m.name.assign(reinterpret_cast<const char*>(b.data() + at), n);
    at += n;
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at), kKey, m.key.begin());
    at += kKey;
  }
  if (m.type == kHelloReply || m.type == kFinish) {
    if (b.size() < at + kSig)
      return std::nullopt;
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at), kSig, m.sig.begin());
    at += kSig;
  }
  if (at != b.size() || m.type < kHello || m.type > kFinish)
    return std::nullopt;
  return m;
}

class SecureChannelImpl final : public SecureChannel {
 public:
  SecureChannelImpl(const Identity& self, std::string expected, KeyLookup keys, bool initiator,
                    std::size_t max_frame)
      : self_(self),
        expected_(std::move(expected)),
        keys_(std::move(keys)),
        initiator_(initiator),
        max_frame_(max_frame) {
    (void)sodium_ready();
    crypto_kx_keypair(eph_pk_.data(), eph_sk_.data());
    if (initiator_) {
      Bytes hello{kHello, static_cast<std::uint8_t>(self_.site.size())};
      append(hello, self_.site);
      append(hello, eph_pk_);
      transcript_ = Bytes(kLabel.begin(), kLabel.end());
      append(transcript_, hello);
      put_frame(out_, hello);
    }
  }

  ~SecureChannelImpl() override {
    sodium_memzero(eph_sk_.data(), eph_sk_.size());
    sodium_memzero(&push_, sizeof push_);
    sodium_memzero(&pull_, sizeof pull_);
  }

  Bytes take_output() override { return std::exchange(out_, {}); }

  void take_output(Bytes& into) override {
    into.clear();
    std::swap(into, out_);
  }

  Result feed(std::span<const std::uint8_t> bytes) override {
    if (dead_) {
      return error(ChannelFault::kProtocol, "the channel is closed");
    }
    in_.insert(in_.end(), bytes.begin(), bytes.end());
    std::vector<Bytes> frames;
    std::size_t at = 0;
    while (in_.size() - at >= 4) {
      const std::uint32_t n = (std::uint32_t{in_[at]} << 24) | (std::uint32_t{in_[at + 1]} << 16) |
                              (std::uint32_t{in_[at + 2]} << 8) | std::uint32_t{in_[at + 3]};
      if (n > max_frame_ + kTag) {
        return die(error(ChannelFault::kOversized, "frame of " + std::to_string(n) +
                                                       " bytes over the maximum of " +
                                                       std::to_string(max_frame_)));
      }
      if (in_.size() - at - 4 < n) {
        break;  // incomplete: wait for more bytes
      }
      const std::span<const std::uint8_t> body(in_.data() + at + 4, n);
      at += 4 + n;
      auto r = on_message(body, frames);
      if (!r) {
        return die(r.error());
      }
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(at));
    return frames;
  }

  boost::system::result<void, ChannelError> send(std::span<const std::uint8_t> payload) override {
    if (!established_ || dead_) {
      return error(ChannelFault::kProtocol, "the channel is not established");
    }
    if (payload.size() > max_frame_) {
      return error(ChannelFault::kOversized,
                   "frame of " + std::to_string(payload.size()) + " bytes over the maximum");
    }
    // Sealed in place at the end of the output: no temporary buffer per frame.
    const std::size_t at = out_.size();
    const auto n = static_cast<std::uint32_t>(payload.size() + kTag);
    out_.resize(at + 4 + n);
    out_[at] = static_cast<std::uint8_t>(n >> 24);
    out_[at + 1] = static_cast<std::uint8_t>(n >> 16);
    out_[at + 2] = static_cast<std::uint8_t>(n >> 8);
    out_[at + 3] = static_cast<std::uint8_t>(n);
    crypto_secretstream_xchacha20poly1305_push(&push_, out_.data() + at + 4, nullptr,
                                               payload.data(), payload.size(), nullptr, 0, 0);
    return {};
  }

  bool established() const noexcept override { return established_; }
  const std::string& peer() const noexcept override { return peer_; }

 private:
  Result die(ChannelError e) {
    dead_ = true;
    return e;
  }

  boost::system::result<void, ChannelError> on_message(std::span<const std::uint8_t> body,
                                                       std::vector<Bytes>& frames) {
    if (established_) {
      return on_data(body, frames);
    }
    auto m = parse(body);
    if (!m) {
      return error(ChannelFault::kMalformed, "malformed handshake message");
    }
    if (initiator_) {
      if (m->type != kHelloReply || sent_finish_) {
        return error(ChannelFault::kProtocol, "unexpected handshake message");
      }
      if (m->name != expected_) {
        return error(ChannelFault::kUnknownPeer,
                     "dialled '" + expected_ + "' but '" + m->name + "' answered");
      }
      auto key = keys_(m->name);
      if (!key) {
        return error(ChannelFault::kUnknownPeer, "no public key for site '" + m->name + "'");
      }
      const std::size_t signed_size = body.size() - kSig;
      append(transcript_, body.first(signed_size));
      if (crypto_sign_verify_detached(m->sig.data(), transcript_.data(), transcript_.size(),
                                      key->data()) != 0) {
        return error(ChannelFault::kBadSignature,
                     "site '" + m->name + "' did not prove its pinned key");
      }
      append(transcript_, m->sig);
      Bytes finish{kFinish};
      std::array<std::uint8_t, kSig> sig{};
      crypto_sign_detached(sig.data(), nullptr, transcript_.data(), transcript_.size(),
                           self_.secret_key.data());
      append(finish, sig);
      put_frame(out_, finish);
      sent_finish_ = true;
      return establish(m->name, m->key);
    }
    // Responder.
    if (m->type == kHello && !got_hello_) {
      got_hello_ = true;
      auto key = keys_(m->name);
      if (!key) {
        return error(ChannelFault::kUnknownPeer, "unknown site '" + m->name + "'");
      }
      claimed_ = m->name;
      claimed_key_ = *key;
      peer_eph_ = m->key;
      transcript_ = Bytes(kLabel.begin(), kLabel.end());
      append(transcript_, body);
      Bytes reply{kHelloReply, static_cast<std::uint8_t>(self_.site.size())};
      append(reply, self_.site);
      append(reply, eph_pk_);
      append(transcript_, reply);
      std::array<std::uint8_t, kSig> sig{};
      crypto_sign_detached(sig.data(), nullptr, transcript_.data(), transcript_.size(),
                           self_.secret_key.data());
      append(transcript_, sig);
      append(reply, sig);
      put_frame(out_, reply);
      return {};
    }
    if (m->type == kFinish && got_hello_) {
      if (crypto_sign_verify_detached(m->sig.data(), transcript_.data(), transcript_.size(),
                                      claimed_key_.data()) != 0) {
        return error(ChannelFault::kBadSignature,
                     "site '" + claimed_ + "' did not prove its pinned key");
      }
      return establish(claimed_, peer_eph_);
    }
    return error(ChannelFault::kProtocol, "unexpected handshake message");
  }

  boost::system::result<void, ChannelError> establish(
      const std::string& peer, const std::array<std::uint8_t, kKey>& peer_eph) {
    std::array<std::uint8_t, crypto_kx_SESSIONKEYBYTES> rx{};
    std::array<std::uint8_t, crypto_kx_SESSIONKEYBYTES> tx{};
    const int rc = initiator_ ? crypto_kx_client_session_keys(rx.data(), tx.data(), eph_pk_.data(),
                                                              eph_sk_.data(), peer_eph.data())
                              : crypto_kx_server_session_keys(rx.data(), tx.data(), eph_pk_.data(),
                                                              eph_sk_.data(), peer_eph.data());
    sodium_memzero(eph_sk_.data(), eph_sk_.size());
    if (rc != 0) {
      return error(ChannelFault::kMalformed, "invalid ephemeral key");
    }
    std::array<std::uint8_t, kHeader> header{};
    crypto_secretstream_xchacha20poly1305_init_push(&push_, header.data(), tx.data());
    std::copy(rx.begin(), rx.end(), rx_key_.begin());
    sodium_memzero(rx.data(), rx.size());
    sodium_memzero(tx.data(), tx.size());
    put_frame(out_, header);  // the first frame of each direction: its stream header
    peer_ = peer;
    established_ = true;
    return {};
  }

  boost::system::result<void, ChannelError> on_data(std::span<const std::uint8_t> body,
                                                    std::vector<Bytes>& frames) {
    if (!pull_ready_) {
      if (body.size() != kHeader || crypto_secretstream_xchacha20poly1305_init_pull(
                                        &pull_, body.data(), rx_key_.data()) != 0) {
        return error(ChannelFault::kTampered, "invalid stream header");
      }
      sodium_memzero(rx_key_.data(), rx_key_.size());
      pull_ready_ = true;
      return {};
    }
    if (body.size() < kTag) {
      return error(ChannelFault::kTampered, "frame shorter than its authentication tag");
    }
    Bytes plain(body.size() - kTag);
    unsigned long long n = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&pull_, plain.data(), &n, &tag, body.data(),
                                                   body.size(), nullptr, 0) != 0) {
      return error(ChannelFault::kTampered,
                   "frame failed authentication (altered, replayed or out of order)");
    }
    plain.resize(static_cast<std::size_t>(n));
    frames.push_back(std::move(plain));
    return {};
  }

  const Identity& self_;
  std::string expected_;
  KeyLookup keys_;
  bool initiator_;
  std::size_t max_frame_;

  std::array<std::uint8_t, crypto_kx_PUBLICKEYBYTES> eph_pk_{};
  std::array<std::uint8_t, crypto_kx_SECRETKEYBYTES> eph_sk_{};
  Bytes transcript_;
  Bytes in_;
  Bytes out_;
  bool got_hello_ = false;
  bool sent_finish_ = false;
  std::string claimed_;
  PublicKey claimed_key_{};
  std::array<std::uint8_t, kKey> peer_eph_{};

  bool established_ = false;
  bool dead_ = false;
  std::string peer_;
  crypto_secretstream_xchacha20poly1305_state push_{};
  crypto_secretstream_xchacha20poly1305_state pull_{};
  std::array<std::uint8_t, crypto_kx_SESSIONKEYBYTES> rx_key_{};
  bool pull_ready_ = false;
};

}  // namespace

const char* to_string(ChannelFault f) noexcept {
  switch (f) {
    case ChannelFault::kUnknownPeer: return "unknown_peer";
    case ChannelFault::kBadSignature: return "bad_signature";
    case ChannelFault::kMalformed: return "malformed";
    case ChannelFault::kTampered: return "tampered";
    case ChannelFault::kOversized: return "oversized";
    case ChannelFault::kProtocol: return "protocol";
  }
  return "unknown";
}

std::unique_ptr<SecureChannel> SecureChannel::initiator(const Identity& self,
                                                        std::string expected_peer, KeyLookup keys,
                                                        std::size_t max_frame) {
  return std::make_unique<SecureChannelImpl>(self, std::move(expected_peer), std::move(keys), true,
                                             max_frame);
}

std::unique_ptr<SecureChannel> SecureChannel::responder(const Identity& self, KeyLookup keys,
                                                        std::size_t max_frame) {
  return std::make_unique<SecureChannelImpl>(self, std::string(), std::move(keys), false,
                                             max_frame);
}

}  // namespace archipel::peer
