#include "archipel/sharing/replica.hpp"

#include "archipel/crdt/codec.hpp"
#include "sharing.pb.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>

namespace archipel::sharing {

namespace json = boost::json;

namespace {

constexpr std::string_view kMeta = "m";
constexpr std::string_view kOutbox = "q/";
constexpr std::string_view kState = "o/";
constexpr std::string_view kObserved = "k/";
constexpr std::string_view kExpected = "e/";
constexpr std::string_view kPeer = "p/";
constexpr std::string_view kSpec = "g";
constexpr std::string_view kDropCopies = "d";  // the membership asks removed sites to delete
// Writes remembered as in flight per object; older ones are taken as never showing.
constexpr std::size_t kMaxExpected = 8;

std::string outbox_key(std::uint64_t seq) {
  char digits[21];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
  return std::string(kOutbox) + digits;
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// What of an object the group replicates and shows: its intent, and the conflicts annotation.
std::optional<json::object> replicated(const std::optional<json::object>& object) {
  if (!object) {
    return std::nullopt;
  }
  json::object out = crdt::intent(*object);
  const json::value* annotations = nullptr;
  if (const json::value* metadata = object->if_contains("metadata")) {
    if (metadata->is_object()) {
      annotations = metadata->as_object().if_contains("annotations");
    }
  }
  if (annotations != nullptr && annotations->is_object()) {
    if (const json::value* c = annotations->as_object().if_contains(crdt::kConflictsAnnotation)) {
      json::value& kept = out["metadata"].as_object()["annotations"];
      if (!kept.is_object()) {
        kept = json::object();
      }
      kept.as_object()[crdt::kConflictsAnnotation] = *c;
    }
  }
  return out;
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.as_object());
}

void set_membership(wire::GroupMessage& m, const GroupSpec& spec, bool delete_copies = false) {
  wire::Membership* w = m.mutable_membership();
  w->set_removed_delete_copies(delete_copies);
  w->set_epoch(spec.epoch);
  w->set_by(spec.by);
  for (const std::string& site : spec.members) {
    w->add_members(site);
  }
}

// Whether membership (epoch, by) is newer than `spec`'s.
bool newer(const wire::Membership& m, const GroupSpec& spec) {
  return m.epoch() > spec.epoch || (m.epoch() == spec.epoch && m.by() > spec.by);
}

// The spec record: "<epoch> <by>\n<member>\n<member>...".
std::string encode_spec(const GroupSpec& spec) {
  std::string out = std::to_string(spec.epoch) + ' ' + spec.by;
  for (const std::string& m : spec.members) {
    out += '\n' + m;
  }
  return out;
}

bool decode_spec(std::string_view text, GroupSpec& spec) {
  const std::size_t eol = text.find('\n');
  const std::string_view head = text.substr(0, eol);
  const std::size_t space = head.find(' ');
  if (space == std::string_view::npos || !parse_u64(head.substr(0, space), spec.epoch)) {
    return false;
  }
  spec.by = head.substr(space + 1);
  spec.members.clear();
  for (std::string_view rest = eol == std::string_view::npos ? "" : text.substr(eol + 1);
       !rest.empty();) {
    const std::size_t end = rest.find('\n');
    spec.members.emplace_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
  }
  return true;
}

}  // namespace

GroupReplica::GroupReplica(std::string self, GroupSpec spec, SchemaOf schema, Options options)
    : self_(std::move(self)),
      spec_(std::move(spec)),
      schema_(std::move(schema)),
      options_(std::max<std::size_t>(options.deltas_per_message, 1),
               std::max<std::size_t>(options.states_per_message, 1)) {
  for (const std::string& m : spec_.members) {
    if (m != self_) {
      peers_.try_emplace(m);
    }
  }
  persist_spec();
}

bool GroupReplica::member(std::string_view site) const {
  return peers_.find(site) != peers_.end();
}

GroupReplica::Shared& GroupReplica::shared(const ObjectKey& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    it = objects_.emplace(key, Shared{crdt::Object(spec_.members), std::nullopt, {}}).first;
  }
  return it->second;
}

crdt::Schema GroupReplica::schema_for(const Shared& s, const json::object* hint) const {
  std::string kind;
  const std::optional<json::object> shown = hint == nullptr ? s.state.materialize() : std::nullopt;
  const json::object* object = hint != nullptr ? hint : (shown ? &*shown : nullptr);
  if (object != nullptr) {
    if (const json::value* k = object->if_contains("kind"); k != nullptr && k->is_string()) {
      kind = k->as_string();
    }
  }
  return [schema = schema_, kind](std::string_view path) { return schema(kind, path); };
}

