#include "archipel/crdt/codec.hpp"

#include "crdt.pb.h"

#include <google/protobuf/arena.h>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <climits>
#include <limits>
#include <map>
#include <unordered_map>

namespace archipel::crdt {

namespace {

namespace wire = archipel::crdt::wire;

constexpr std::uint32_t kNoScope = 0xffffffff;  // Entry.scope: written in no incarnation
constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

// A JSON string with nothing escaped in it, sent without its quotes.
bool plain_string(std::string_view json) {
  return json.size() >= 2 && json.front() == '"' && json.back() == '"' &&
         json.substr(1, json.size() - 2).find_first_of("\\\"") == std::string_view::npos;
}

// Writes a batch: first gathers the tables shared by its objects, then writes each object.
class Writer {
 public:
  explicit Writer(std::span<const Outgoing> objects) : objects_(objects) {}

  std::string write() {
    for (const Outgoing& o : objects_) {
      to_.push_back(replicas_of(o.object));
      gather(o.object.root(), to_.back());
    }
    intern_strings();
    if (ms_base_ == kNone) {
      ms_base_ = 0;
    }
    for (const std::string& site : sites_) {
      m_.add_sites(site);
    }
    m_.set_ms_base(ms_base_);
    for (std::uint64_t c : counter_base_) {
      m_.add_counter_base(c == kNone ? 0 : c);
    }
    std::uint32_t index = 0;
    for (auto& [dot, i] : scopes_) {
      i = index++;
      m_.add_scopes(dot.replica);
      m_.add_scopes(dot.counter);
    }
    for (std::size_t i = 0; i < objects_.size(); ++i) {
      object(objects_[i], to_[i], *m_.add_objects());
    }
    return m_.SerializeAsString();
  }

 private:
  using Table = std::vector<ReplicaIndex>;  // an object's replica index -> the batch's

  Table replicas_of(const Object& object) {
    Table to;
    for (const std::string& site : object.sites()) {
      auto it = std::find(sites_.begin(), sites_.end(), site);
      if (it == sites_.end()) {
        sites_.push_back(site);
        it = sites_.end() - 1;
      }
      to.push_back(static_cast<ReplicaIndex>(it - sites_.begin()));
    }
    return to;
  }

  static Dot in(Dot d, const Table& to) { return Dot{to[d.replica], d.counter}; }

  void gather(const MvRegister& reg, const Table& to) {
    for (const MvRegister::Value& v : reg.values()) {
      ms_base_ = std::min(ms_base_, v.at.wall_ms());
      const Dot d = in(v.dot, to);
      if (d.replica >= counter_base_.size()) {
        counter_base_.resize(d.replica + 1, kNone);
      }
      counter_base_[d.replica] = std::min(counter_base_[d.replica], d.counter);
      for (Dot s : v.scope) {
        scopes_.emplace(in(s, to), 0);
      }
    }
  }

  void gather(const Node& node, const Table& to) {
    gather(node.value, to);
    gather(node.marks, to);
    gather(node.order, to);
    for (const auto& [key, child] : node.children) {
      ++string_uses_[key];
      gather(child, to);
    }
  }

