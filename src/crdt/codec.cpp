#include "archipel/crdt/codec.hpp"

#include "crdt.pb.h"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <climits>
#include <limits>
#include <map>

namespace archipel::crdt {

namespace {

namespace wire = archipel::crdt::wire;

// What the encoder gathers from the tree before writing it.
struct Tables {
  std::uint64_t hlc_base = std::numeric_limits<std::uint64_t>::max();
  std::map<Dot, std::uint32_t> scopes;  // incarnation -> index
  std::vector<Dot> dots;                // the entries' dots (implied in the context)
};

void gather(const MvRegister& reg, Tables& t) {
  for (const MvRegister::Value& v : reg.values()) {
    t.hlc_base = std::min(t.hlc_base, v.at.value);
    t.dots.push_back(v.dot);
    for (Dot s : v.scope) {
      t.scopes.emplace(s, 0);
    }
  }
}

void gather(const Node& node, Tables& t) {
  gather(node.value, t);
  gather(node.marks, t);
  gather(node.order, t);
  for (const auto& [key, child] : node.children) {
    gather(child, t);
  }
}

void put(const MvRegister& reg, const Tables& t,
         google::protobuf::RepeatedPtrField<wire::Entry>& out) {
  out.Reserve(static_cast<int>(reg.values().size()));
  for (const MvRegister::Value& v : reg.values()) {
    wire::Entry* e = out.Add();
    e->set_replica(v.dot.replica);
    e->set_counter(v.dot.counter);
    e->set_at(v.at.value - t.hlc_base);
    if (!v.value.empty()) {
      e->set_value(v.value);
    }
    for (Dot s : v.scope) {
      e->add_scope(t.scopes.at(s));
    }
  }
}

void put(const Node& node, const Tables& t, wire::Node& out) {
  put(node.value, t, *out.mutable_value());
  put(node.marks, t, *out.mutable_marks());
  put(node.order, t, *out.mutable_order());
  out.mutable_keys()->Reserve(static_cast<int>(node.children.size()));
  out.mutable_children()->Reserve(static_cast<int>(node.children.size()));
  for (const auto& [key, child] : node.children) {
    out.add_keys(key);
    put(child, t, *out.add_children());
  }
  out.set_shape(static_cast<std::uint32_t>(node.shape));
  out.set_cleared(node.cleared);
}

// Reads a message into an Object, checking everything join and materialize rely on.
class Reader {
 public:
  explicit Reader(const wire::Object& m) : m_(m) {}

  boost::system::result<Object, CodecError> read() {
    std::vector<std::string> sites(m_.sites().begin(), m_.sites().end());
    std::vector<std::string_view> sorted(sites.begin(), sites.end());
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return fail("a site appears twice in the site table");
    }
    if (std::find(sorted.begin(), sorted.end(), std::string_view()) != sorted.end()) {
      return fail("empty site name in the site table");
    }
    if (static_cast<std::size_t>(m_.base_size()) > sites.size()) {
      return fail("version vector longer than the site table");
    }
    std::vector<std::uint64_t> base(m_.base().begin(), m_.base().end());

    if (m_.cloud_size() % 2 != 0 || m_.scopes_size() % 2 != 0) {
      return fail("odd number of integers in a list of dots");
    }
    std::vector<Dot> cloud;
    cloud.reserve(static_cast<std::size_t>(m_.cloud_size() / 2));
    for (int i = 0; i < m_.cloud_size(); i += 2) {
      const std::uint64_t replica = m_.cloud(i);
      if (!known_replica(replica)) {
        return fail("dot of replica " + std::to_string(replica) + " outside the site table");
      }
      const std::uint64_t from = !cloud.empty() && cloud.back().replica == replica
                                     ? cloud.back().counter
                                     : (replica < base.size() ? base[replica] : 0);
      const std::uint64_t gap = m_.cloud(i + 1);
      if (gap == 0 || from > std::numeric_limits<std::uint64_t>::max() - gap) {
        return fail("dots of the context out of order");
      }
      cloud.push_back(Dot{static_cast<ReplicaIndex>(replica), from + gap});
    }
    for (int i = 0; i < m_.scopes_size(); i += 2) {
      if (!known_replica(m_.scopes(i)) || m_.scopes(i + 1) == 0) {
        return fail("incarnation outside the site table");
      }
      scopes_.push_back(Dot{static_cast<ReplicaIndex>(m_.scopes(i)), m_.scopes(i + 1)});
    }

