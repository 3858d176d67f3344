#include "archipel/crdt/object.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <utility>

namespace archipel::crdt {

namespace json = boost::json;

namespace {

const Node kNothing;

// Puts the dots of `reg` into `covered`, and the incarnations they were written in into
// `inherited` (when given).
void cover(const MvRegister& reg, DotContext& covered, Scopes* inherited = nullptr) {
  for (const MvRegister::Value& v : reg.values()) {
    covered.insert(v.dot);
    if (inherited != nullptr) {
      for (Dot d : v.scope) {
        inherited->push_back(d);
      }
    }
  }
}

// Every dot under `node`.
void cover_all(const Node& node, DotContext& covered, Scopes* inherited = nullptr) {
  cover(node.value, covered, inherited);
  cover(node.marks, covered, inherited);
  cover(node.order, covered, inherited);
  for (const auto& [key, child] : node.children) {
    cover_all(child, covered, inherited);
  }
}

// Removes what is under `node`: puts into `covered` the dots of its entries, except those
// also written in an incarnation the remover has not seen (a concurrent create of the same
// element or object, which this remove does not undo), or in one of the marks so kept: those
// stay, so that the other incarnation keeps its fields. `incarnates`: `node` is an element or
// the object (its marks are incarnations).
void remove_all(const Node& node, DotContext& covered, const DotContext& seen, Scopes kept,
                bool incarnates) {
  auto stays = [&](const MvRegister::Value& v) {
    return std::any_of(v.scope.begin(), v.scope.end(), [&](Dot d) {
      return !seen.contains(d) || std::find(kept.begin(), kept.end(), d) != kept.end();
    });
  };
  auto remove = [&](const MvRegister& reg, bool marks) {
    for (const MvRegister::Value& v : reg.values()) {
      if (!stays(v)) {
        covered.insert(v.dot);
      } else if (marks) {
        kept.push_back(v.dot);
      }
    }
  };
  remove(node.value, false);
  remove(node.order, false);
  remove(node.marks, incarnates);
  const bool elements = node.shape != Node::Shape::kFields;
  for (const auto& [key, child] : node.children) {
    remove_all(child, covered, seen, kept, elements);
  }
}

const Scopes& sorted(Scopes& scopes) {
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  return scopes;
}

const Node* child_of(const Node* node, std::string_view key) {
  if (node == nullptr) {
    return nullptr;
  }
  auto it = node->children.find(key);
  return it == node->children.end() ? nullptr : &it->second;
}

// The live incarnations of the object or element at `node` (sorted).
Scopes live_marks(const Node* node) {
  Scopes out;
  if (node != nullptr) {
    for (const MvRegister::Value& mark : node->marks.values()) {
      out.push_back(mark.dot);
    }
  }
  return out;
}

// How an element is identified in its list: its merge-key fields (JSON, comma-separated), or
// its whole JSON for a set (and for an element that is not an object).
std::string element_key(const json::value& element, const ListShape& shape) {
  if (shape.kind == ListShape::Kind::kSet || !element.is_object()) {
    return json::serialize(element);
  }
  std::string key;
  for (std::string_view field : shape.keys) {
    if (!key.empty()) {
      key += ',';
    }
    const json::value* v = element.as_object().if_contains(field);
    key += v != nullptr ? json::serialize(*v) : "null";
  }
  return key;
}

using Elements = std::vector<std::pair<std::string, const json::value*>>;

// The elements of `list` by key, in list order; a repeated key keeps its first element.
Elements elements_of(const json::array& list, const ListShape& shape) {
  Elements out;
  out.reserve(list.size());
  for (const json::value& element : list) {
    std::string key = element_key(element, shape);
    if (std::none_of(out.begin(), out.end(), [&](const auto& e) { return e.first == key; })) {
      out.emplace_back(std::move(key), &element);
    }
  }
  return out;
}

const json::value* find_element(const Elements& elements, std::string_view key) {
  auto it =
      std::find_if(elements.begin(), elements.end(), [&](const auto& e) { return e.first == key; });
  return it == elements.end() ? nullptr : it->second;
}

// The replicated part of an object's metadata: name, namespace, labels, annotations (without
// the conflicts annotation, which is derived). Null when the object has no metadata.
json::value metadata_intent(const json::object& object) {
  const json::value* metadata = object.if_contains("metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    return nullptr;
  }
  json::object kept;
  for (std::string_view field : {"name", "namespace", "labels", "annotations"}) {
    if (const json::value* v = metadata->as_object().if_contains(field)) {
      kept.emplace(field, *v);
    }
  }
  if (json::value* annotations = kept.if_contains("annotations")) {
    if (json::object* a = annotations->if_object();
        a != nullptr && a->erase(kConflictsAnnotation)) {
      if (a->empty()) {
        kept.erase("annotations");
      }
    }
  }
  return kept;
}

// Writes the difference between what a site saw and what it now has into a delta, covering
// (in the delta's context) the dots the site's state holds at each path it overwrites.
//
// A value written belongs to the live incarnations its writer sees and to those of the values
// it replaces: the writer may hold a value whose incarnation's mark has not reached it yet,
// and the value replacing it must live as long as that incarnation does (otherwise a remove of
// the writer's incarnation would leave the other one without the field).
class Writer {
 public:
  Writer(ReplicaIndex me, const DotContext& seen, Hlc at, const Schema& schema, DotContext& covered)
      : me_(me),
        counter_(seen.base(me)),
        at_(at),
        schema_(schema),
        seen_(seen),
        covered_(covered) {}

