#include "archipel/sharing/bridge.hpp"

#include "archipel/kube/resource.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <deque>
#include <map>
#include <set>

namespace archipel::sharing {

namespace json = boost::json;
namespace asio = boost::asio;
using asio::awaitable;

std::vector<std::string> default_shared_kinds() {
  return {"configmaps", "secrets", "serviceaccounts", "services", "deployments"};
}

namespace {

bool is_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (const char ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) {
      return false;
    }
  }
  return true;
}

const kube::ResourceType* namespaced_type(std::string_view plural) {
  for (const kube::ResourceType& t : kube::resource_types()) {
    if (t.plural == plural && t.namespaced) {
      return &t;
    }
  }
  return nullptr;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) {
      return parts;
    }
    s.remove_prefix(at + 1);
  }
}

// "/api/v1/namespaces/team-a/configmaps" or "/apis/apps/v1/namespaces/team-a/deployments".
std::string collection_path(const kube::ResourceType& t, std::string_view ns) {
  std::string path = t.group.empty() ? "/api/" : "/apis/" + std::string(t.group) + "/";
  path += t.version;
  path += "/namespaces/";
  path += ns;
  path += '/';
  path += t.plural;
  return path;
}

std::string key_prefix(const kube::ResourceType& t, std::string_view ns) {
  return std::string(t.group) + '/' + std::string(t.plural) + '/' + std::string(ns) + '/';
}

std::string_view name_of(const json::object& o) {
  if (const json::value* m = o.if_contains("metadata"); m != nullptr && m->is_object()) {
    if (const json::value* n = m->as_object().if_contains("name"); n != nullptr && n->is_string()) {
      return n->as_string();
    }
  }
  return {};
}

std::string resource_version_of(const json::object& o) {
  if (const json::value* m = o.if_contains("metadata"); m != nullptr && m->is_object()) {
    if (const json::value* v = m->as_object().if_contains("resourceVersion");
        v != nullptr && v->is_string()) {
      return std::string(v->as_string());
    }
  }
  return {};
}

// The value at dotted `path` in `o`, or nullptr.
const json::value* find_path(const json::object& o, std::string_view path) {
  const json::object* at = &o;
  for (;;) {
    const std::size_t dot = path.find('.');
    const json::value* v = at->if_contains(path.substr(0, dot));
    if (v == nullptr || dot == std::string_view::npos) {
      return v;
    }
    if (!v->is_object()) {
      return nullptr;
    }
    at = &v->as_object();
    path.remove_prefix(dot + 1);
  }
}

// Sets (or, with nullptr, erases) the value at dotted `path` in `o`.
void set_path(json::object& o, std::string_view path, const json::value* value) {
  json::object* at = &o;
  for (;;) {
    const std::size_t dot = path.find('.');
    if (dot == std::string_view::npos) {
      if (value != nullptr) {
        (*at)[path] = *value;
      } else {
        at->erase(path);
      }
      return;
    }
    json::value* next = at->if_contains(path.substr(0, dot));
    if (next == nullptr || !next->is_object()) {
      if (value == nullptr) {
        return;
      }
      next = &((*at)[path.substr(0, dot)] = json::object());
    }
    at = &next->as_object();
    path.remove_prefix(dot + 1);
  }
}

// What the group is told of an object: without the fields this site keeps to itself.
json::object reported(json::object o, const std::vector<std::string>& local_fields) {
  for (const std::string& path : local_fields) {
    set_path(o, path, nullptr);
  }
  return o;
}

// `o` as the replicated object carries it: a list's items and some answers lack apiVersion
// and kind.
json::object& typed(json::object& o, const kube::ResourceType& t) {
  o["apiVersion"] = t.api_version();
  o["kind"] = t.kind;
  return o;
}