  // The most used keys get the smallest (one-byte) indices.
  void intern_strings() {
    std::vector<std::pair<std::string_view, std::size_t>> by_use(string_uses_.begin(),
                                                                 string_uses_.end());
    std::sort(by_use.begin(), by_use.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (const auto& [key, uses] : by_use) {
      string_index_[key] = static_cast<std::uint32_t>(m_.strings_size());
      m_.add_strings(std::string(key));
    }
  }

  void object(const Outgoing& o, const Table& to, wire::Object& out) {
    out.set_key(std::string(o.key));
    out.set_complete(o.object.complete());
    const DotContext& context = o.object.context();

    std::vector<Dot> dots;  // the entries' dots, implied in the context
    std::map<Scopes, std::size_t> uses;
    collect(o.object.root(), dots, uses);
    std::sort(dots.begin(), dots.end());
    std::size_t most = 0;
    default_scope_.clear();
    for (const auto& [scope, n] : uses) {
      if (n > most) {
        most = n;
        default_scope_ = scope;
      }
    }
    for (Dot d : default_scope_) {
      out.add_default_scope(scopes_.at(in(d, to)));
    }

    std::vector<std::uint64_t> base;
    for (ReplicaIndex r = 0; r < to.size(); ++r) {
      if (const std::uint64_t b = context.base(r); b != 0) {
        if (to[r] >= base.size()) {
          base.resize(to[r] + 1, 0);
        }
        base[to[r]] = b;
      }
    }
    for (std::uint64_t b : base) {
      out.add_base(b);
    }
    // The cloud by replica: index, count, gaps (entries' dots left out).
    const std::vector<Dot>& cloud = context.cloud();
    std::vector<std::uint64_t> gaps;
    for (std::size_t i = 0; i < cloud.size();) {
      const ReplicaIndex replica = cloud[i].replica;
      gaps.clear();
      std::uint64_t previous = context.base(replica);
      for (; i < cloud.size() && cloud[i].replica == replica; ++i) {
        if (!std::binary_search(dots.begin(), dots.end(), cloud[i])) {
          gaps.push_back(cloud[i].counter - previous);
          previous = cloud[i].counter;
        }
      }
      if (!gaps.empty()) {
        out.add_cloud(to[replica]);
        out.add_cloud(gaps.size());
        for (std::uint64_t g : gaps) {
          out.add_cloud(g);
        }
      }
    }
    node(o.object.root(), to, true, *out.mutable_root());
  }

  static void collect(const MvRegister& reg, std::vector<Dot>& dots,
                      std::map<Scopes, std::size_t>& uses) {
    for (const MvRegister::Value& v : reg.values()) {
      dots.push_back(v.dot);
      if (!v.scope.empty()) {
        ++uses[v.scope];
      }
    }
  }

  static void collect(const Node& node, std::vector<Dot>& dots,
                      std::map<Scopes, std::size_t>& uses) {
    collect(node.value, dots, uses);
    collect(node.marks, dots, uses);
    collect(node.order, dots, uses);
    for (const auto& [key, child] : node.children) {
      collect(child, dots, uses);
    }
  }

  void entries(const MvRegister& reg, const Table& to, bool object_marks,
               google::protobuf::RepeatedPtrField<wire::Entry>& out) {
    out.Reserve(static_cast<int>(reg.values().size()));
    for (const MvRegister::Value& v : reg.values()) {
      wire::Entry* e = out.Add();
      const Dot d = in(v.dot, to);
      e->set_replica(d.replica);
      e->set_counter(d.counter - counter_base_[d.replica]);
      e->set_at_ms(v.at.wall_ms() - ms_base_);
      e->set_at_count(static_cast<std::uint32_t>(v.at.counter()));
      if (plain_string(v.value)) {
        e->set_text(v.value.substr(1, v.value.size() - 2));
      } else if (!v.value.empty()) {
        e->set_json(v.value);
      }
      if (object_marks ? v.scope.empty() : v.scope == default_scope_) {
        continue;  // implied
      }
      if (v.scope.empty()) {
        e->add_scope(kNoScope);
      }
      for (Dot s : v.scope) {
        e->add_scope(scopes_.at(in(s, to)));
      }
    }
  }

  void node(const Node& node, const Table& to, bool root, wire::Node& out) {
    entries(node.value, to, false, *out.mutable_value());
    entries(node.marks, to, root, *out.mutable_marks());
    entries(node.order, to, false, *out.mutable_order());
    out.mutable_children()->Reserve(static_cast<int>(node.children.size()));
    for (const auto& [key, child] : node.children) {
      out.add_keys(string_index_.at(key));
      this->node(child, to, false, *out.add_children());
    }
    out.set_shape(static_cast<std::uint32_t>(node.shape));
    out.set_cleared(node.cleared);
  }

  std::span<const Outgoing> objects_;
  std::vector<Table> to_;
  std::vector<std::string> sites_;
  std::uint64_t ms_base_ = kNone;
  std::vector<std::uint64_t> counter_base_;  // per batch replica: the least entry counter
  std::map<Dot, std::uint32_t> scopes_;      // incarnation (batch replica) -> index
  std::unordered_map<std::string_view, std::size_t> string_uses_;
  std::unordered_map<std::string_view, std::uint32_t> string_index_;
  Scopes default_scope_;  // of the object being written (object's replica indices)
  wire::Batch m_;
};

// Reads a message, checking everything join and materialize rely on.
class Reader {
 public:
  explicit Reader(const wire::Batch& m) : m_(m) {}

