// Fuzz target for the peer channel's decoder: any bytes from the network, fed to a channel
// before and after its handshake, must give frames or a ChannelError, never a crash, and never
// a frame that was not sealed by the other side.

#include "archipel/peer/secure_channel.hpp"

#include <cstdlib>
#include <map>

namespace {

using namespace archipel::peer;

struct Keys {
  Identity paris = Identity::generate("paris");
  Identity nantes = Identity::generate("nantes");
  KeyLookup lookup() {
    return [this](std::string_view site) -> std::optional<PublicKey> {
      if (site == "paris")
        return paris.public_key;
      if (site == "nantes")
        return nantes.public_key;
      return std::nullopt;
    };
  }
};

Keys& keys() {
  static Keys k;
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  // 1. Straight into a responder's handshake.
  auto fresh = SecureChannel::responder(keys().nantes, keys().lookup(), 1024);
  auto r = fresh->feed(input);
  if (r && fresh->established()) {
    std::abort();  // no forged handshake may authenticate
  }
  // 2. Into an established channel, after a real handshake.
  auto a = SecureChannel::initiator(keys().paris, "nantes", keys().lookup(), 1024);
  auto b = SecureChannel::responder(keys().nantes, keys().lookup(), 1024);
  for (int i = 0; i < 3; ++i) {
    auto to_b = a->take_output();
    if (!b->feed(to_b))
      std::abort();
    auto to_a = b->take_output();
    if (!a->feed(to_a))
      std::abort();
  }
  if (!a->established() || !b->established()) {
    std::abort();
  }
  auto frames = b->feed(input);
  if (frames && !frames->empty()) {
    std::abort();  // garbage decrypted into a frame
  }
  return 0;
}