// What to write: the group's object (its intent) over what Kubernetes holds, which keeps all
// that is not replicated, and the fields this site keeps to itself. managedFields is left out:
// the server keeps its own.
json::object compose(const json::object& live, const json::object& intent,
                     const std::vector<std::string>& local_fields) {
  json::object out = intent;
  json::value& metadata = out["metadata"];
  if (!metadata.is_object()) {
    metadata = json::object();
  }
  if (const json::value* m = live.if_contains("metadata"); m != nullptr && m->is_object()) {
    for (const auto& [field, value] : m->as_object()) {
      if (field != "name" && field != "namespace" && field != "labels" && field != "annotations" &&
          field != "managedFields") {
        metadata.as_object()[field] = value;
      }
    }
  }
  if (const json::value* status = live.if_contains("status")) {
    out["status"] = *status;
  }
  for (const std::string& path : local_fields) {
    set_path(out, path, find_path(live, path));
  }
  return out;
}

// The message of a Kubernetes Status body, or the body itself.
std::string status_message(const std::string& body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const json::value* m = v.as_object().if_contains("message");
        m != nullptr && m->is_string()) {
      return std::string(m->as_string());
    }
  }
  return body.substr(0, 200);
}

struct Core {
  Core(asio::io_context& io, std::shared_ptr<KubeClient> k, Bridge::Options o, Bridge::Report r,
       Bridge::Snapshot s)
      : strand(asio::make_strand(io)),
        kube(std::move(k)),
        options(std::move(o)),
        report(std::move(r)),
        snapshot(std::move(s)) {}

  struct Pending {
    std::string group;
    std::optional<json::object> object;
  };

  asio::strand<asio::io_context::executor_type> strand;
  std::shared_ptr<KubeClient> kube;
  Bridge::Options options;
  Bridge::Report report;
  Bridge::Snapshot snapshot;
  Bridge::Counters counters;
  std::atomic<bool> stopped{false};

  // On the strand only.
  std::map<std::string, std::uint64_t, std::less<>> followed;  // group → generation
  std::uint64_t generation = 0;
  std::map<ObjectKey, json::object, std::less<>> live;  // what the watches last showed
  std::map<ObjectKey, Pending, std::less<>> desired;    // writes not started yet
  std::deque<ObjectKey> waiting;                        // desired keys, oldest first
  std::set<ObjectKey, std::less<>> writing;             // keys a writer is writing
  std::size_t writers = 0;                              // writer coroutines running

  bool following(const std::string& group, std::uint64_t gen) const {
    auto it = followed.find(group);
    return !stopped && it != followed.end() && it->second == gen;
  }
};