  boost::system::result<std::vector<Received>, CodecError> read() {
    std::vector<std::string_view> sorted(m_.sites().begin(), m_.sites().end());
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return fail("a site appears twice in the site table");
    }
    if (std::find(sorted.begin(), sorted.end(), std::string_view()) != sorted.end()) {
      return fail("empty site name in the site table");
    }
    if (static_cast<std::size_t>(m_.counter_base_size()) > sorted.size()) {
      return fail("a list per replica longer than the site table");
    }
    if (m_.scopes_size() % 2 != 0) {
      return fail("odd number of integers in the incarnation table");
    }
    for (int i = 0; i < m_.scopes_size(); i += 2) {
      if (!known_replica(m_.scopes(i)) || m_.scopes(i + 1) == 0) {
        return fail("incarnation outside the site table");
      }
      scopes_.push_back(Dot{static_cast<ReplicaIndex>(m_.scopes(i)), m_.scopes(i + 1)});
    }
    if (m_.ms_base() > Hlc::kMaxWallMs) {
      return fail("timestamp out of range");
    }
    std::vector<Received> out;
    out.reserve(static_cast<std::size_t>(m_.objects_size()));
    for (const wire::Object& o : m_.objects()) {
      auto received = object(o);
      if (!received) {
        return received.error();
      }
      out.push_back(std::move(*received));
    }
    return out;
  }

 private:
  boost::system::result<Received, CodecError> object(const wire::Object& o) {
    if (static_cast<std::size_t>(o.base_size()) > static_cast<std::size_t>(m_.sites_size())) {
      return fail("version vector longer than the site table");
    }
    std::vector<std::uint64_t> base(o.base().begin(), o.base().end());
    std::vector<Dot> cloud;
    if (auto r = read_cloud(o, base, cloud); !r) {
      return r.error();
    }
    default_scope_.clear();
    if (auto r = scope_of(o.default_scope(), default_scope_); !r) {
      return r.error();
    }
    dots_.clear();
    Node root;
    if (auto r = node(o.root(), root, 0); !r) {
      return r.error();
    }
    cloud.insert(cloud.end(), dots_.begin(), dots_.end());
    return Received{o.key(),
                    Object::assemble(std::vector<std::string>(m_.sites().begin(), m_.sites().end()),
                                     DotContext::assemble(std::move(base), std::move(cloud)),
                                     std::move(root), o.complete())};
  }

  bool known_replica(std::uint64_t replica) const {
    return replica < static_cast<std::uint64_t>(m_.sites_size());
  }

  CodecError fail(std::string what) const {
    std::string where;
    for (std::string_view key : path_) {
      where += where.empty() ? "" : ".";
      where += key;
    }
    return CodecError{"crdt message: " + what + (where.empty() ? "" : " (at " + where + ")")};
  }

  boost::system::result<void, CodecError> read_cloud(const wire::Object& o,
                                                     const std::vector<std::uint64_t>& base,
                                                     std::vector<Dot>& cloud) const {
    const auto& in = o.cloud();
    for (int i = 0; i < in.size();) {
      if (in.size() - i < 2 || !known_replica(in[i])) {
        return fail("context dots of a replica outside the site table");
      }
      const auto replica = static_cast<ReplicaIndex>(in[i]);
      const std::uint64_t count = in[i + 1];
      i += 2;
      if (count > static_cast<std::uint64_t>(in.size() - i)) {
        return fail("context dots cut short");
      }
      std::uint64_t counter = replica < base.size() ? base[replica] : 0;
      for (std::uint64_t n = 0; n < count; ++n, ++i) {
        const std::uint64_t gap = in[i];
        if (gap == 0 || counter > kNone - gap) {
          return fail("context dots out of order");
        }
        counter += gap;
        cloud.push_back(Dot{replica, counter});
      }
    }
    return {};
  }