  // `previous` and `next` are whole objects: only their intent is looked at (see intent()).
  void root(const Node& state, const json::object* previous, const json::object& next, Node& out) {
    Scopes incarnations = live_marks(&state);
    if (incarnations.empty()) {  // created, or re-created after a delete: a new incarnation
      incarnations.push_back(fresh());
      out.marks.add({incarnations.front(), at_, {}, {}});
      previous = nullptr;
    }
    fields(&state, previous, next, out, incarnations, /*top=*/true);
    // metadata: only its intent (a small copy, unlike the spec).
    const json::value next_metadata = metadata_intent(next);
    const json::value previous_metadata =
        previous != nullptr ? metadata_intent(*previous) : json::value();
    if (next_metadata.is_object()) {
      if (previous == nullptr || previous_metadata != next_metadata) {
        append_path("metadata");
        write(child_of(&state, "metadata"), previous != nullptr ? &previous_metadata : nullptr,
              next_metadata, out.children["metadata"], incarnations);
        path_.clear();
      }
    } else if (const Node* gone = child_of(&state, "metadata");
               gone != nullptr && previous_metadata.is_object()) {
      remove_all(*gone, covered_, seen_, {}, false);
      out.children["metadata"].cleared = true;
    }
  }

 private:
  Dot fresh() {
    const Dot d{me_, ++counter_};
    covered_.insert(d);
    return d;
  }

  // `top`: the object's own fields, where status is not replicated and metadata is written
  // apart.
  void fields(const Node* state, const json::object* previous, const json::object& next, Node& out,
              const Scopes& scope, bool top = false) {
    const std::size_t depth = path_.size();
    for (const auto& [key, value] : next) {
      if (top && (key == "status" || key == "metadata")) {
        continue;
      }
      const json::value* before = previous != nullptr ? previous->if_contains(key) : nullptr;
      if (before != nullptr && value.kind() != before->kind() && *before == value) {
        continue;  // equal numbers of different kinds (1 and 1.0): not changed
      }
      append_path(key);
      auto [child, added] = out.children.try_emplace(key);
      write(child_of(state, key), before, value, child->second, scope);
      if (added && child->second.empty() && !child->second.cleared) {
        out.children.erase(child);  // nothing changed under it
      }
      path_.resize(depth);
    }
    if (previous == nullptr) {
      return;
    }
    for (const auto& [key, value] : *previous) {
      if (next.contains(key) || (top && (key == "status" || key == "metadata"))) {
        continue;
      }
      if (const Node* gone = child_of(state, key)) {
        remove_all(*gone, covered_, seen_, {}, false);
        out.children[key].cleared = true;
      }
    }
  }