awaitable<void> sleep_for(Core& c, std::chrono::milliseconds d) {
  asio::steady_timer timer(c.strand, d);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Lists, then watches, one collection a group shares, until the group is unfollowed.
awaitable<void> watch_collection(std::shared_ptr<Core> c, std::string group, std::uint64_t gen,
                                 Selection sel, const kube::ResourceType* type) {
  const std::string base = collection_path(*type, sel.namespace_name);
  const std::string prefix = key_prefix(*type, sel.namespace_name);
  auto wanted = [&](const json::object& o) { return sel.name.empty() || name_of(o) == sel.name; };
  bool failing = false;
  while (c->following(group, gen)) {
    if (failing) {
      co_await sleep_for(*c, c->options.retry * 10);
      if (!c->following(group, gen)) {
        break;
      }
    }
    failing = true;
    auto listed = co_await c->kube->request("GET", base, "");
    if (!listed || listed->status != 200) {
      spdlog::warn("sharing: group {}: listing {}: {}", group, base,
                   listed ? std::to_string(listed->status) + " " + status_message(listed->body)
                          : listed.error());
      continue;
    }
    boost::system::error_code ec;
    json::value list = json::parse(listed->body, ec);
    const json::value* items =
        !ec && list.is_object() ? list.as_object().if_contains("items") : nullptr;
    if (items == nullptr || !items->is_array()) {
      spdlog::warn("sharing: group {}: listing {}: not a list", group, base);
      continue;
    }
    std::string rv = resource_version_of(list.as_object());
    std::vector<std::pair<ObjectKey, json::object>> snapshot;
    for (auto it = c->live.lower_bound(prefix);
         it != c->live.end() && it->first.starts_with(prefix);) {
      it = c->live.erase(it);
    }
    for (const json::value& item : items->as_array()) {
      if (!item.is_object() || !wanted(item.as_object()) || name_of(item.as_object()).empty()) {
        continue;
      }
      json::object o = item.as_object();
      typed(o, *type);
      ObjectKey key = prefix + std::string(name_of(o));
      c->live[key] = o;
      snapshot.emplace_back(std::move(key), reported(std::move(o), c->options.local_fields));
    }
    c->snapshot(group, prefix, std::move(snapshot));
    failing = false;

    // Watch from the list's version until the stream ends or says to list again (410 Gone).
    bool relist = false;
    while (!relist && c->following(group, gen)) {
      auto on_line = [&](std::string_view line) {
        if (!c->following(group, gen)) {
          return false;
        }
        boost::system::error_code pec;
        json::value event = json::parse(line, pec);
        if (pec || !event.is_object()) {
          return true;  // a blank keep-alive line
        }
        const json::value* t = event.as_object().if_contains("type");
        json::value* object = event.as_object().if_contains("object");
        if (t == nullptr || !t->is_string() || object == nullptr || !object->is_object()) {
          return true;
        }
        const std::string_view kind = t->as_string();
        if (kind == "ERROR") {
          relist = true;
          return false;
        }
        json::object& o = object->as_object();
        if (const std::string v = resource_version_of(o); !v.empty()) {
          rv = v;
        }
        if (kind == "BOOKMARK" || !wanted(o) || name_of(o).empty()) {
          return true;
        }
        c->counters.events.fetch_add(1, std::memory_order_relaxed);
        ObjectKey key = prefix + std::string(name_of(o));
        if (kind == "DELETED") {
          c->live.erase(key);
          c->report(group, key, std::nullopt);
        } else {
          c->live[key] = typed(o, *type);
          c->report(group, key, reported(std::move(o), c->options.local_fields));
        }
        return true;
      };
      auto watched = co_await c->kube->stream(
          base + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + rv,
          on_line);
      if (!watched || watched->status != 200) {
        relist = true;
        failing = true;
      }
    }
  }
}

void do_follow(const std::shared_ptr<Core>& c, const std::string& group) {
  if (c->stopped || c->followed.contains(group)) {
    return;
  }
  auto sel = Selection::of_group(group, c->options.shared_kinds);
  if (!sel) {
    spdlog::warn("sharing: not following group {}: {}", group, sel.error());
    return;
  }
  const std::uint64_t gen = ++c->generation;
  c->followed[group] = gen;
  for (const std::string& plural : sel->resources) {
    const kube::ResourceType* t = namespaced_type(plural);
    asio::co_spawn(c->strand, watch_collection(c, group, gen, *sel, t), asio::detached);
  }
}

// kStale: another writer got there first; what Kubernetes holds now is read, and the write
// tried again at once. kRetry: tried again after a pause (unreachable, overloaded).
enum class Outcome { kDone, kStale, kRetry };

// What Kubernetes holds for `key` now, read directly (a write raced another writer, and the
// watch may not have shown it yet).
awaitable<void> refresh(std::shared_ptr<Core> c, ObjectKey key, std::string path,
                        const kube::ResourceType* t) {
  auto r = co_await c->kube->request("GET", path, "");
  if (!r) {
    co_return;
  }
  if (r->status == 404) {
    c->live.erase(key);
    co_return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (r->status == 200 && !ec && v.is_object()) {
    c->live[key] = std::move(typed(v.as_object(), *t));
  }
}

// Creates the namespace `ns` (a shared namespace may not exist yet on this site).
awaitable<void> create_namespace(std::shared_ptr<Core> c, std::string ns) {
  json::object body{
      {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", ns}}}};
  auto r = co_await c->kube->request(
      "POST", "/api/v1/namespaces?fieldManager=" + c->options.field_manager, json::serialize(body));
  if (r && r->status != 201 && r->status != 409) {
    spdlog::warn("sharing: creating namespace {}: {} {}", ns, r->status, status_message(r->body));
  }
}

awaitable<Outcome> write_once(std::shared_ptr<Core> c, ObjectKey key, Core::Pending p) {
  const std::vector<std::string_view> parts = split(key, '/');
  const kube::ResourceType* t = parts.size() == 4 ? namespaced_type(parts[1]) : nullptr;
  if (t == nullptr || t->group != parts[0]) {
    spdlog::warn("sharing: group {}: cannot write {}: not a known object key", p.group, key);
    co_return Outcome::kDone;
  }
  const std::string ns(parts[2]);
  const std::string name(parts[3]);
  const std::string base = collection_path(*t, ns);
  const std::string manager = "fieldManager=" + c->options.field_manager;
  KubeClient::Result r(boost::system::in_place_error, "not sent");
  std::string verb;
  if (!p.object) {
    verb = "DELETE";
    r = co_await c->kube->request(verb, base + '/' + name, "");
    if (r && (r->status == 200 || r->status == 202 || r->status == 404)) {
      c->counters.writes.fetch_add(r->status == 404 ? 0 : 1, std::memory_order_relaxed);
      co_return Outcome::kDone;
    }
  } else if (auto live = c->live.find(key); live != c->live.end()) {
    verb = "PUT";
    r = co_await c->kube->request(
        verb, base + '/' + name + '?' + manager,
        json::serialize(compose(live->second, *p.object, c->options.local_fields)));
  } else {
    verb = "POST";
    r = co_await c->kube->request(verb, base + '?' + manager, json::serialize(*p.object));
    if (r && r->status == 404) {
      co_await create_namespace(c, ns);
      co_return Outcome::kRetry;
    }
  }
  if (!r) {
    spdlog::debug("sharing: {} {}: {}", verb, key, r.error());
    co_return Outcome::kRetry;
  }
  const unsigned status = r->status;
  if (status == 200 || status == 201) {
    c->counters.writes.fetch_add(1, std::memory_order_relaxed);
    // The version written is what Kubernetes holds now, until the watch says otherwise: the
    // next write of this object builds on it (the watch event may come later).
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (!ec && v.is_object()) {
      c->live[key] = std::move(typed(v.as_object(), *t));
    }
    co_return Outcome::kDone;
  }
  if (status == 409 || status == 404) {
    // Another writer got there first (or the object went away).
    c->counters.write_conflicts.fetch_add(1, std::memory_order_relaxed);
    co_await refresh(c, key, base + '/' + name, t);
    co_return Outcome::kStale;
  }
  if (status >= 500 || status == 429) {
    co_return Outcome::kRetry;
  }
  c->counters.write_refusals.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("sharing: group {}: Kubernetes refused {} {}: {} {}", p.group, verb, key, status,
               status_message(r->body));
  co_return Outcome::kDone;
}

// Writes `key` until no newer write is wanted for it.
awaitable<void> write_key(std::shared_ptr<Core> c, const ObjectKey& key) {
  while (!c->stopped) {
    auto it = c->desired.find(key);
    if (it == c->desired.end()) {
      break;
    }
    Core::Pending p = std::move(it->second);
    c->desired.erase(it);
    for (int stale = 0;;) {
      const Outcome o = co_await write_once(c, key, p);
      if (o == Outcome::kDone || c->stopped || c->desired.contains(key)) {
        break;  // written, refused, or superseded by a newer write
      }
      // Raced again and again (a busy writer of the same object): pause too.
      if (o == Outcome::kRetry || ++stale % 4 == 0) {
        co_await sleep_for(*c, c->options.retry);
      }
    }
  }
}

// One of at most `writes_in_flight` writers: takes the oldest waiting object until none waits.
// An object another writer holds is left to it (that writer goes on while a newer state waits).
awaitable<void> writer(std::shared_ptr<Core> c) {
  while (!c->stopped && !c->waiting.empty()) {
    ObjectKey key = std::move(c->waiting.front());
    c->waiting.pop_front();
    if (!c->desired.contains(key) || !c->writing.insert(key).second) {
      continue;
    }
    co_await write_key(c, key);
    c->writing.erase(key);
  }
  --c->writers;
}

class BridgeImpl final : public Bridge {
 public:
  explicit BridgeImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~BridgeImpl() override { core_->stopped = true; }

  void follow(const std::string& group) override {
    asio::post(core_->strand, [c = core_, group] { do_follow(c, group); });
  }

  void unfollow(const std::string& group) override {
    asio::post(core_->strand, [c = core_, group] { c->followed.erase(group); });
  }

  void write(const std::string& group, const LocalWrite& w) override {
    asio::post(core_->strand, [c = core_, group, w] {
      auto [it, fresh] = c->desired.insert_or_assign(w.key, Core::Pending{group, w.object});
      if (fresh) {
        c->waiting.push_back(w.key);
      }
      if (!c->stopped && c->writers < std::max<std::size_t>(c->options.writes_in_flight, 1)) {
        ++c->writers;
        asio::co_spawn(c->strand, writer(c), asio::detached);
      }
    });
  }

  [[nodiscard]] const Counters& counters() const noexcept override { return core_->counters; }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

boost::system::result<Selection, std::string> Selection::of_group(
    std::string_view group, const std::vector<std::string>& shared_kinds) {
  auto invalid = [](std::string why) {
    return boost::system::result<Selection, std::string>(boost::system::in_place_error,
                                                         std::move(why));
  };
  const std::vector<std::string_view> parts = split(group, '/');
  Selection s;
  if (parts.size() == 2 && parts[0] == "namespace") {
    s.namespace_name = parts[1];
    for (const std::string& plural : shared_kinds) {
      if (namespaced_type(plural) == nullptr) {
        return invalid("'" + plural + "' is not a namespaced resource that can be shared");
      }
      s.resources.push_back(plural);
    }
  } else if (parts.size() == 3) {
    if (namespaced_type(parts[0]) == nullptr) {
      return invalid("'" + std::string(parts[0]) +
                     "' is not a namespaced resource that can be shared");
    }
    s.resources.emplace_back(parts[0]);
    s.namespace_name = parts[1];
    s.name = parts[2];
    if (!is_dns_label(s.name)) {
      return invalid("'" + s.name + "' is not an object name");
    }
  } else {
    return invalid("a group is 'namespace/<namespace>' or '<resource>/<namespace>/<name>', not '" +
                   std::string(group) + "'");
  }
  if (!is_dns_label(s.namespace_name)) {
    return invalid("'" + s.namespace_name + "' is not a namespace name");
  }
  return s;
}

std::string group_id(std::string_view resource, std::string_view ns, std::string_view name) {
  if (resource == "namespaces") {
    return "namespace/" + std::string(name);
  }
  return std::string(resource) + '/' + std::string(ns) + '/' + std::string(name);
}

std::optional<ObjectKey> object_key(std::string_view plural, std::string_view ns,
                                    std::string_view name) {
  const kube::ResourceType* t = namespaced_type(plural);
  if (t == nullptr) {
    return std::nullopt;
  }
  return key_prefix(*t, ns) + std::string(name);
}

std::unique_ptr<Bridge> Bridge::start(asio::io_context& io, std::shared_ptr<KubeClient> kube,
                                      Options options, Report report, Snapshot snapshot) {
  auto core = std::make_shared<Core>(io, std::move(kube), std::move(options), std::move(report),
                                     std::move(snapshot));
  return std::make_unique<BridgeImpl>(std::move(core));
}

}  // namespace archipel::sharing
