#include "archipel/proxy/shared_objects.hpp"

#include "archipel/kube/object.hpp"
#include "archipel/sharing/bridge.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>

namespace archipel::proxy {

namespace json = boost::json;

namespace {

constexpr std::string_view kGroupVersion = "archipel.io/v1";

// What a SharedObject's spec names, as the sharing service's group id.
struct Target {
  std::string group;
  std::string resource;
  std::string namespace_name;
  std::string name;
};

std::optional<Target> target_of(std::string_view group) {
  auto sel = sharing::Selection::of_group(group, {});
  if (!sel) {
    return std::nullopt;
  }
  if (sel->name.empty()) {  // a namespace
    return Target{std::string(group), "namespaces", {}, sel->namespace_name};
  }
  return Target{std::string(group), sel->resources.front(), sel->namespace_name, sel->name};
}

std::string rfc3339_ms(std::int64_t ms) {
  return kube::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

json::object to_object(const Target& t, const std::vector<std::string>& members,
                       const sharing::GroupStatus* status) {
  json::object o;
  o["apiVersion"] = kGroupVersion;
  o["kind"] = "SharedObject";
  json::object meta;
  meta["name"] = shared_object_name(t.group);
  o["metadata"] = std::move(meta);
  json::object spec;
  spec["resource"] = t.resource;
  if (!t.namespace_name.empty()) {
    spec["namespace"] = t.namespace_name;
  }
  spec["name"] = t.name;
  json::array sites;
  for (const std::string& m : members) {
    sites.emplace_back(m);
  }
  spec["sites"] = std::move(sites);
  o["spec"] = std::move(spec);
  if (status != nullptr) {
    json::object st;
    st["objects"] = status->objects;
    st["outbox"] = status->outbox;
    st["lastSequence"] = status->last_seq;
    json::array conflicts;
    for (const std::string& key : status->conflicted) {
      conflicts.emplace_back(key);
    }
    st["conflicts"] = std::move(conflicts);
    json::array replicas;
    for (const sharing::PeerStatus& p : status->peers) {
      json::object r;
      r["site"] = p.site;
      r["connected"] = p.connected;
      r["acknowledged"] = p.acknowledged;
      r["behind"] = p.behind;
      r["received"] = p.received;
      if (p.last_heard_ms > 0) {
        r["lastSync"] = rfc3339_ms(p.last_heard_ms);
      }
      replicas.emplace_back(std::move(r));
    }
    st["replicas"] = std::move(replicas);
    o["status"] = std::move(st);
  }
  return o;
}

json::object column(std::string_view name, std::string_view type, int priority,
                    std::string_view description) {
  return json::object{{"name", name},
                      {"type", type},
                      {"format", ""},
                      {"description", description},
                      {"priority", priority}};
}

json::object table_row(const json::object& shared, const sharing::GroupStatus& s) {
  std::string sites;
  for (const std::string& m : s.members) {
    sites += (sites.empty() ? "" : ",") + m;
  }
  std::size_t connected = 0;
  std::uint64_t behind = 0;
  for (const sharing::PeerStatus& p : s.peers) {
    connected += p.connected ? 1 : 0;
    behind = std::max(behind, p.behind);
  }
  json::object row;
  row["cells"] = json::array{
      shared.at("metadata").at("name"),
      json::value(sites),
      json::value(std::to_string(connected) + "/" + std::to_string(s.peers.size())),
      json::value(s.objects),
      json::value(s.outbox),
      json::value(behind),
      json::value(s.conflicted.size()),
  };
  row["object"] = json::object{{"kind", "PartialObjectMetadata"},
                               {"apiVersion", "meta.k8s.io/v1"},
                               {"metadata", shared.at("metadata")}};
  return row;
}

json::object table(json::array rows) {
  json::object t;
  t["kind"] = "Table";
  t["apiVersion"] = "meta.k8s.io/v1";
  t["metadata"] = json::object();
  t["columnDefinitions"] = json::array{
      column("Name", "string", 0, "What is shared: namespace.<ns> or <resource>.<ns>.<name>."),
      column("Sites", "string", 0, "The sites that replicate it."),
      column("Connected", "string", 0, "Replicas this site is connected to, of all of them."),
      column("Objects", "integer", 0, "Shared objects (present or deleted)."),
      column("Outbox", "integer", 0, "Changes made here that some replica has not acknowledged."),
      column("Behind", "integer", 0, "Changes made here that the most lagging replica lacks."),
      column("Conflicts", "integer", 0, "Objects showing concurrent writes."),
  };
  t["rows"] = std::move(rows);
  return t;
}

// The SharedObject a POST or PUT body describes: its group id and sites.
boost::system::result<std::pair<Target, std::vector<std::string>>, kube::Status> parse_body(
    std::string_view body, const std::vector<std::string>& known,
    const std::vector<std::string>& shared_kinds) {
  auto invalid = [](std::string why) {
    return boost::system::result<std::pair<Target, std::vector<std::string>>, kube::Status>(
        boost::system::in_place_error, kube::Status::bad_request("SharedObject: " + why));
  };
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return invalid("the body is not a JSON object");
  }
  const json::value* spec = v.as_object().if_contains("spec");
  if (spec == nullptr || !spec->is_object()) {
    return invalid("spec is required");
  }
  auto text = [&](std::string_view field) -> std::string {
    const json::value* f = spec->as_object().if_contains(field);
    return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
  };
  Target t{{}, text("resource"), text("namespace"), text("name")};
  if (t.resource == "namespaces" || t.resource == "namespace") {
    t.resource = "namespaces";
    if (!t.namespace_name.empty()) {
      return invalid("spec.namespace: a shared namespace is named by spec.name");
    }
  }
  t.group = sharing::group_id(t.resource, t.namespace_name, t.name);
  if (auto sel = sharing::Selection::of_group(t.group, shared_kinds); !sel) {
    return invalid(sel.error());
  }
  std::vector<std::string> sites;
  const json::value* list = spec->as_object().if_contains("sites");
  if (list == nullptr || !list->is_array()) {
    return invalid("spec.sites: a list of site names is required");
  }
  for (const json::value& s : list->as_array()) {
    if (!s.is_string()) {
      return invalid("spec.sites: site names are strings");
    }
    const std::string name(s.as_string());
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return invalid("spec.sites: unknown site '" + name + "'");
    }
    sites.push_back(name);
  }
  return std::pair{std::move(t), std::move(sites)};
}

}  // namespace