  void write(const Node* state, const json::value* before, const json::value& next, Node& out,
             const Scopes& scope) {
    if (next.is_object()) {
      const json::object* previous = before != nullptr ? before->if_object() : nullptr;
      if (previous == nullptr) {  // this site made it an object: it replaces what was here
        Scopes inherited = scope;
        if (state != nullptr) {
          cover(state->value, covered_, &inherited);  // a scalar
          if (state->shape != Node::Shape::kFields) {
            cover_all(*state, covered_, &inherited);  // a list
            out.cleared = true;
          }
        }
        out.marks.add({fresh(), at_, {}, sorted(inherited)});
      }
      fields(state, previous, next.as_object(), out, scope);
      return;
    }
    if (next.is_array()) {
      const ListShape shape = schema_(path_);
      if (shape.kind != ListShape::Kind::kAtomic) {
        list(state, before, next.as_array(), shape, out, scope);
        return;
      }
    }
    // A scalar, or a list Kubernetes replaces whole: replaces what is here, if it changed
    // (fields equal in both versions are not written: concurrent writes made elsewhere stay).
    if (before != nullptr && *before == next) {
      return;
    }
    Scopes inherited = scope;
    if (state != nullptr) {
      if (state->marks.empty() && state->order.empty() && state->children.empty()) {
        cover(state->value, covered_, &inherited);
      } else {
        cover_all(*state, covered_, &inherited);
        out.cleared = true;
      }
    }
    out.value.add({fresh(), at_, json::serialize(next), sorted(inherited)});
  }

  void list(const Node* state, const json::value* before, const json::array& next,
            const ListShape& shape, Node& out, const Scopes& scope) {
    out.shape =
        shape.kind == ListShape::Kind::kMap ? Node::Shape::kKeyedList : Node::Shape::kSetList;
    const json::array* previous_list = before != nullptr ? before->if_array() : nullptr;
    Scopes inherited = scope;                            // for the order register
    if (previous_list == nullptr && state != nullptr) {  // this site made it a list
      cover(state->value, covered_, &inherited);
      if (state->shape == Node::Shape::kFields && !state->children.empty()) {
        cover_all(*state, covered_, &inherited);  // an object
        out.cleared = true;
      }
    }
    const Elements was = previous_list != nullptr ? elements_of(*previous_list, shape) : Elements{};
    const Elements now = elements_of(next, shape);

    for (const auto& [key, element] : now) {
      const json::value* previous = find_element(was, key);
      if (previous != nullptr && *previous == *element) {
        continue;
      }
      const Node* element_state = child_of(state, key);
      Node& element_out = out.children[key];
      Scopes incarnations = live_marks(element_state);
      if (incarnations.empty()) {  // a new element, or one removed meanwhile: born again
        incarnations.push_back(fresh());
        element_out.marks.add({incarnations.front(), at_, {}, scope});
        previous = nullptr;
      }
      if (out.shape == Node::Shape::kKeyedList && element->is_object()) {
        fields(element_state, previous != nullptr ? previous->if_object() : nullptr,
               element->as_object(), element_out, incarnations);
      }
    }
    for (const auto& [key, element] : was) {
      if (find_element(now, key) != nullptr) {
        continue;
      }
      if (const Node* gone = child_of(state, key)) {
        remove_all(*gone, covered_, seen_, {}, true);
        out.children[key].cleared = true;
      }
    }

    const bool reordered =
        was.size() != now.size() ||
        !std::equal(was.begin(), was.end(), now.begin(),
                    [](const auto& a, const auto& b) { return a.first == b.first; });
    if (previous_list == nullptr || reordered) {
      if (state != nullptr) {
        cover(state->order, covered_, &inherited);
      }
      json::array keys;
      keys.reserve(now.size());
      for (const auto& [key, element] : now) {
        keys.emplace_back(key);
      }
      out.order.add({fresh(), at_, json::serialize(keys), sorted(inherited)});
    }
  }

  void append_path(std::string_view key) {
    if (!path_.empty()) {
      path_ += '.';
    }
    path_ += key;
  }

  ReplicaIndex me_;
  std::uint64_t counter_;
  Hlc at_;
  const Schema& schema_;
  const DotContext& seen_;  // the writer's context
  DotContext& covered_;
  std::string path_;  // field names joined by '.', list indices omitted (the schema's paths)
};

// Joins node trees: `mine` and `theirs` are the two sides' contexts.
class Joiner {
 public:
  Joiner(const DotContext& mine, const DotContext& theirs, bool keep_empty)
      : mine_(mine), theirs_(theirs), keep_empty_(keep_empty) {}

