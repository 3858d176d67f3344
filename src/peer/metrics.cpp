#include "archipel/peer/metrics.hpp"

#include <array>
#include <chrono>
#include <string>

namespace archipel::peer {

void render_metrics(const PeerNode& node, base::PrometheusText& out) {
  const std::vector<PeerStatus> peers = node.status();
  const LinkCounters site = node.counters();
  constexpr std::array kStates{PeerState::kReachable, PeerState::kSuspected, PeerState::kDown};

  out.family("archipel_site_isolated", "gauge",
             "1 when every peer of this site is Down, 0 otherwise.");
  out.sample("archipel_site_isolated", {}, std::uint64_t{node.isolated() ? 1u : 0u});

  out.family("archipel_peer_state", "gauge",
             "The failure detector's state of each peer: 1 for the current state, 0 otherwise.");
  for (const PeerStatus& p : peers) {
    for (PeerState s : kStates) {
      out.sample("archipel_peer_state", {{"peer", p.name}, {"state", to_string(s)}},
                 std::uint64_t{p.state == s ? 1u : 0u});
    }
  }
  out.family("archipel_peer_connected", "gauge", "1 when the peer channel to the peer is open.");
  for (const PeerStatus& p : peers) {
    out.sample("archipel_peer_connected", {{"peer", p.name}}, std::uint64_t{p.connected ? 1u : 0u});
  }
  out.family("archipel_peer_phi", "gauge",
             "Suspicion level of the phi accrual failure detector for the peer.");
  for (const PeerStatus& p : peers) {
    out.sample("archipel_peer_phi", {{"peer", p.name}}, p.phi);
  }
  out.family("archipel_peer_rtt_seconds", "gauge",
             "Round-trip time of the latest heartbeat exchanged with the peer.");
  for (const PeerStatus& p : peers) {
    if (p.rtt) {
      out.sample("archipel_peer_rtt_seconds", {{"peer", p.name}},
                 std::chrono::duration<double>(*p.rtt).count());
    }
  }

  struct Counter {
    const char* name;
    const char* help;
    std::uint64_t LinkCounters::*field;
  };
  constexpr std::array kCounters{
      Counter{"archipel_peer_sent_bytes_total", "Bytes written to the peer (encrypted frames).",
              &LinkCounters::bytes_sent},
      Counter{"archipel_peer_received_bytes_total", "Bytes read from the peer.",
              &LinkCounters::bytes_received},
      Counter{"archipel_peer_sent_frames_total", "Frames sent to the peer.",
              &LinkCounters::frames_sent},
      Counter{"archipel_peer_received_frames_total", "Frames received from the peer.",
              &LinkCounters::frames_received},
      Counter{"archipel_peer_streams_opened_total", "Streams this site opened to the peer.",
              &LinkCounters::streams_opened},
      Counter{"archipel_peer_streams_accepted_total", "Streams the peer opened to this site.",
              &LinkCounters::streams_accepted},
      Counter{"archipel_peer_streams_reset_total", "Streams with the peer that ended in error.",
              &LinkCounters::streams_reset},
  };
  for (const Counter& c : kCounters) {
    out.family(c.name, "counter", c.help);
    for (const PeerStatus& p : peers) {
      out.sample(c.name, {{"peer", p.name}}, p.link.*c.field);
    }
  }
  out.family("archipel_peer_rejected_connections_total", "counter",
             "Peer connections closed for a security or protocol fault (unknown key, bad "
             "signature, tampered, replayed or oversized frame), whoever they claimed to be.");
  out.sample("archipel_peer_rejected_connections_total", {}, site.rejected);
}

}  // namespace archipel::peer
