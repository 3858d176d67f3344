#include "archipel/sharing/service.hpp"

#include "archipel/sharing/bridge.hpp"
#include "sharing.pb.h"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>

namespace archipel::sharing {

namespace {

namespace asio = boost::asio;
using asio::awaitable;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// The state the service's coroutines share; touched only on `strand`.
struct Core {
  Core(asio::io_context& io, peer::PeerNode& n, RecordStore& s, SchemaOf sc,
       SharingService::Options o, SharingService::Hooks h)
      : strand(asio::make_strand(io)),
        timer(strand),
        node(n),
        store(s),
        schema(std::move(sc)),
        options(std::move(o)),
        hooks(std::move(h)) {}

  struct Link {
    std::shared_ptr<peer::PeerStream> stream;  // ours, towards the peer
    bool opening = false;
    bool writing = false;
    std::deque<std::string> queue;
  };

  asio::strand<asio::io_context::executor_type> strand;
  asio::steady_timer timer;
  peer::PeerNode& node;
  RecordStore& store;
  SchemaOf schema;
  SharingService::Options options;
  SharingService::Hooks hooks;
  crdt::HybridClock clock;
  std::map<std::string, std::unique_ptr<GroupReplica>, std::less<>> groups;
  std::map<std::string, Link, std::less<>> links;
  std::vector<std::weak_ptr<peer::PeerStream>> incoming;  // peers' streams towards us
  std::atomic<bool> stopped{false};
  bool flush_pending = false;  // a flush is posted to the strand

  // When each group last heard from each peer (Unix ms).
  std::map<std::string, std::map<std::string, std::int64_t, std::less<>>, std::less<>> heard;