  // `full`: `theirs` covers everything under these nodes (a full state, or a cleared delta
  // node), so every child of `a` is visited; otherwise only the paths `b` holds. `scope`: the
  // live incarnations of the enclosing object or element; `incarnates`: `a` is itself an
  // element or the object (its marks are the scope of what it holds).
  void node(Node& a, const Node& b, bool full, const MvRegister* scope, bool incarnates) {
    full = full || b.cleared;
    boost::container::small_vector<Dot, 4> marks_before;
    if (incarnates) {
      for (const MvRegister::Value& m : a.marks.values()) {
        marks_before.push_back(m.dot);
      }
    }
    a.value.join(b.value, mine_, theirs_);
    a.marks.join(b.marks, mine_, theirs_);
    a.order.join(b.order, mine_, theirs_);
    a.cleared = keep_empty_ && (a.cleared || b.cleared);  // a state has nothing cleared
    a.shape = std::max(a.shape, b.shape);
    if (scope != nullptr) {
      auto dead = [&](const MvRegister::Value& v) { return removed(v.scope, *scope); };
      a.value.erase_if(dead);
      a.marks.erase_if(dead);
      a.order.erase_if(dead);
    }

    if (incarnates && !full &&
        (std::any_of(marks_before.begin(), marks_before.end(),
                     [&](Dot d) { return !a.marks.holds(d); }) ||
         lost(b.marks, a.marks))) {
      // An incarnation ended here (or arrived already ended): what was written in it, under
      // paths `b` may not hold, must go too.
      full = true;
    }
    const MvRegister* inner = incarnates ? &a.marks : scope;
    const bool elements = a.shape != Node::Shape::kFields;
    if (full) {
      auto mine = a.children.begin();
      auto theirs = b.children.begin();
      while (mine != a.children.end() || theirs != b.children.end()) {
        if (theirs == b.children.end() ||
            (mine != a.children.end() && mine->first < theirs->first)) {
          node(mine->second, kNothing, true, inner, elements);
          mine = settle(a, mine);
        } else if (mine == a.children.end() || theirs->first < mine->first) {
          mine = a.children.try_emplace(mine, theirs->first);
          node(mine->second, theirs->second, true, inner, elements);
          mine = settle(a, mine);
          ++theirs;
        } else {
          node(mine->second, theirs->second, true, inner, elements);
          mine = settle(a, mine);
          ++theirs;
        }
      }
    } else {
      for (const auto& [key, theirs] : b.children) {
        auto mine = a.children.find(key);
        if (mine == a.children.end()) {
          mine = a.children.try_emplace(mine, key);
        }
        node(mine->second, theirs, false, inner, elements);
        settle(a, mine);
      }
    }
  }

 private:
  // Whether some entry of `from` is not in `to`.
  static bool lost(const MvRegister& from, const MvRegister& to) {
    return std::any_of(from.values().begin(), from.values().end(),
                       [&](const MvRegister::Value& v) { return !to.holds(v.dot); });
  }

  // A value goes with the incarnations it was written in, once either side saw them all
  // removed.
  bool removed(const Scopes& incarnations, const MvRegister& scope) const {
    return !incarnations.empty() &&
           std::all_of(incarnations.begin(), incarnations.end(), [&](Dot d) {
             return !scope.holds(d) && (mine_.contains(d) || theirs_.contains(d));
           });
  }

  // Drops a child left empty (states only: a delta keeps the paths it covers); returns the
  // next child.
  using Children = std::map<std::string, Node, std::less<>>;
  Children::iterator settle(Node& parent, Children::iterator child) const {
    if (!keep_empty_ && child->second.empty()) {
      return parent.children.erase(child);
    }
    return std::next(child);
  }

  const DotContext& mine_;
  const DotContext& theirs_;
  bool keep_empty_;
};

void remap(Node& node, const std::vector<ReplicaIndex>& to) {
  node.value.remap(to);
  node.marks.remap(to);
  node.order.remap(to);
  for (auto& [key, child] : node.children) {
    remap(child, to);
  }
}

// Builds the JSON of a state tree, collecting the losers of concurrent writes.
class Materializer {
 public:
  explicit Materializer(const std::vector<std::string>& sites) : sites_(sites) {}

  json::object fields(const Node& node) {
    json::object out;
    const std::size_t depth = path_.size();
    for (const auto& [key, child] : node.children) {
      if (!path_.empty()) {
        path_ += '.';
      }
      path_ += key;
      if (std::optional<json::value> v = value(child)) {
        out.emplace(key, std::move(*v));
      }
      path_.resize(depth);
    }
    return out;
  }

  json::object take_conflicts() { return std::move(conflicts_); }