void GroupReplica::local_change(const ObjectKey& key, const std::optional<json::object>& observed,
                                crdt::Hlc at) {
  Shared& s = shared(key);
  const std::optional<json::object> now = replicated(observed);
  for (auto it = s.expected.begin(); it != s.expected.end(); ++it) {
    if (now == replicated(*it)) {
      // The echo of a write this replica asked for: nothing new. Older writes will not show
      // any more; the state may have moved on since this one was asked for.
      s.observed = observed;
      s.expected.erase(s.expected.begin(), std::next(it));
      show(key, s);
      persist_object(key, s, /*state_changed=*/false);
      return;
    }
  }
  if (now == replicated(s.observed)) {
    s.observed = observed;  // only fields that are not replicated changed (status...)
    persist_object(key, s, /*state_changed=*/false);
    return;
  }
  crdt::Object delta;
  if (observed) {
    delta = s.state.update(s.observed ? &*s.observed : nullptr, *observed, self_, at,
                           schema_for(s, &*observed));
  } else {
    delta = s.state.erase(self_);
  }
  s.observed = observed;
  outbox_.push_back(Entry{++last_seq_, key, delta});
  records_.push_back({outbox_key(last_seq_), key + '\0' + crdt::encode(delta)});
  records_.push_back({std::string(kMeta), std::to_string(last_seq_)});
  drop_acknowledged();  // a group with no other member keeps nothing
  show(key, s);         // concurrent changes the local Kubernetes has not been given yet
  persist_object(key, s);
}

void GroupReplica::show(const ObjectKey& key, Shared& s) {
  std::optional<json::object> merged = s.state.materialize();
  note_conflicts(key, merged);
  if (merged == replicated(s.observed) && s.expected.empty()) {
    return;  // Kubernetes holds it
  }
  if (!s.expected.empty() ? s.expected.back() == merged : merged == replicated(s.observed)) {
    return;  // already asked for (or held, with no other write in flight)
  }
  s.expected.push_back(merged);
  if (s.expected.size() > kMaxExpected) {
    s.expected.erase(s.expected.begin());  // a write that never showed (refused)
  }
  writes_.push_back({key, std::move(merged)});
}

void GroupReplica::note_conflicts(const ObjectKey& key, const std::optional<json::object>& merged) {
  const json::value* annotations = nullptr;
  if (merged) {
    if (const json::value* metadata = merged->if_contains("metadata")) {
      annotations = metadata->as_object().if_contains("annotations");
    }
  }
  if (annotations != nullptr && annotations->as_object().contains(crdt::kConflictsAnnotation)) {
    conflicted_.insert(key);
  } else {
    conflicted_.erase(key);
  }
}

void GroupReplica::persist_object(const ObjectKey& key, const Shared& s, bool state_changed) {
  if (state_changed) {
    dirty_.insert(key);  // encoded once per step, in take_records()
  }
  records_.push_back({std::string(kObserved) + key,
                      s.observed ? std::optional(json::serialize(*s.observed)) : std::nullopt});
  std::optional<std::string> expected;
  if (!s.expected.empty()) {
    json::array list;
    for (const auto& e : s.expected) {
      list.push_back(e ? json::value(*e) : json::value(nullptr));
    }
    expected = json::serialize(list);
  }
  records_.push_back({std::string(kExpected) + key, std::move(expected)});
}

void GroupReplica::persist_peer(const std::string& name, const Peer& p) {
  records_.push_back(
      {std::string(kPeer) + name, std::to_string(p.acked) + ' ' + std::to_string(p.received)});
}

void GroupReplica::send(const std::string& peer, std::string bytes) {
  messages_.push_back({peer, std::move(bytes)});
}

void GroupReplica::send_ack(const std::string& peer, std::uint64_t seq) {
  wire::GroupMessage m;
  m.set_group(spec_.id);
  m.mutable_ack()->set_seq(seq);
  send(peer, m.SerializeAsString());
}

void GroupReplica::set_members(std::vector<std::string> members, bool delete_copies) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  GroupSpec next{spec_.id, std::move(members), spec_.epoch + 1, self_};
  drop_copies_ = delete_copies;
  // Everyone concerned hears of it: the members staying, those added, those removed.
  wire::GroupMessage m;
  m.set_group(spec_.id);
  set_membership(m, next, drop_copies_);
  for (const auto& [name, p] : peers_) {
    if (p.connected) {
      send(name, m.SerializeAsString());
    }
  }
  adopt(std::move(next));
}

bool GroupReplica::left() const noexcept {
  return std::find(spec_.members.begin(), spec_.members.end(), self_) == spec_.members.end();
}