    Node root;
    if (auto r = node(m_.root(), root, 0); !r) {
      return r.error();
    }
    cloud.insert(cloud.end(), dots_.begin(), dots_.end());
    return Object::assemble(std::move(sites),
                            DotContext::assemble(std::move(base), std::move(cloud)),
                            std::move(root), m_.complete());
  }

 private:
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

  enum class Kind { kValue, kMark, kOrder };

  boost::system::result<void, CodecError> entries(
      const google::protobuf::RepeatedPtrField<wire::Entry>& in, Kind kind, MvRegister& out) {
    for (const wire::Entry& e : in) {
      if (!known_replica(e.replica()) || e.counter() == 0) {
        return fail("entry with a dot outside the site table");
      }
      if (e.at() > std::numeric_limits<std::uint64_t>::max() - m_.hlc_base()) {
        return fail("timestamp out of range");
      }
      const Dot dot{e.replica(), e.counter()};
      if (out.holds(dot)) {
        return fail("the same dot twice in a register");
      }
      if (kind == Kind::kMark ? !e.value().empty() : !valid_json(e.value())) {
        return fail(kind == Kind::kMark ? "a mark with a value" : "a value that is not JSON");
      }
      Scopes scope;
      for (std::uint32_t i : e.scope()) {
        if (i >= scopes_.size()) {
          return fail("incarnation index outside the table");
        }
        scope.push_back(scopes_[i]);
      }
      std::sort(scope.begin(), scope.end());
      scope.erase(std::unique(scope.begin(), scope.end()), scope.end());
      out.add({dot, Hlc{m_.hlc_base() + e.at()}, e.value(), scope});
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
    if (auto r = entries(in.marks(), Kind::kMark, out.marks); !r) {
      return r;
    }
    if (auto r = entries(in.order(), Kind::kOrder, out.order); !r) {
      return r;
    }
    if (in.keys_size() != in.children_size()) {
      return fail("as many keys as children expected");
    }
    for (int i = 0; i < in.keys_size(); ++i) {
      const std::string& key = in.keys(i);
      if (i > 0 && !(in.keys(i - 1) < key)) {
        return fail("children keys repeated or out of order");
      }
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

  const wire::Object& m_;
  std::vector<Dot> scopes_;
  std::vector<Dot> dots_;
  std::vector<std::string_view> path_;
};

}  // namespace

std::string encode(const Object& object) {
  Tables t;
  gather(object.root(), t);
  if (t.dots.empty()) {
    t.hlc_base = 0;
  }
  std::sort(t.dots.begin(), t.dots.end());

  wire::Object m;
  for (const std::string& site : object.sites()) {
    m.add_sites(site);
  }
  const DotContext& context = object.context();
  std::size_t last = 0;
  for (std::size_t r = 0; r < object.sites().size(); ++r) {
    if (context.base(static_cast<ReplicaIndex>(r)) != 0) {
      last = r + 1;
    }
  }
  for (std::size_t r = 0; r < last; ++r) {
    m.add_base(context.base(static_cast<ReplicaIndex>(r)));
  }
  Dot previous{};
  for (const Dot& d : context.cloud()) {
    if (std::binary_search(t.dots.begin(), t.dots.end(), d)) {
      continue;  // implied by the entry that holds it
    }
    const std::uint64_t from = previous.counter != 0 && previous.replica == d.replica
                                   ? previous.counter
                                   : context.base(d.replica);
    m.add_cloud(d.replica);
    m.add_cloud(d.counter - from);
    previous = d;
  }
  std::uint32_t index = 0;
  for (auto& [dot, i] : t.scopes) {
    i = index++;
    m.add_scopes(dot.replica);
    m.add_scopes(dot.counter);
  }
  m.set_hlc_base(t.hlc_base);
  m.set_complete(object.complete());
  put(object.root(), t, *m.mutable_root());
  return m.SerializeAsString();
}

boost::system::result<Object, CodecError> decode(std::span<const std::byte> bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return CodecError{"crdt message: too large"};
  }
  wire::Object m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return CodecError{"crdt message: not an object delta or state (protobuf parse failed)"};
  }
  return Reader(m).read();
}

}  // namespace archipel::crdt
