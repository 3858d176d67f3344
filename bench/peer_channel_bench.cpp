// The secure channel's cost without a network: a full handshake (3 messages, two signatures
// and two verifications, key exchange), and sealing + opening 64 KiB frames (XChaCha20-Poly1305
// secretstream). This bounds what the peer channel can do over loopback; the socket figures
// come with the transport benchmark. Run: build/bench/bench/peer_channel_bench

#include "archipel/peer/secure_channel.hpp"

#include <benchmark/benchmark.h>

namespace {

using namespace archipel::peer;

struct Pair {
  Identity paris = Identity::generate("paris");
  Identity nantes = Identity::generate("nantes");
  KeyLookup keys() {
    return [this](std::string_view site) -> std::optional<PublicKey> {
      if (site == "paris")
        return paris.public_key;
      if (site == "nantes")
        return nantes.public_key;
      return std::nullopt;
    };
  }
};

void handshake(std::unique_ptr<SecureChannel>& a, std::unique_ptr<SecureChannel>& b) {
  for (int i = 0; i < 3; ++i) {
    auto ab = a->take_output();
    (void)b->feed(ab);
    auto ba = b->take_output();
    (void)a->feed(ba);
  }
}

void Handshake(benchmark::State& state) {
  Pair p;
  for (auto _ : state) {
    auto a = SecureChannel::initiator(p.paris, "nantes", p.keys());
    auto b = SecureChannel::responder(p.nantes, p.keys());
    handshake(a, b);
    if (!a->established() || !b->established())
      state.SkipWithError("handshake failed");
  }
}
BENCHMARK(Handshake)->Unit(benchmark::kMicrosecond);

void SealAndOpen(benchmark::State& state) {
  Pair p;
  auto a = SecureChannel::initiator(p.paris, "nantes", p.keys());
  auto b = SecureChannel::responder(p.nantes, p.keys());
  handshake(a, b);
  const Bytes payload(static_cast<std::size_t>(state.range(0)), 0x5a);
  for (auto _ : state) {
    (void)a->send(payload);
    auto wire = a->take_output();
    auto frames = b->feed(wire);
    benchmark::DoNotOptimize(frames);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(SealAndOpen)->Arg(64 * 1024)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