std::string shared_object_name(std::string_view group) {
  std::string name(group);
  std::replace(name.begin(), name.end(), '/', '.');
  return name;
}

SharedObjects::SharedObjects(sharing::SharingService& service, std::string self,
                             std::vector<std::string> sites, std::vector<std::string> shared_kinds)
    : service_(service),
      self_(std::move(self)),
      sites_(std::move(sites)),
      shared_kinds_(std::move(shared_kinds)) {
  if (std::find(sites_.begin(), sites_.end(), self_) == sites_.end()) {
    sites_.push_back(self_);
  }
}

boost::system::result<SharedObjects::Reply, kube::Status> SharedObjects::handle(
    std::string_view method, std::string_view name, std::string_view query, std::string_view body,
    bool as_table) const {
  bool delete_copies = false;
  for (std::string_view rest = query; !rest.empty();) {
    const std::string_view param = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(rest.size(), param.size() + 1));
    if (param.starts_with("removedCopies=")) {
      const std::string_view v = param.substr(param.find('=') + 1);
      if (v != "Delete" && v != "Keep") {
        return kube::Status::bad_request("removedCopies: Keep or Delete, not '" + std::string(v) +
                                         "'");
      }
      delete_copies = v == "Delete";
    }
  }
  // A group left with this site alone is shared with nobody: not shown (its replica stays,
  // to tell sites that were removed while away, and to number a later share after it).
  std::vector<sharing::GroupStatus> groups = service_.status();
  std::erase_if(groups, [](const sharing::GroupStatus& g) { return g.members.size() < 2; });
  auto find = [&](std::string_view n) -> const sharing::GroupStatus* {
    for (const sharing::GroupStatus& g : groups) {
      if (shared_object_name(g.id) == n) {
        return &g;
      }
    }
    return nullptr;
  };
  auto not_found = [&] {
    return boost::system::result<Reply, kube::Status>(
        boost::system::in_place_error,
        kube::Status::not_found("archipel.io", "sharedobjects", name));
  };
  if (method == "GET" || method == "HEAD") {
    if (name.empty()) {
      json::array items;
      for (const sharing::GroupStatus& g : groups) {
        auto t = target_of(g.id);
        if (!t) {
          continue;
        }
        json::object o = to_object(*t, g.members, &g);
        items.emplace_back(as_table ? json::value(table_row(o, g)) : json::value(std::move(o)));
      }
      if (as_table) {
        return Reply{200, json::serialize(table(std::move(items)))};
      }
      json::object list{{"apiVersion", kGroupVersion},
                        {"kind", "SharedObjectList"},
                        {"metadata", json::object()},
                        {"items", std::move(items)}};
      return Reply{200, json::serialize(list)};
    }
    const sharing::GroupStatus* g = find(name);
    auto t = g != nullptr ? target_of(g->id) : std::nullopt;
    if (!t) {
      return not_found();
    }
    json::object o = to_object(*t, g->members, g);
    return Reply{200, json::serialize(as_table ? json::value(table(json::array{table_row(o, *g)}))
                                               : json::value(std::move(o)))};
  }
  if (method == "POST" || method == "PUT") {
    if ((method == "POST") != name.empty()) {
      return kube::Status::method_not_allowed(
          method == "POST" ? "POST creates a SharedObject: use the collection"
                           : "PUT replaces one SharedObject: name it");
    }
    auto parsed = parse_body(body, sites_, shared_kinds_);
    if (!parsed) {
      return parsed.error();
    }
    auto& [t, sites] = *parsed;
    const sharing::GroupStatus* existing = find(shared_object_name(t.group));
    if (method == "PUT") {
      if (shared_object_name(t.group) != name) {
        return kube::Status::bad_request("SharedObject: the spec names " +
                                         shared_object_name(t.group) + ", not " +
                                         std::string(name));
      }
      if (existing == nullptr) {
        return not_found();
      }
    } else if (existing != nullptr) {
      sites.insert(sites.end(), existing->members.begin(), existing->members.end());
    }
    sites.push_back(self_);
    std::sort(sites.begin(), sites.end());
    sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
    std::vector<std::string> removed;
    if (existing != nullptr) {
      std::set_difference(existing->members.begin(), existing->members.end(), sites.begin(),
                          sites.end(), std::back_inserter(removed));
    }
    if (!removed.empty()) {
      service_.unshare(t.group, removed, delete_copies);
    }
    service_.share(t.group, sites);
    return Reply{method == "POST" && existing == nullptr ? 201U : 200U,
                 json::serialize(to_object(t, sites, nullptr))};
  }
  if (method == "DELETE") {
    const sharing::GroupStatus* g = find(name);
    auto t = g != nullptr ? target_of(g->id) : std::nullopt;
    if (name.empty() || !t) {
      return not_found();
    }
    service_.unshare(g->id, {}, delete_copies);
    return Reply{200, json::serialize(to_object(*t, {self_}, nullptr))};
  }
  return kube::Status::method_not_allowed("sharedobjects: " + std::string(method) +
                                          " is not supported");
}

}  // namespace archipel::proxy