void GroupReplica::adopt(GroupSpec next) {
  std::vector<std::string> gone;
  for (const auto& [name, p] : peers_) {
    if (std::find(next.members.begin(), next.members.end(), name) == next.members.end()) {
      gone.push_back(name);
    }
  }
  for (const std::string& name : gone) {
    remove_member(name);
  }
  for (const std::string& name : next.members) {
    add_member(name);
  }
  spec_ = std::move(next);
  persist_spec();
}

void GroupReplica::persist_spec() {
  records_.push_back({std::string(kSpec), encode_spec(spec_)});
  records_.push_back(
      {std::string(kDropCopies), drop_copies_ ? std::optional<std::string>("1") : std::nullopt});
}

void GroupReplica::add_member(std::string_view site) {
  if (site == self_ || member(site)) {
    return;
  }
  spec_.members.emplace_back(site);
  Peer& p = peers_[std::string(site)];
  persist_peer(std::string(site), p);
}

void GroupReplica::remove_member(std::string_view site) {
  auto it = peers_.find(site);
  if (it == peers_.end()) {
    return;
  }
  records_.push_back({std::string(kPeer) + it->first, std::nullopt});
  std::erase(spec_.members, it->first);
  peers_.erase(it);
  drop_acknowledged();
}

GroupStatus GroupReplica::status() const {
  GroupStatus out;
  out.id = spec_.id;
  out.members = spec_.members;
  out.objects = objects_.size();
  out.outbox = outbox_.size();
  out.last_seq = last_seq_;
  for (const auto& [name, p] : peers_) {
    out.peers.push_back({name, p.connected, p.acked, last_seq_ - p.acked, p.received});
  }
  out.conflicted.assign(conflicted_.begin(), conflicted_.end());
  return out;
}

void GroupReplica::connected(std::string_view peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    return;
  }
  Peer& p = it->second;
  p.connected = true;
  p.resumed = false;
  wire::GroupMessage m;
  m.set_group(spec_.id);
  m.mutable_resume()->set_received(p.received);
  set_membership(m, spec_, drop_copies_);
  send(it->first, m.SerializeAsString());
}

void GroupReplica::disconnected(std::string_view peer) {
  if (auto it = peers_.find(peer); it != peers_.end()) {
    it->second.connected = false;
    it->second.resumed = false;
  }
}

void GroupReplica::flush() {
  for (auto& [name, p] : peers_) {
    if (p.connected && p.resumed) {
      send_missing(name, p);
    }
  }
}

void GroupReplica::send_missing(const std::string& name, Peer& p) {
  if (p.sent >= last_seq_) {
    return;
  }
  auto message = [&](std::uint64_t first, std::uint64_t last, std::string batch, bool states,
                     bool more) {
    wire::GroupMessage m;
    m.set_group(spec_.id);
    wire::Deltas* d = m.mutable_deltas();
    d->set_first_seq(first);
    d->set_last_seq(last);
    d->set_batch(std::move(batch));
    d->set_states(states);
    d->set_more(more);
    send(name, m.SerializeAsString());
  };
  std::vector<crdt::Outgoing> out;
  if (outbox_.empty() || outbox_.front().seq > p.sent + 1) {
    // Behind what the outbox still holds: full states of every object, in parts.
    auto it = objects_.begin();
    do {
      out.clear();
      for (; it != objects_.end() && out.size() < options_.states_per_message; ++it) {
        out.push_back({it->first, it->second.state});
      }
      message(p.sent + 1, last_seq_, crdt::encode(out), true, it != objects_.end());
    } while (it != objects_.end());
  } else {
    // The outbox holds consecutive numbers: what follows p.sent, in parts.
    auto it = outbox_.begin() + static_cast<std::ptrdiff_t>(p.sent + 1 - outbox_.front().seq);
    while (it != outbox_.end()) {
      const std::uint64_t first = it->seq;
      std::map<std::string_view, crdt::Object> groups;  // one delta group per object
      for (std::size_t n = 0; it != outbox_.end() && n < options_.deltas_per_message; ++it, ++n) {
        auto [group, fresh] = groups.try_emplace(it->key, it->delta);
        if (!fresh) {
          group->second.join(it->delta);
        }
      }
      out.clear();
      for (const auto& [key, group] : groups) {
        out.push_back({key, group});
      }
      message(first, std::prev(it)->seq, crdt::encode(out), false, false);
    }
  }
  p.sent = last_seq_;
}