 private:
  std::optional<json::value> value(const Node& node) {
    if (node.shape != Node::Shape::kFields && (!node.children.empty() || !node.order.empty())) {
      return list(node);
    }
    if (!node.marks.empty()) {
      return fields(node);
    }
    if (!node.children.empty()) {
      json::object out = fields(node);
      if (!out.empty()) {
        return out;
      }
    }
    const MvRegister::Value* shown = winner(node.value);
    if (shown == nullptr) {
      return std::nullopt;
    }
    if (node.value.values().size() > 1) {
      // By site, then value: the same on every replica, whatever its site table.
      std::vector<const MvRegister::Value*> lost;
      for (const MvRegister::Value& v : node.value.values()) {
        if (&v != shown && v.value != shown->value) {
          lost.push_back(&v);
        }
      }
      std::sort(lost.begin(), lost.end(), [this](const auto* a, const auto* b) {
        const std::string_view sa = site(a->dot.replica), sb = site(b->dot.replica);
        return sa != sb ? sa < sb : a->value < b->value;
      });
      json::array losers;
      for (const MvRegister::Value* v : lost) {
        losers.push_back(json::object{{"site", site(v->dot.replica)}, {"value", parse(v->value)}});
      }
      if (!losers.empty()) {
        conflicts_[path_] = std::move(losers);
      }
    }
    return parse(shown->value);
  }

  json::value list(const Node& node) {
    // Live elements in key order; the order register's winner places those it names.
    std::vector<std::pair<std::string_view, const Node*>> live;
    for (const auto& [key, element] : node.children) {
      if (!element.marks.empty()) {
        live.emplace_back(key, &element);
      }
    }
    std::vector<bool> placed(live.size(), false);
    json::array out;
    out.reserve(live.size());
    auto place = [&](std::size_t i) {
      placed[i] = true;
      const auto& [key, element] = live[i];
      if (node.shape == Node::Shape::kSetList) {
        out.push_back(parse(key));
        return;
      }
      const std::size_t depth = path_.size();
      path_ += '[';
      path_ += key;
      path_ += ']';
      out.push_back(fields(*element));
      path_.resize(depth);
    };
    if (const MvRegister::Value* order = winner(node.order)) {
      json::value keys = parse(order->value);
      if (const json::array* named = keys.if_array()) {
        for (const json::value& key : *named) {
          const json::string* k = key.if_string();
          if (k == nullptr) {
            continue;
          }
          auto it = std::lower_bound(live.begin(), live.end(), std::string_view(*k),
                                     [](const auto& e, std::string_view s) { return e.first < s; });
          if (it != live.end() && it->first == std::string_view(*k) &&
              !placed[static_cast<std::size_t>(it - live.begin())]) {
            place(static_cast<std::size_t>(it - live.begin()));
          }
        }
      }
    }
    for (std::size_t i = 0; i < live.size(); ++i) {
      if (!placed[i]) {
        place(i);
      }
    }
    return out;
  }

  const MvRegister::Value* winner(const MvRegister& reg) const {
    return reg.winner([this](ReplicaIndex r) { return site(r); });
  }

  std::string_view site(ReplicaIndex r) const {
    return r < sites_.size() ? std::string_view(sites_[r]) : std::string_view();
  }

  static json::value parse(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    return ec ? json::value() : v;
  }

