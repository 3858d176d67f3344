#pragma once

// The sharing service's Prometheus metrics (archipel_sharing_*), rendered from its status, its
// traffic and the bridge's counters at scrape time.

#include "archipel/base/prometheus.hpp"
#include "archipel/sharing/bridge.hpp"
#include "archipel/sharing/service.hpp"

namespace archipel::sharing {

/// Appends the metrics of `service` and `bridge` to `out`. Thread-safe.
void render_metrics(const SharingService& service, const Bridge& bridge, base::PrometheusText& out);

}  // namespace archipel::sharing
