#pragma once

// Multi-value register: the leaf of an object's CRDT (a scalar field, or a list Kubernetes
// replaces whole). A write replaces every value its writer had seen; writes made concurrently
// all stay, and the register shows one of them, the same on every replica: the latest hybrid
// timestamp, then the greatest site name. The others are its conflicts.
//
// Values are opaque strings (the object CRDT stores JSON text). A register is a delta-state
// CRDT over a causal context that its owner keeps: join needs both sides' contexts.

#include "archipel/crdt/clock.hpp"
#include "archipel/crdt/dots.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::crdt {

/// Incarnations a value was written in: nearly always one.
using Scopes = boost::container::small_vector<Dot, 1>;

class MvRegister {
 public:
  struct Value {
    Dot dot;
    Hlc at;
    std::string value;
    /// The incarnations (dots) of the list element or object the value was written in, as
    /// its writer saw them: when all are removed, the value goes with them (see object.hpp).
    /// Empty: none.
    Scopes scope;
    friend bool operator==(const Value&, const Value&) = default;
  };

  /// Writes `value` as `dot` (fresh, from the writer's context): the returned delta holds it
  /// and replaces what this register holds; `covered` receives the dots it replaces, for the
  /// delta's context. Applies it here too.
  MvRegister write(Dot dot, Hlc at, std::string value, DotContext& covered, Scopes scope = {});

  /// Adds a value beside those held (a fresh dot, above every dot held).
  void add(Value v);

  /// Removes the values `drop` selects.
  template <typename Pred>
  void erase_if(Pred drop) {
    std::erase_if(values_, drop);
  }

  /// Gives every value's dot (and scope) the replica index `to[replica]`.
  void remap(const std::vector<ReplicaIndex>& to);

  /// Joins `other` (whose context is `theirs`; ours is `mine`): a value stays when both hold
  /// it or the side that lacks it never saw it.
  void join(const MvRegister& other, const DotContext& mine, const DotContext& theirs);

  /// The value shown: latest `at`, then greatest site name (`site_of` maps a replica to its
  /// name). Null when empty.
  [[nodiscard]] const Value* winner(
      const std::function<std::string_view(ReplicaIndex)>& site_of) const;

  /// Whether a value with this dot is held.
  [[nodiscard]] bool holds(Dot dot) const noexcept {
    auto it = std::lower_bound(values_.begin(), values_.end(), dot,
                               [](const Value& v, Dot d) { return v.dot < d; });
    return it != values_.end() && it->dot == dot;
  }

  [[nodiscard]] const std::vector<Value>& values() const noexcept { return values_; }
  [[nodiscard]] bool empty() const noexcept { return values_.empty(); }
  friend bool operator==(const MvRegister&, const MvRegister&) = default;

 private:
  std::vector<Value> values_;  // sorted by dot
};

}  // namespace archipel::crdt