  const std::vector<std::string>& sites_;
  std::string path_;
  json::object conflicts_;
};

}  // namespace

json::object intent(const json::object& object) {
  json::object out;
  for (const auto& [key, value] : object) {
    if (key != "status" && key != "metadata") {
      out.emplace(key, value);
    }
  }
  json::value metadata = metadata_intent(object);
  if (metadata.is_object()) {
    out.emplace("metadata", std::move(metadata));
  }
  return out;
}

Object::Object(std::vector<std::string> sites) : sites_(std::move(sites)) {}

ReplicaIndex Object::replica(std::string_view site) {
  auto it = std::find(sites_.begin(), sites_.end(), site);
  if (it == sites_.end()) {
    sites_.emplace_back(site);
    return static_cast<ReplicaIndex>(sites_.size() - 1);
  }
  return static_cast<ReplicaIndex>(it - sites_.begin());
}

Object Object::update(const json::object* previous, const json::object& next, std::string_view site,
                      Hlc at, const Schema& schema) {
  const ReplicaIndex me = replica(site);
  Object delta(sites_);
  delta.complete_ = false;
  Writer writer(me, context_, at, schema, delta.context_);
  writer.root(root_, previous, next, delta.root_);
  join(delta);
  return delta;
}

Object Object::erase(std::string_view site) {
  replica(site);
  Object delta(sites_);
  delta.complete_ = false;
  remove_all(root_, delta.context_, context_, {}, true);
  delta.root_.cleared = true;
  join(delta);
  return delta;
}

const Object& Object::aligned(const Object& other, Object& storage) {
  if (other.sites_ == sites_) {
    return other;
  }
  std::vector<ReplicaIndex> to(other.sites_.size());
  bool same = true;
  for (std::size_t i = 0; i < to.size(); ++i) {
    to[i] = replica(other.sites_[i]);
    same = same && to[i] == i;
  }
  if (same) {
    return other;  // their table is a prefix of ours
  }
  storage.sites_ = sites_;
  storage.context_ = other.context_.remapped(to);
  storage.root_ = other.root_;
  remap(storage.root_, to);
  storage.complete_ = other.complete_;
  return storage;
}

void Object::join(const Object& other) {
  Object storage;
  const Object& theirs = aligned(other, storage);
  const bool complete = complete_ || theirs.complete_;
  Joiner joiner(context_, theirs.context_, !complete);
  joiner.node(root_, theirs.root_, theirs.complete_, nullptr, true);
  context_.merge(theirs.context_);
  complete_ = complete;
}

std::optional<json::object> Object::materialize() const {
  if (root_.marks.empty()) {
    return std::nullopt;
  }
  Materializer materializer(sites_);
  json::object out = materializer.fields(root_);
  json::object conflicts = materializer.take_conflicts();
  if (!conflicts.empty()) {
    json::value& metadata = out["metadata"];
    if (!metadata.is_object()) {
      metadata = json::object();
    }
    json::value& annotations = metadata.as_object()["annotations"];
    if (!annotations.is_object()) {
      annotations = json::object();
    }
    annotations.as_object()[kConflictsAnnotation] = json::serialize(conflicts);
  }
  return out;
}

bool Object::forgettable(std::span<const DotContext> replicas) const {
  return root_.empty() && std::all_of(replicas.begin(), replicas.end(),
                                      [this](const auto& c) { return c.includes(context_); });
}

namespace {

void mark_used(const MvRegister& reg, std::vector<bool>& used) {
  for (const MvRegister::Value& v : reg.values()) {
    used[v.dot.replica] = true;
    for (Dot d : v.scope) {
      used[d.replica] = true;
    }
  }
}

void mark_used(const Node& node, std::vector<bool>& used) {
  mark_used(node.value, used);
  mark_used(node.marks, used);
  mark_used(node.order, used);
  for (const auto& [key, child] : node.children) {
    mark_used(child, used);
  }
}

}  // namespace

Object Object::assemble(std::vector<std::string> sites, DotContext context, Node root,
                        bool complete) {
  // Only the sites its dots name (a message's site table may list others), in name order: the
  // same object whatever table it came with.
  std::vector<bool> used(sites.size(), false);
  for (ReplicaIndex r = 0; r < sites.size(); ++r) {
    used[r] = context.base(r) != 0;
  }
  for (const Dot& d : context.cloud()) {
    used[d.replica] = true;
  }
  mark_used(root, used);
  std::vector<ReplicaIndex> kept;
  for (ReplicaIndex r = 0; r < sites.size(); ++r) {
    if (used[r]) {
      kept.push_back(r);
    }
  }
  std::sort(kept.begin(), kept.end(),
            [&](ReplicaIndex a, ReplicaIndex b) { return sites[a] < sites[b]; });
  Object out;
  out.complete_ = complete;
  std::vector<ReplicaIndex> to(sites.size(), 0);
  bool same = kept.size() == sites.size();
  for (std::size_t i = 0; i < kept.size(); ++i) {
    to[kept[i]] = static_cast<ReplicaIndex>(i);
    same = same && kept[i] == i;
  }
  if (same) {
    out.sites_ = std::move(sites);
    out.context_ = std::move(context);
    out.root_ = std::move(root);
    return out;
  }
  for (ReplicaIndex r : kept) {
    out.sites_.push_back(std::move(sites[r]));
  }
  out.context_ = context.remapped(to);
  out.root_ = std::move(root);
  remap(out.root_, to);
  return out;
}

}  // namespace archipel::crdt
