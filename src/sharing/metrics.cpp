#include "archipel/sharing/metrics.hpp"

#include <chrono>

namespace archipel::sharing {

void render_metrics(const SharingService& service, const Bridge& bridge,
                    base::PrometheusText& out) {
  const std::vector<GroupStatus> groups = service.status();
  out.family("archipel_sharing_groups", "gauge", "Replica groups this site is a member of.");
  out.sample("archipel_sharing_groups", {}, static_cast<std::uint64_t>(groups.size()));

  out.family("archipel_sharing_objects", "gauge",
             "Shared objects of a group (present or deleted).");
  for (const GroupStatus& g : groups) {
    out.sample("archipel_sharing_objects", {{"group", g.id}},
               static_cast<std::uint64_t>(g.objects));
  }
  out.family("archipel_sharing_outbox_depth", "gauge",
             "Changes made here that some member of the group has not acknowledged.");
  for (const GroupStatus& g : groups) {
    out.sample("archipel_sharing_outbox_depth", {{"group", g.id}},
               static_cast<std::uint64_t>(g.outbox));
  }
  out.family("archipel_sharing_conflicts", "gauge",
             "Objects of a group showing concurrent writes.");
  for (const GroupStatus& g : groups) {
    out.sample("archipel_sharing_conflicts", {{"group", g.id}},
               static_cast<std::uint64_t>(g.conflicted.size()));
  }
  out.family("archipel_sharing_replica_behind", "gauge",
             "Changes made here that a member does not hold yet (its lag, in changes).");
  for (const GroupStatus& g : groups) {
    for (const PeerStatus& p : g.peers) {
      out.sample("archipel_sharing_replica_behind", {{"group", g.id}, {"site", p.site}}, p.behind);
    }
  }
  out.family("archipel_sharing_replica_last_sync_seconds", "gauge",
             "Seconds since this site last heard from a member about the group (-1: never).");
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const GroupStatus& g : groups) {
    for (const PeerStatus& p : g.peers) {
      const double age =
          p.last_heard_ms > 0 ? static_cast<double>(now_ms - p.last_heard_ms) / 1000.0 : -1.0;
      out.sample("archipel_sharing_replica_last_sync_seconds", {{"group", g.id}, {"site", p.site}},
                 age);
    }
  }

  const std::vector<SharingService::Traffic> traffic = service.traffic();
  out.family("archipel_sharing_sent_bytes_total", "counter",
             "Bytes of sharing messages sent to a site (every group).");
  for (const auto& t : traffic) {
    out.sample("archipel_sharing_sent_bytes_total", {{"site", t.peer}}, t.bytes_sent);
  }
  out.family("archipel_sharing_received_bytes_total", "counter",
             "Bytes of sharing messages received from a site (every group).");
  for (const auto& t : traffic) {
    out.sample("archipel_sharing_received_bytes_total", {{"site", t.peer}}, t.bytes_received);
  }
  out.family("archipel_sharing_sent_messages_total", "counter",
             "Sharing messages sent to a site (every group).");
  for (const auto& t : traffic) {
    out.sample("archipel_sharing_sent_messages_total", {{"site", t.peer}}, t.messages_sent);
  }
  out.family("archipel_sharing_received_messages_total", "counter",
             "Sharing messages received from a site (every group).");
  for (const auto& t : traffic) {
    out.sample("archipel_sharing_received_messages_total", {{"site", t.peer}}, t.messages_received);
  }

  const Bridge::Counters& c = bridge.counters();
  out.family("archipel_sharing_watch_events_total", "counter",
             "Changes of shared objects seen in the site's Kubernetes.");
  out.sample("archipel_sharing_watch_events_total", {}, c.events.load());
  out.family("archipel_sharing_writes_total", "counter",
             "Merged objects written into the site's Kubernetes (created, replaced, deleted).");
  out.sample("archipel_sharing_writes_total", {}, c.writes.load());
  out.family("archipel_sharing_write_conflicts_total", "counter",
             "Writes retried because another writer changed the object first (409).");
  out.sample("archipel_sharing_write_conflicts_total", {}, c.write_conflicts.load());
  out.family("archipel_sharing_write_refusals_total", "counter",
             "Merged objects the site's Kubernetes refused (not retried).");
  out.sample("archipel_sharing_write_refusals_total", {}, c.write_refusals.load());
}

}  // namespace archipel::sharing