  mutable std::mutex status_mutex;  // guards what follows
  std::vector<GroupStatus> status;
  std::map<std::string, SharingService::Traffic, std::less<>> traffic;
};

awaitable<void> write_link(std::shared_ptr<Core> c, std::string peer);
awaitable<void> open_link(std::shared_ptr<Core> c, std::string peer);
awaitable<void> watch_close(std::shared_ptr<Core> c, std::string peer,
                            std::shared_ptr<peer::PeerStream> stream);

bool is_member(const GroupReplica& g, std::string_view site) {
  const auto& m = g.spec().members;
  return std::find(m.begin(), m.end(), site) != m.end();
}

void publish_status(Core& c) {
  std::vector<GroupStatus> all;
  for (const auto& [id, g] : c.groups) {
    GroupStatus s = g->status();
    if (auto h = c.heard.find(id); h != c.heard.end()) {
      for (PeerStatus& p : s.peers) {
        if (auto at = h->second.find(p.site); at != h->second.end()) {
          p.last_heard_ms = at->second;
        }
      }
    }
    all.push_back(std::move(s));
  }
  const std::lock_guard lock(c.status_mutex);
  c.status = std::move(all);
}

// Drops the stream towards `peer`: the groups see it disconnected until it is opened again.
void drop_link(Core& c, const std::string& peer) {
  auto it = c.links.find(peer);
  if (it != c.links.end()) {
    if (it->second.stream) {
      it->second.stream->reset({peer::RpcCode::kCancelled, "sharing: link dropped"});
    }
    it->second.stream.reset();
    it->second.queue.clear();
  }
  for (auto& [id, g] : c.groups) {
    if (is_member(*g, peer)) {
      g->disconnected(peer);
    }
  }
}

// Persists a group's step, then lets its messages and writes out.
void settle(const std::shared_ptr<Core>& c, const std::string& id, GroupReplica& g) {
  std::vector<Record> records = g.take_records();
  if (!records.empty()) {
    if (auto written = c->store.write(id, records); !written) {
      // Not durable: nothing of this step may be acknowledged. Its messages are dropped (the
      // protocol sends them again after the next resume); the state stays in memory.
      spdlog::error("sharing: group {}: {}", id, written.error());
      (void)g.take_messages();
      return;
    }
  }
  for (PeerMessage& m : g.take_messages()) {
    Core::Link& link = c->links[m.peer];
    if (link.stream || link.opening) {
      link.queue.push_back(std::move(m.bytes));
    }
  }
  for (auto& [peer, link] : c->links) {
    if (link.stream && !link.writing && !link.queue.empty()) {
      link.writing = true;
      asio::co_spawn(c->strand, write_link(c, peer), asio::detached);
    }
  }
  for (const LocalWrite& w : g.take_local_writes()) {
    if (!c->stopped && c->hooks.write) {
      c->hooks.write(id, w);
    }
  }
}

awaitable<void> write_link(std::shared_ptr<Core> c, std::string peer) {
  for (;;) {
    auto it = c->links.find(peer);
    if (c->stopped || it == c->links.end() || !it->second.stream || it->second.queue.empty()) {
      break;
    }
    std::shared_ptr<peer::PeerStream> stream = it->second.stream;
    std::string bytes = std::move(it->second.queue.front());
    it->second.queue.pop_front();
    const std::size_t size = bytes.size();
    auto sent = co_await stream->send(peer::Bytes(bytes.begin(), bytes.end()), false);
    if (sent) {
      const std::lock_guard lock(c->status_mutex);
      SharingService::Traffic& t = c->traffic[peer];
      t.peer = peer;
      ++t.messages_sent;
      t.bytes_sent += size;
    }
    if (!sent) {
      spdlog::debug("sharing: stream to {} failed: {}", peer, sent.error().message);
      drop_link(*c, peer);
      break;
    }
  }
  if (auto it = c->links.find(peer); it != c->links.end()) {
    it->second.writing = false;
  }
}

// The peer never writes on our stream: receive() returns when it ends or resets it (its
// service stopped, say, while the channel stays up), and the next tick opens a new one.
awaitable<void> watch_close(std::shared_ptr<Core> c, std::string peer,
                            std::shared_ptr<peer::PeerStream> stream) {
  (void)co_await stream->receive();
  if (auto it = c->links.find(peer); it != c->links.end() && it->second.stream == stream) {
    drop_link(*c, peer);
  }
}

awaitable<void> open_link(std::shared_ptr<Core> c, std::string peer) {
  auto opened = co_await c->node.open(peer, std::string(kSharingMethod), peer::Bytes{},
                                      std::chrono::milliseconds(0), false);
  Core::Link& link = c->links[peer];
  link.opening = false;
  if (!opened || c->stopped) {
    co_return;
  }
  link.stream = std::move(*opened);
  asio::co_spawn(c->strand, watch_close(c, peer, link.stream), asio::detached);
  for (auto& [id, g] : c->groups) {
    if (is_member(*g, peer)) {
      g->connected(peer);
      settle(c, id, *g);
    }
  }
}

// Opens streams to the peers the channel reaches, drops those it no longer does.
void check_links(const std::shared_ptr<Core>& c) {
  std::map<std::string, bool, std::less<>> reachable;
  for (const peer::PeerStatus& s : c->node.status()) {
    reachable[s.name] = s.connected;
  }
  for (const auto& [id, g] : c->groups) {
    for (const std::string& m : g->spec().members) {
      if (m == c->options.site) {
        continue;
      }
      Core::Link& link = c->links[m];
      const bool up = reachable[m];
      if (up && !link.stream && !link.opening) {
        link.opening = true;
        asio::co_spawn(c->strand, open_link(c, m), asio::detached);
      } else if (!up && link.stream) {
        drop_link(*c, m);
      }
    }
  }
}

awaitable<void> tick(std::shared_ptr<Core> c) {
  while (!c->stopped) {
    c->timer.expires_after(c->options.tick);
    co_await c->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (c->stopped) {
      break;
    }
    check_links(c);
    for (auto& [id, g] : c->groups) {
      g->flush();
      settle(c, id, *g);
    }
    publish_status(*c);
  }
}

// Ends a group's step: persists it and lets its messages and writes out; drops the group if
// the site left it; resumes with members added whose stream is already open.
void after_step(const std::shared_ptr<Core>& c, const std::string& id) {
  auto it = c->groups.find(id);
  if (it == c->groups.end()) {
    return;
  }
  GroupReplica& g = *it->second;
  if (g.left()) {
    (void)g.take_records();
    (void)g.take_local_writes();
    if (g.delete_copies_on_leaving() && c->hooks.write) {
      for (const ObjectKey& key : g.keys()) {
        if (g.shown(key)) {
          c->hooks.write(id, LocalWrite{key, std::nullopt});
        }
      }
    }
    for (PeerMessage& m : g.take_messages()) {
      if (auto link = c->links.find(m.peer); link != c->links.end() && link->second.stream) {
        link->second.queue.push_back(std::move(m.bytes));
      }
    }
    if (auto erased = c->store.erase(id); !erased) {
      spdlog::error("sharing: group {}: {}", id, erased.error());
    }
    spdlog::info("sharing: left group {} (its copies stay)", id);
    c->groups.erase(it);
    c->heard.erase(id);
    if (c->hooks.left) {
      c->hooks.left(id);
    }
    return;
  }
  for (const PeerStatus& p : g.status().peers) {
    if (auto link = c->links.find(p.site);
        !p.connected && link != c->links.end() && link->second.stream) {
      g.connected(p.site);
    }
  }
  settle(c, id, g);
}

// The group `id`, resumed from the store (this site alone until its records or a member's
// membership say otherwise).
GroupReplica* open_group(const std::shared_ptr<Core>& c, const std::string& id) {
  if (auto it = c->groups.find(id); it != c->groups.end()) {
    return it->second.get();
  }
  auto records = c->store.load(id);
  if (!records) {
    spdlog::error("sharing: group {}: {}", id, records.error());
    return nullptr;
  }
  auto replica = GroupReplica::recover(c->options.site, GroupSpec{id, {c->options.site}}, c->schema,
                                       *records, c->options.replica);
  if (!replica) {
    spdlog::error("sharing: group {}: {}", id, replica.error().message);
    return nullptr;
  }
  auto& g = c->groups[id] = std::make_unique<GroupReplica>(std::move(*replica));
  for (const auto& [peer, link] : c->links) {
    if (link.stream && is_member(*g, peer)) {
      g->connected(peer);
    }
  }
  if (c->hooks.joined) {
    c->hooks.joined(id);
  }
  return g.get();
}

// Sends local changes without waiting for the tick: posted behind what the strand already
// has queued (a list's worth of changes, say), so that a burst still leaves in few messages.
void flush_soon(const std::shared_ptr<Core>& c) {
  if (c->flush_pending) {
    return;
  }
  c->flush_pending = true;
  asio::post(c->strand, [c] {
    c->flush_pending = false;
    if (c->stopped) {
      return;
    }
    for (auto& [id, g] : c->groups) {
      g->flush();
      settle(c, id, *g);
    }
  });
}

void on_message(const std::shared_ptr<Core>& c, const std::string& peer, const peer::Bytes& bytes) {
  if (c->stopped) {
    return;  // a successor may own the group's records now
  }
  {
    const std::lock_guard lock(c->status_mutex);
    SharingService::Traffic& t = c->traffic[peer];
    t.peer = peer;
    ++t.messages_received;
    t.bytes_received += bytes.size();
  }
  wire::GroupMessage m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    spdlog::warn("sharing: malformed message from {}", peer);
    return;
  }
  GroupReplica* g = nullptr;
  if (auto it = c->groups.find(m.group()); it != c->groups.end()) {
    g = it->second.get();
  } else {
    const auto& members = m.membership().members();
    if (std::find(members.begin(), members.end(), c->options.site) == members.end()) {
      return;  // a group this site is not invited to
    }
    if (auto sel = Selection::of_group(m.group(), {}); !sel) {
      spdlog::warn("sharing: {} invites this site to group {}: {}", peer, m.group(), sel.error());
      return;
    }
    spdlog::info("sharing: joining group {} on {}'s invitation", m.group(), peer);
    g = open_group(c, m.group());
    if (g == nullptr) {
      return;
    }
  }
  if (auto r = g->receive(peer, std::as_bytes(std::span(bytes.data(), bytes.size()))); !r) {
    spdlog::warn("sharing: {}", r.error().message);
  } else {
    c->heard[m.group()][peer] = static_cast<std::int64_t>(wall_ms());
  }
  after_step(c, m.group());
}

awaitable<void> receive_loop(std::shared_ptr<Core> c, std::shared_ptr<peer::PeerStream> stream) {
  const std::string peer = stream->peer();
  std::erase_if(c->incoming, [](const auto& w) { return w.expired(); });
  c->incoming.push_back(stream);
  while (!c->stopped) {
    auto message = co_await stream->receive();
    if (!message || !*message) {
      break;
    }
    on_message(c, peer, **message);
  }
}

// Serves a peer's stream towards this site: its messages, on the service's strand.
awaitable<void> serve_if_running(std::shared_ptr<Core> c,
                                 std::shared_ptr<peer::PeerStream> stream) {
  if (!c || c->stopped) {
    co_return;
  }
  co_await asio::co_spawn(c->strand, receive_loop(c, std::move(stream)), asio::use_awaitable);
}

// Creates `group` (or changes its members) with `members`, this site added. On the strand.
void share_group(const std::shared_ptr<Core>& c, const std::string& group,
                 std::vector<std::string> members) {
  if (c->stopped) {
    return;
  }
  GroupReplica* g = open_group(c, group);
  if (g == nullptr) {
    return;
  }
  members.push_back(c->options.site);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members != g->spec().members) {
    g->set_members(std::move(members));
  }
  after_step(c, group);
  publish_status(*c);
}