  boost::system::result<void, CodecError> scope_of(
      const google::protobuf::RepeatedField<std::uint32_t>& indices, Scopes& out) const {
    if (indices.size() == 1 && indices[0] == kNoScope) {
      return {};
    }
    for (std::uint32_t i : indices) {
      if (i >= scopes_.size()) {
        return fail("incarnation index outside the table");
      }
      out.push_back(scopes_[i]);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return {};
  }

  enum class Kind { kValue, kMark, kObjectMark, kOrder };

  static bool needs_escape(const std::string& text) {
    return text.find_first_of("\\\"") != std::string::npos ||
           std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  }

  boost::system::result<void, CodecError> entries(
      const google::protobuf::RepeatedPtrField<wire::Entry>& in, Kind kind, MvRegister& out) {
    for (const wire::Entry& e : in) {
      if (!known_replica(e.replica())) {
        return fail("entry with a dot outside the site table");
      }
      const std::uint64_t from = e.replica() < static_cast<std::uint32_t>(m_.counter_base_size())
                                     ? m_.counter_base(static_cast<int>(e.replica()))
                                     : 0;
      if (e.counter() > kNone - from || from + e.counter() == 0) {
        return fail("entry with a dot counter out of range");
      }
      if (e.at_ms() > Hlc::kMaxWallMs - m_.ms_base() || e.at_count() > Hlc::kMaxCounter) {
        return fail("timestamp out of range");
      }
      const Dot dot{e.replica(), from + e.counter()};
      if (out.holds(dot)) {
        return fail("the same dot twice in a register");
      }
      std::string value;
      switch (e.content_case()) {
        case wire::Entry::kText:
          if (needs_escape(e.text())) {
            return fail("a string value with a character JSON must escape");
          }
          value.reserve(e.text().size() + 2);
          value.append(1, '"').append(e.text()).append(1, '"');
          break;
        case wire::Entry::kJson:
          if (!valid_json(e.json())) {
            return fail("a value that is not JSON");
          }
          value = e.json();
          break;
        case wire::Entry::CONTENT_NOT_SET: break;
      }
      const bool mark = kind == Kind::kMark || kind == Kind::kObjectMark;
      if (mark != value.empty()) {
        return fail(mark ? "a mark with a value" : "a value missing");
      }
      Scopes scope;
      if (kind == Kind::kObjectMark) {
        if (!e.scope().empty()) {
          return fail("the object's mark in an incarnation");
        }
      } else if (e.scope().empty()) {
        scope = default_scope_;
      } else if (auto r = scope_of(e.scope(), scope); !r) {
        return r;
      }
      out.add({dot, Hlc::from(m_.ms_base() + e.at_ms(), e.at_count()), std::move(value),
               std::move(scope)});
      dots_.push_back(dot);
    }
    return {};
  }

  boost::system::result<void, CodecError> node(const wire::Node& in, Node& out, int depth) {
    if (depth > kMaxDepth) {
      return fail("nested deeper than " + std::to_string(kMaxDepth));
    }
    if (in.shape() > static_cast<std::uint32_t>(Node::Shape::kSetList)) {
      return fail("unknown node shape " + std::to_string(in.shape()));
    }
    out.shape = static_cast<Node::Shape>(in.shape());
    out.cleared = in.cleared();
    if (auto r = entries(in.value(), Kind::kValue, out.value); !r) {
      return r;
    }
    if (auto r = entries(in.marks(), depth == 0 ? Kind::kObjectMark : Kind::kMark, out.marks); !r) {
      return r;
    }
    if (auto r = entries(in.order(), Kind::kOrder, out.order); !r) {
      return r;
    }
    if (in.keys_size() != in.children_size()) {
      return fail("as many keys as children expected");
    }
    const std::string* previous = nullptr;
    for (int i = 0; i < in.keys_size(); ++i) {
      if (in.keys(i) >= static_cast<std::uint32_t>(m_.strings_size())) {
        return fail("key index outside the string table");
      }
      const std::string& key = m_.strings(static_cast<int>(in.keys(i)));
      if (previous != nullptr && !(*previous < key)) {
        return fail("children keys repeated or out of order");
      }
      previous = &key;
      path_.push_back(key);
      auto child = out.children.emplace_hint(out.children.end(), key, Node());
      if (auto r = node(in.children(i), child->second, depth + 1); !r) {
        return r;
      }
      path_.pop_back();
    }
    return {};
  }

  static bool valid_json(const std::string& text) {
    boost::system::error_code ec;
    (void)boost::json::parse(text, ec);
    return !ec;
  }

  const wire::Batch& m_;
  std::vector<Dot> scopes_;
  Scopes default_scope_;   // of the object being read
  std::vector<Dot> dots_;  // its entries' dots
  std::vector<std::string_view> path_;
};

}  // namespace

std::string encode(std::span<const Outgoing> objects) {
  return Writer(objects).write();
}

std::string encode(const Object& object) {
  const Outgoing one{{}, object};
  return encode(std::span(&one, 1));
}

boost::system::result<std::vector<Received>, CodecError> decode_all(
    std::span<const std::byte> bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return CodecError{"crdt message: too large"};
  }
  // A message holds thousands of small nodes: parsed into an arena, they cost one allocation
  // per block instead of one each, and nothing to free one by one.
  google::protobuf::Arena arena;
  auto* m = google::protobuf::Arena::CreateMessage<wire::Batch>(&arena);
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return CodecError{"crdt message: not a batch of object deltas (protobuf parse failed)"};
  }
  return Reader(*m).read();
}

boost::system::result<Object, CodecError> decode(std::span<const std::byte> bytes) {
  auto all = decode_all(bytes);
  if (!all) {
    return all.error();
  }
  if (all->size() != 1) {
    return CodecError{"crdt message: " + std::to_string(all->size()) +
                      " objects where one was expected"};
  }
  return std::move(all->front().object);
}

}  // namespace archipel::crdt
