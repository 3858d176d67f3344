#include "archipel/proxy/sites.hpp"

#include "archipel/kube/object.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>

namespace archipel::proxy {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;

constexpr std::size_t kHistory = 1024;
constexpr std::string_view kGroupVersion = "archipel.io/v1";

double round3(double v) {
  return std::isfinite(v) ? std::round(v * 1000) / 1000 : 0;
}

std::string rtt_text(const std::optional<double>& ms) {
  if (!ms) {
    return "<none>";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, *ms < 10 ? "%.2fms" : "%.0fms", *ms);
  return buf;
}

}  // namespace

SiteDirectory::Subscription::~Subscription() = default;

SiteDirectory::SiteDirectory(std::string local, std::string local_address, std::vector<Peer> peers,
                             StatusSource source, Clock clock)
    : local_(std::move(local)), source_(std::move(source)), clock_(std::move(clock)) {
  const auto now = clock_();
  Entry self;
  self.spec = Peer{local_, std::move(local_address), {}};
  self.local = true;
  self.state = "Local";
  self.connected = true;
  self.created = self.transition = now;
  sites_.emplace(local_, std::move(self));
  for (Peer& p : peers) {
    Entry e;
    e.spec = std::move(p);
    e.state = "Unknown";  // until the peer channel reports on it (or when it does not run)
    e.created = e.transition = now;
    const std::string name = e.spec.name;
    sites_.emplace(name, std::move(e));
  }
  std::lock_guard lock(mu_);
  apply(source_(), false);
}

void SiteDirectory::refresh() {
  Picture p = source_();
  std::lock_guard lock(mu_);
  apply(p, true);
}

void SiteDirectory::apply(const Picture& p, bool record) {
  const auto now = clock_();
  auto change = [&](Entry& e, const std::string& name, std::string state, bool connected) {
    if (e.state == state && e.connected == connected) {
      return;
    }
    e.state = std::move(state);
    e.connected = connected;
    e.transition = now;
    e.resource_version = ++version_;
    if (!record) {
      return;
    }
    history_.push_back(Event{e.resource_version, name, "MODIFIED"});
    if (history_.size() > kHistory) {
      history_.pop_front();
    }
    for (auto& [id, w] : watchers_) {
      w.listener(event_line("MODIFIED", e, w.as_table));
    }
  };
  for (const peer::PeerStatus& s : p.peers) {
    auto it = sites_.find(s.name);
    if (it == sites_.end()) {
      continue;  // a peer the configuration did not name: not ours to show
    }
    it->second.phi = s.phi;
    it->second.rtt_ms =
        s.rtt ? std::optional<double>(std::chrono::duration<double, std::milli>(*s.rtt).count())
              : std::nullopt;
    change(it->second, s.name, to_string(s.state), s.connected);
  }
  auto self = sites_.find(local_);
  change(self->second, local_, p.isolated ? "Isolated" : "Local", true);
}

std::uint64_t SiteDirectory::resource_version() {
  std::lock_guard lock(mu_);
  return version_;
}

namespace {

array column_definitions() {
  auto column = [](const char* name, const char* type, int priority, const char* description) {
    object c;
    c["name"] = name;
    c["type"] = type;
    c["format"] = std::string_view(name) == "Name" ? "name" : "";
    c["description"] = description;
    c["priority"] = priority;
    return c;
  };
  return array{
      column("Name", "string", 0, "The site's name."),
      column("State", "string", 0,
             "Reachable, Suspected or Down as this site's failure detector sees the site; Local "
             "or Isolated for this site itself."),
      column("Connected", "boolean", 0, "Whether the peer channel to the site is open."),
      column("RTT", "string", 0, "Round-trip time of the latest heartbeat."),
      column("Phi", "number", 1, "Suspicion level of the phi accrual failure detector."),
      column("Address", "string", 1, "The site's peer endpoint."),
      column("Since", "string", 0, "Time since the state last changed."),
  };
}

object table_row(const object& site, std::chrono::system_clock::time_point now,
                 std::chrono::system_clock::time_point transition) {
  const object& status = site.at("status").as_object();
  const object& spec = site.at("spec").as_object();
  const value* rtt = status.if_contains("rttMillis");
  object row;
  row["cells"] = array{
      site.at("metadata").as_object().at("name"),
      status.at("state"),
      status.at("connected"),
      value(rtt_text(rtt != nullptr ? std::optional<double>(rtt->to_number<double>())
                                    : std::nullopt)),
      status.contains("phi") ? status.at("phi") : value(0.0),
      spec.at("address"),
      value(
          kube::human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - transition))),
  };
  object partial;
  partial["kind"] = "PartialObjectMetadata";
  partial["apiVersion"] = "meta.k8s.io/v1";
  partial["metadata"] = site.at("metadata");
  row["object"] = std::move(partial);
  return row;
}