awaitable<void> ask_to_share(std::shared_ptr<Core> c, std::string peer, peer::Bytes request) {
  auto stream = co_await c->node.open(peer, std::string(kShareMethod), std::move(request),
                                      std::chrono::seconds(10), true);
  if (!stream) {
    spdlog::warn("sharing: asking {} to share: {}", peer, stream.error().message);
    co_return;
  }
  (void)co_await (*stream)->receive();  // its end: the request was taken
}

// A peer's share request (share_among at a site outside the group).
awaitable<void> serve_share(std::weak_ptr<Core> weak, std::shared_ptr<peer::PeerStream> stream,
                            peer::Bytes request) {
  auto c = weak.lock();
  wire::GroupMessage m;
  if (!c || c->stopped || !m.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    co_return;
  }
  const auto& in = m.membership().members();
  std::vector<std::string> members(in.begin(), in.end());
  if (std::find(members.begin(), members.end(), c->options.site) == members.end()) {
    spdlog::warn("sharing: {} asked to share {} among sites without this one", stream->peer(),
                 m.group());
    co_return;
  }
  if (auto sel = Selection::of_group(m.group(), {}); !sel) {
    spdlog::warn("sharing: {} asked to share {}: {}", stream->peer(), m.group(), sel.error());
    co_return;
  }
  spdlog::info("sharing: {} asks to share {}", stream->peer(), m.group());
  asio::post(c->strand, [c, group = m.group(), members = std::move(members)]() mutable {
    share_group(c, group, std::move(members));
  });
}

