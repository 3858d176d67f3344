#pragma once

// The CRDT of one shared Kubernetes object: a delta-state CRDT shaped by the object's schema.
//
// State: a table of the sites sharing the object (replica indices), one causal context, and a
// tree that follows the object's JSON:
// - a JSON object (labels, annotations, data, spec, a container…) is an add-wins map: a field
//   is there while a value written under it survives; an empty object is kept by a mark;
// - a list with Kubernetes merge keys (containers by name, ports by containerPort+protocol…) is
//   a map from key to element, plus a register holding the order of the keys; a list of scalars
//   merged as a set is the same with the scalar as key;
// - everything else (scalars, lists Kubernetes replaces whole) is a multi-value register that
//   shows one winner (latest HLC, then greatest site name) and keeps the others as conflicts.
//
// Removals leave no tombstones: a removal is a delta whose context covers the dots it removes.
//
// Incarnations. The object and each element of a keyed list are born with a mark (a dot); every
// value written inside carries the live marks its writer saw (MvRegister::Value::scope).
// Removing the object or an element removes the marks its remover saw; a value whose marks
// were all removed is dropped wherever it arrives, even when it was written concurrently with
// the removal. So a delete concurrent with an update wins: no half object or half container
// ever comes back. A later create (a write that sees no live mark) starts a new incarnation,
// with none of the old values. Concurrent creates are all live (a create concurrent with a
// remove that did not see it survives, whole): the object shows their values, merged.
//
// Only intent is replicated: apiVersion, kind, metadata name / namespace / labels /
// annotations, and every other top-level field except status (spec, data, stringData…). Never
// uid, resourceVersion, generation, managedFields, creationTimestamp, status.
//
// Pure: no I/O, no clock reads (the caller passes the hybrid timestamp of each update).
// Not thread-safe: one owner per object.

#include "archipel/crdt/clock.hpp"
#include "archipel/crdt/dots.hpp"
#include "archipel/crdt/register.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::crdt {

/// How the object's schema merges the list at a path (crdt's view of the Kubernetes list-type
/// metadata; sharing::kube_list_shape adapts kube::list_strategy to it).
struct ListShape {
  enum class Kind : std::uint8_t {
    kAtomic,  ///< replaced whole: a register
    kMap,     ///< elements identified by `keys`
    kSet,     ///< scalars merged as a set
  };
  Kind kind = Kind::kAtomic;
  std::span<const std::string_view> keys;  ///< kMap: the identifying fields, primary first
};

/// The shape of the list at `path` (field names joined by '.', list indices omitted, e.g.
/// "spec.template.spec.containers.env").
using Schema = std::function<ListShape(std::string_view path)>;

/// One node of an object's tree (read by the wire codec; change it through Object only).
struct Node {
  enum class Shape : std::uint8_t {
    kFields,     ///< a JSON object: children by field name
    kKeyedList,  ///< a list with merge keys: children are elements by key
    kSetList,    ///< a list of scalars: children are elements, the key is the element's JSON
  };
  MvRegister value;  ///< the scalar or atomic JSON at this path (JSON text)
  MvRegister marks;  ///< an object's existence, or an element's incarnations (empty strings)
  MvRegister order;  ///< lists: the element keys in order (a JSON array of keys)
  std::map<std::string, Node, std::less<>> children;
  Shape shape = Shape::kFields;
  bool cleared = false;  ///< deltas: covers everything under this node (not only the paths held)

  [[nodiscard]] bool empty() const noexcept {
    return value.empty() && marks.empty() && order.empty() && children.empty();
  }
  friend bool operator==(const Node&, const Node&) = default;
};

/// Annotation listing the values that lost a concurrent write: a JSON object from field path to
/// the losing values and their sites. Never replicated (it is derived from the state).
inline constexpr std::string_view kConflictsAnnotation = "archipel.io/conflicts";

class Object {
 public:
  /// An empty state (the object is absent) over the sites `sites`, the replica group.
  explicit Object(std::vector<std::string> sites = {});

  /// What site `site` changed between `previous` and `next` (two versions of the object as that
  /// site's Kubernetes showed them; `previous` null for a create), at hybrid time `at`: returns
  /// the delta and applies it here. Fields equal in both are not written, so concurrent writes
  /// made elsewhere to them stay. Lists are shaped by `schema`. Only intent() is looked at.
  Object update(const boost::json::object* previous, const boost::json::object& next,
                std::string_view site, Hlc at, const Schema& schema);

  /// Deletes the object as site `site` saw it: returns the delta and applies it here.
  Object erase(std::string_view site);

  /// Joins `other`, a delta or a full state of the same object: afterwards this holds every
  /// write either side held that neither side had seen removed. Commutative, associative and
  /// idempotent; the sides' site tables may differ. A delta joined into a delta stays a delta
  /// (a delta group).
  void join(const Object& other);

  /// The object to write to Kubernetes, or nullopt when it is absent (never created, or
  /// deleted). Concurrent writes show their winner; the losers are listed in the
  /// `archipel.io/conflicts` annotation.
  [[nodiscard]] std::optional<boost::json::object> materialize() const;

  /// Whether the object is deleted and every replica (their contexts) has seen all it has
  /// seen: the state holds nothing more than the fact of its deletion, and may be forgotten
  /// once the group's version vector keeps late duplicates out (causal stability).
  [[nodiscard]] bool forgettable(std::span<const DotContext> replicas) const;

  /// Whether this is a full state (not a delta).
  [[nodiscard]] bool complete() const noexcept { return complete_; }
  [[nodiscard]] const std::vector<std::string>& sites() const noexcept { return sites_; }
  [[nodiscard]] const DotContext& context() const noexcept { return context_; }
  [[nodiscard]] const Node& root() const noexcept { return root_; }

  /// Rebuilds an object from its parts (the wire codec). Replica indices in `context` and
  /// `root` index `sites` (which must cover them); the result's table holds the sites its dots
  /// name, in name order, so equal objects compare equal whatever table they came with.
  static Object assemble(std::vector<std::string> sites, DotContext context, Node root,
                         bool complete);

  friend bool operator==(const Object&, const Object&) = default;

 private:
  ReplicaIndex replica(std::string_view site);
  /// `other` with its replica indices renamed into this object's site table (adding sites).
  const Object& aligned(const Object& other, Object& storage);

  std::vector<std::string> sites_;
  DotContext context_;
  Node root_;
  bool complete_ = true;
};

/// The part of `object` that is replicated (see above): what update() diffs.
[[nodiscard]] boost::json::object intent(const boost::json::object& object);

}  // namespace archipel::crdt