object table(array rows, std::uint64_t rv) {
  object t;
  t["kind"] = "Table";
  t["apiVersion"] = "meta.k8s.io/v1";
  object meta;
  meta["resourceVersion"] = std::to_string(rv);
  t["metadata"] = std::move(meta);
  t["columnDefinitions"] = column_definitions();
  t["rows"] = std::move(rows);
  return t;
}

}  // namespace

object SiteDirectory::to_object(const std::string& name, const Entry& e) {
  object o;
  o["apiVersion"] = kGroupVersion;
  o["kind"] = "Site";
  object meta;
  meta["name"] = name;
  meta["uid"] = "site-" + name;
  meta["resourceVersion"] = std::to_string(e.resource_version);
  meta["creationTimestamp"] = kube::rfc3339(e.created);
  o["metadata"] = std::move(meta);
  object spec;
  spec["address"] = e.spec.address;
  if (!e.spec.public_key.empty()) {
    spec["publicKey"] = e.spec.public_key;
  }
  o["spec"] = std::move(spec);
  object status;
  status["state"] = e.state;
  status["local"] = e.local;
  status["connected"] = e.connected;
  if (!e.local) {
    status["phi"] = round3(e.phi);
    if (e.rtt_ms) {
      status["rttMillis"] = round3(*e.rtt_ms);
    }
  }
  status["lastTransitionTime"] = kube::rfc3339(e.transition);
  o["status"] = std::move(status);
  return o;
}

std::string SiteDirectory::event_line(const std::string& type, const Entry& e,
                                      bool as_table) const {
  object site = to_object(e.spec.name, e);
  object event;
  event["type"] = type;
  if (as_table) {
    event["object"] = table(array{table_row(site, clock_(), e.transition)}, e.resource_version);
  } else {
    event["object"] = std::move(site);
  }
  return boost::json::serialize(event) + "\n";
}

std::string SiteDirectory::list(bool as_table) {
  Picture p = source_();
  std::lock_guard lock(mu_);
  apply(p, true);
  const auto now = clock_();
  array items;
  for (const auto& [name, e] : sites_) {
    object site = to_object(name, e);
    items.push_back(as_table ? value(table_row(site, now, e.transition)) : value(std::move(site)));
  }
  if (as_table) {
    return boost::json::serialize(table(std::move(items), version_));
  }
  object list;
  list["kind"] = "SiteList";
  list["apiVersion"] = kGroupVersion;
  object meta;
  meta["resourceVersion"] = std::to_string(version_);
  list["metadata"] = std::move(meta);
  list["items"] = std::move(items);
  return boost::json::serialize(list);
}

boost::system::result<std::string, kube::Status> SiteDirectory::get(std::string_view name,
                                                                    bool as_table) {
  Picture p = source_();
  std::lock_guard lock(mu_);
  apply(p, true);
  auto it = sites_.find(name);
  if (it == sites_.end()) {
    return kube::Status::not_found("archipel.io", "sites", name);
  }
  const Entry& e = it->second;
  object site = to_object(it->first, e);
  if (as_table) {
    return boost::json::serialize(
        table(array{table_row(site, clock_(), e.transition)}, e.resource_version));
  }
  return boost::json::serialize(site);
}

boost::system::result<SiteDirectory::Subscription, kube::Status> SiteDirectory::watch(
    std::optional<std::uint64_t> since, bool as_table, Listener listener) {
  std::lock_guard lock(mu_);
  if (since && *since > version_) {
    return kube::Status::bad_request("resourceVersion " + std::to_string(*since) +
                                     " is newer than this site's (" + std::to_string(version_) +
                                     ")");
  }
  if (!since || *since == 0) {
    for (const auto& [name, e] : sites_) {
      listener(event_line("ADDED", e, as_table));
    }
  } else if (*since < version_) {
    if (history_.empty() || history_.front().resource_version > *since + 1) {
      return kube::Status::expired(
          "too old resource version: " + std::to_string(*since) + " (" +
          std::to_string(history_.empty() ? version_ : history_.front().resource_version - 1) +
          ")");
    }
    for (const Event& ev : history_) {
      if (ev.resource_version <= *since) {
        continue;
      }
      const Entry& e = sites_.at(ev.name);
      // The object as it is now: a later change of the same site follows with its own event.
      if (e.resource_version == ev.resource_version) {
        listener(event_line(ev.type, e, as_table));
      }
    }
  }
  const std::uint64_t id = next_watcher_++;
  watchers_.emplace(id, Watcher{as_table, std::move(listener)});
  Subscription sub;
  sub.token_ = std::shared_ptr<void>(nullptr, [this, id](void*) {
    std::lock_guard unlock_guard(mu_);
    watchers_.erase(id);
  });
  return sub;
}

}  // namespace archipel::proxy