class SharingServiceImpl final : public SharingService {
 public:
  explicit SharingServiceImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  ~SharingServiceImpl() override {
    core_->stopped = true;
    // Waits (bounded, in case the io_context no longer runs) for the strand to finish what it
    // was doing: a successor started on the same store must not see this one still writing.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    asio::post(core_->strand, [c = core_, done] {
      c->timer.cancel();
      for (auto& [peer, link] : c->links) {
        if (link.stream) {
          link.stream->reset({peer::RpcCode::kCancelled, "sharing: stopped"});
        }
      }
      c->links.clear();
      for (const auto& w : c->incoming) {
        if (auto stream = w.lock()) {
          stream->reset({peer::RpcCode::kCancelled, "sharing: stopped"});
        }
      }
      done->set_value();
    });
    finished.wait_for(std::chrono::seconds(5));
  }

  void share(std::string group, std::vector<std::string> members) override {
    asio::post(core_->strand,
               [c = core_, group = std::move(group), members = std::move(members)]() mutable {
                 share_group(c, group, std::move(members));
               });
  }

  void share_among(std::string group, std::vector<std::string> members) override {
    if (std::find(members.begin(), members.end(), core_->options.site) != members.end()) {
      share(std::move(group), std::move(members));
      return;
    }
    asio::post(core_->strand, [c = core_, group = std::move(group), members = std::move(members)] {
      std::string asked;
      for (const peer::PeerStatus& s : c->node.status()) {
        if (s.connected && asked.empty() &&
            std::find(members.begin(), members.end(), s.name) != members.end()) {
          asked = s.name;
        }
      }
      if (asked.empty()) {
        spdlog::warn("sharing: cannot share {}: none of its sites is reachable", group);
        return;
      }
      wire::GroupMessage m;
      m.set_group(group);
      for (const std::string& site : members) {
        m.mutable_membership()->add_members(site);
      }
      const std::string bytes = m.SerializeAsString();
      asio::co_spawn(c->strand, ask_to_share(c, asked, peer::Bytes(bytes.begin(), bytes.end())),
                     asio::detached);
    });
  }

  void unshare(std::string group, std::vector<std::string> sites, bool delete_copies) override {
    asio::post(core_->strand,
               [c = core_, group = std::move(group), sites = std::move(sites), delete_copies] {
                 auto it = c->groups.find(group);
                 if (c->stopped || it == c->groups.end()) {
                   return;
                 }
                 std::vector<std::string> members;
                 for (const std::string& m : it->second->spec().members) {
                   const bool removed =
                       sites.empty() ? m != c->options.site
                                     : std::find(sites.begin(), sites.end(), m) != sites.end();
                   if (!removed || m == c->options.site) {
                     members.push_back(m);
                   }
                 }
                 if (members != it->second->spec().members) {
                   it->second->set_members(std::move(members), delete_copies);
                 }
                 after_step(c, group);
                 publish_status(*c);
               });
  }

  void local_change(std::string group, ObjectKey key,
                    std::optional<boost::json::object> observed) override {
    asio::post(core_->strand, [c = core_, group = std::move(group), key = std::move(key),
                               observed = std::move(observed)] {
      auto it = c->groups.find(group);
      if (c->stopped || it == c->groups.end()) {
        return;
      }
      it->second->local_change(key, observed, c->clock.now(wall_ms()));
      settle(c, it->first, *it->second);
      flush_soon(c);
    });
  }

  void local_snapshot(std::string group, std::string prefix,
                      std::vector<std::pair<ObjectKey, boost::json::object>> items) override {
    asio::post(core_->strand, [c = core_, group = std::move(group), prefix = std::move(prefix),
                               items = std::move(items)] {
      auto it = c->groups.find(group);
      if (c->stopped || it == c->groups.end()) {
        return;
      }
      GroupReplica& g = *it->second;
      std::set<std::string_view> listed;
      for (const auto& [key, object] : items) {
        listed.insert(key);
        g.local_change(key, object, c->clock.now(wall_ms()));
      }
      for (const ObjectKey& key : g.keys()) {
        if (key.starts_with(prefix) && !listed.contains(key)) {
          g.local_change(key, std::nullopt, c->clock.now(wall_ms()));
        }
      }
      settle(c, it->first, g);
      flush_soon(c);
    });
  }

  std::vector<GroupStatus> status() const override {
    const std::lock_guard lock(core_->status_mutex);
    return core_->status;
  }

  std::vector<Traffic> traffic() const override {
    const std::lock_guard lock(core_->status_mutex);
    std::vector<Traffic> out;
    for (const auto& [peer, t] : core_->traffic) {
      out.push_back(t);
    }
    return out;
  }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