boost::system::result<void, ProtocolError> GroupReplica::receive(std::string_view peer,
                                                                 std::span<const std::byte> bytes) {
  wire::GroupMessage m;
  if (bytes.size() > static_cast<std::size_t>(INT_MAX) ||
      !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return ProtocolError{"sharing: malformed message from " + std::string(peer)};
  }
  if (m.group() != spec_.id) {
    return ProtocolError{"sharing: message for group " + m.group() + " sent to group " + spec_.id};
  }
  if (m.has_membership() && newer(m.membership(), spec_)) {
    // A newer membership, from a member in it or in ours (the peer channel authenticated it).
    const auto& in = m.membership().members();
    if (std::find(in.begin(), in.end(), peer) == in.end() && !member(peer)) {
      return ProtocolError{"sharing: " + std::string(peer) + " sent a membership of group " +
                           spec_.id + " without itself"};
    }
    GroupSpec next{spec_.id, {in.begin(), in.end()}, m.membership().epoch(), m.membership().by()};
    std::sort(next.members.begin(), next.members.end());
    next.members.erase(std::unique(next.members.begin(), next.members.end()), next.members.end());
    drop_copies_ = m.membership().removed_delete_copies();
    adopt(std::move(next));
    if (left()) {
      return {};  // the owner drops this replica
    }
  }
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    // Tell it who the members are: a site removed while away learns it on its next resume.
    wire::GroupMessage out;
    out.set_group(spec_.id);
    set_membership(out, spec_, drop_copies_);
    send(std::string(peer), out.SerializeAsString());
    return ProtocolError{"sharing: " + std::string(peer) + " is not a member of group " + spec_.id};
  }
  const std::string& name = it->first;
  Peer& p = it->second;
  switch (m.body_case()) {
    case wire::GroupMessage::kResume:
      if (m.resume().received() > last_seq_) {
        return ProtocolError{"sharing: " + name + " claims deltas this site never made"};
      }
      p.acked = std::max(p.acked, m.resume().received());
      persist_peer(name, p);
      drop_acknowledged();
      if (!m.resume().reply() && !m.resume().resend()) {
        // The peer's link to this site is new: what it holds of ours comes in the reply.
        wire::GroupMessage reply;
        reply.set_group(spec_.id);
        reply.mutable_resume()->set_received(p.received);
        reply.mutable_resume()->set_reply(true);
        set_membership(reply, spec_, drop_copies_);
        send(name, reply.SerializeAsString());
      }
      // Sending starts over from what the peer holds on its first Resume since this site's link
      // opened (a later one would have this site send again what is on its way: both sides send
      // one when their link opens, and answer the other's) and when the peer found a gap.
      if (m.resume().resend() || !p.resumed) {
        p.sent = m.resume().received();
        p.resumed = true;
        send_missing(name, p);
      }
      return {};
    case wire::GroupMessage::kAck:
      if (m.ack().seq() > last_seq_) {
        return ProtocolError{"sharing: " + name + " acknowledges deltas this site never made"};
      }
      if (m.ack().seq() > p.acked) {
        p.acked = m.ack().seq();
        persist_peer(name, p);
        drop_acknowledged();
      }
      return {};
    case wire::GroupMessage::kDeltas: break;
    case wire::GroupMessage::BODY_NOT_SET:
      if (m.has_membership()) {
        return {};  // a membership alone
      }
      return ProtocolError{"sharing: empty message from " + name};
  }
  const wire::Deltas& d = m.deltas();
  if (d.first_seq() == 0 || d.first_seq() > d.last_seq()) {
    return ProtocolError{"sharing: deltas with an empty range from " + name};
  }
  if (d.last_seq() <= p.received) {
    send_ack(name, p.received);  // a duplicate: it is durable here already
    return {};
  }
  if (!d.states() && d.first_seq() > p.received + 1) {
    // A gap (messages lost with a connection): ask again from what we have.
    wire::GroupMessage resume;
    resume.set_group(spec_.id);
    resume.mutable_resume()->set_received(p.received);
    resume.mutable_resume()->set_resend(true);
    send(name, resume.SerializeAsString());
    return {};
  }
  auto objects = crdt::decode_all(bytes_of(d.batch()));
  if (!objects) {
    return ProtocolError{"sharing: deltas from " + name + ": " + objects.error().message};
  }
  for (crdt::Received& r : *objects) {
    Shared& s = shared(r.key);
    s.state.join(r.object);
    show(r.key, s);
    persist_object(r.key, s);
  }
  if (d.more()) {
    return {};  // a part of full states: acknowledged with the last part
  }
  p.received = d.last_seq();
  persist_peer(name, p);
  send_ack(name, p.received);
  return {};
}

