#pragma once

// The peer channel's Prometheus metrics (archipel_peer_*, archipel_site_isolated), rendered
// from a PeerNode's counters and status at scrape time.

#include "archipel/base/prometheus.hpp"
#include "archipel/peer/peer_node.hpp"

namespace archipel::peer {

/// Appends the metrics of `node` to `out`. Thread-safe (reads snapshots).
void render_metrics(const PeerNode& node, base::PrometheusText& out);

}  // namespace archipel::peer