std::unique_ptr<SharingService> SharingService::start(boost::asio::io_context& io,
                                                      peer::PeerNode& node, RecordStore& store,
                                                      SchemaOf schema, Options options,
                                                      Hooks hooks) {
  auto core = std::make_shared<Core>(io, node, store, std::move(schema), std::move(options),
                                     std::move(hooks));
  // Not a coroutine lambda: it only starts the coroutine, which holds its own copies. A weak
  // reference: the node may outlive the service.
  std::weak_ptr<Core> weak = core;
  node.handle(std::string(kSharingMethod),
              [weak](std::shared_ptr<peer::PeerStream> stream, peer::Bytes) -> awaitable<void> {
                return serve_if_running(weak.lock(), std::move(stream));
              });
  auto service = std::make_unique<SharingServiceImpl>(core);
  node.handle(
      std::string(kShareMethod),
      [weak](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) -> awaitable<void> {
        return serve_share(weak, std::move(stream), std::move(request));
      });
  asio::post(core->strand, [core] {
    auto stored = core->store.groups();
    if (!stored) {
      spdlog::error("sharing: {}", stored.error());
      return;
    }
    for (const std::string& id : *stored) {
      open_group(core, id);
    }
    publish_status(*core);
  });
  asio::co_spawn(core->strand, tick(core), asio::detached);
  return service;
}

}  // namespace archipel::sharing