void GroupReplica::drop_acknowledged() {
  std::uint64_t everyone = last_seq_;
  for (const auto& [name, p] : peers_) {
    everyone = std::min(everyone, p.acked);
  }
  while (!outbox_.empty() && outbox_.front().seq <= everyone) {
    records_.push_back({outbox_key(outbox_.front().seq), std::nullopt});
    outbox_.pop_front();
  }
}

std::vector<Record> GroupReplica::take_records() {
  for (const ObjectKey& key : dirty_) {
    records_.push_back({std::string(kState) + key, crdt::encode(objects_.at(key).state)});
  }
  dirty_.clear();
  return std::exchange(records_, {});
}

std::vector<PeerMessage> GroupReplica::take_messages() {
  return std::exchange(messages_, {});
}

std::vector<LocalWrite> GroupReplica::take_local_writes() {
  return std::exchange(writes_, {});
}

std::optional<json::object> GroupReplica::shown(const ObjectKey& key) const {
  auto it = objects_.find(key);
  return it == objects_.end() ? std::nullopt : it->second.observed;
}

std::vector<ObjectKey> GroupReplica::keys() const {
  std::vector<ObjectKey> out;
  for (const auto& [key, s] : objects_) {
    out.push_back(key);
  }
  return out;
}

boost::system::result<GroupReplica, ProtocolError> GroupReplica::recover(
    std::string self, GroupSpec spec, SchemaOf schema, const std::vector<Record>& records,
    Options options) {
  auto corrupt = [](const std::string& key) {
    return ProtocolError{"sharing: corrupt record " + key};
  };
  // The membership it last had, when it had one.
  for (const Record& rec : records) {
    if (rec.key == kSpec && rec.value) {
      GroupSpec stored{spec.id, {}, 0, {}};
      if (!decode_spec(*rec.value, stored)) {
        return corrupt(rec.key);
      }
      spec = std::move(stored);
    }
  }
  GroupReplica r(std::move(self), std::move(spec), std::move(schema), options);
  for (const Record& rec : records) {
    if (!rec.value) {
      continue;
    }
    const std::string_view key = rec.key;
    const std::string& value = *rec.value;
    if (key == kSpec) {
      continue;
    } else if (key == kDropCopies) {
      r.drop_copies_ = value == "1";
    } else if (key == kMeta) {
      if (!parse_u64(value, r.last_seq_)) {
        return corrupt(rec.key);
      }
    } else if (key.starts_with(kOutbox)) {
      const std::size_t nul = value.find('\0');
      std::uint64_t seq = 0;
      if (nul == std::string::npos || !parse_u64(key.substr(kOutbox.size()), seq)) {
        return corrupt(rec.key);
      }
      auto delta = crdt::decode(bytes_of(value.substr(nul + 1)));
      if (!delta) {
        return corrupt(rec.key);
      }
      r.outbox_.push_back(Entry{seq, value.substr(0, nul), std::move(*delta)});
    } else if (key.starts_with(kState)) {
      auto state = crdt::decode(bytes_of(value));
      if (!state) {
        return corrupt(rec.key);
      }
      r.shared(std::string(key.substr(kState.size()))).state = std::move(*state);
    } else if (key.starts_with(kObserved)) {
      auto object = parse_object(value);
      if (!object) {
        return corrupt(rec.key);
      }
      r.shared(std::string(key.substr(kObserved.size()))).observed = std::move(*object);
    } else if (key.starts_with(kExpected)) {
      Shared& s = r.shared(std::string(key.substr(kExpected.size())));
      boost::system::error_code ec;
      const json::value list = json::parse(value, ec);
      if (ec || !list.is_array()) {
        return corrupt(rec.key);
      }
      for (const json::value& e : list.as_array()) {
        if (!e.is_null() && !e.is_object()) {
          return corrupt(rec.key);
        }
        s.expected.push_back(e.is_null() ? std::nullopt : std::optional(e.as_object()));
      }
    } else if (key.starts_with(kPeer)) {
      auto it = r.peers_.find(key.substr(kPeer.size()));
      const std::size_t space = value.find(' ');
      if (it == r.peers_.end()) {
        continue;  // no longer a member
      }
      if (space == std::string::npos ||
          !parse_u64(std::string_view(value).substr(0, space), it->second.acked) ||
          !parse_u64(std::string_view(value).substr(space + 1), it->second.received)) {
        return corrupt(rec.key);
      }
    } else {
      return corrupt(rec.key);
    }
  }
  std::sort(r.outbox_.begin(), r.outbox_.end(),
            [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
  for (const auto& [key, s] : r.objects_) {
    r.note_conflicts(key, s.state.materialize());
  }
  return r;
}

}  // namespace archipel::sharing
