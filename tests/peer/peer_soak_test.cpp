// A minute of two sites over a jittery link (20 ms ± 10 ms each way, through the link
// emulator, real sockets): the failure detector never declares the healthy peer Down. Labelled
// "soak" (a minute of wall time); runs under the default preset.

#include "peer/two_sites.hpp"

#include <cstdio>

namespace archipel::peer {
namespace {

TEST_F(TwoSites, NoFalseDownOverAMinuteOfJitteredLink) {
  link_->set_profile(
      {.latency = std::chrono::milliseconds(20), .jitter = std::chrono::milliseconds(10)});
  ASSERT_TRUE(eventually([&] { return both(PeerState::kReachable); }));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int down_samples = 0;
  int suspected_samples = 0;
  int samples = 0;
  double max_phi = 0;
  // Down lasts at least two heartbeats (hysteresis), so sampling every 5 ms sees any Down.
  while (std::chrono::steady_clock::now() < end) {
    for (const PeerNode* node : {paris_.get(), nantes_.get()}) {
      const PeerStatus s = node->status().front();
      down_samples += s.state == PeerState::kDown ? 1 : 0;
      suspected_samples += s.state == PeerState::kSuspected ? 1 : 0;
      max_phi = std::max(max_phi, s.phi);
    }
    ++samples;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(down_samples, 0);
  EXPECT_FALSE(paris_->isolated() || nantes_->isolated());
  std::printf("%d samples per site: %d Suspected, %d Down; max phi %.2f\n", samples,
              suspected_samples, down_samples, max_phi);
}

}  // namespace
}  // namespace archipel::peer
