#pragma once

// Dots and causal contexts. A dot names one event: the replica that made it and that replica's
// count of events so far. A causal context is the set of dots a state has seen, kept compact as
// a version vector (every dot of replica r up to base(r)) plus the few dots received out of
// order above it (the cloud). Replicas are small indices into a table that the owner of the
// context keeps (the sites sharing one object), so a context grows with the sites that share
// the object, never with the size of the federation.

#include <compare>
#include <cstdint>
#include <vector>

namespace archipel::crdt {

using ReplicaIndex = std::uint32_t;

struct Dot {
  ReplicaIndex replica = 0;
  std::uint64_t counter = 0;  ///< 1 for a replica's first event
  friend constexpr auto operator<=>(const Dot&, const Dot&) = default;
};

class DotContext {
 public:
  /// The context holding every dot of replica r up to `base[r]`, and the dots of `cloud` (in
  /// any order; those under their base are dropped).
  static DotContext assemble(std::vector<std::uint64_t> base, std::vector<Dot> cloud);

  /// Whether the dot was seen.
  [[nodiscard]] bool contains(Dot d) const noexcept;
  /// Records the dot as seen (folding the cloud into the version vector when it closes a gap).
  void insert(Dot d);
  /// The next dot of `replica`, recorded as seen: for a replica making its own events, whose
  /// dots are always contiguous.
  Dot next(ReplicaIndex replica);
  /// Everything `other` has seen, in the same replica index space.
  void merge(const DotContext& other);
  /// Every dot of `replica` up to this counter was seen.
  [[nodiscard]] std::uint64_t base(ReplicaIndex replica) const noexcept {
    return replica < base_.size() ? base_[replica] : 0;
  }
  /// Seen dots above their replica's base, sorted.
  [[nodiscard]] const std::vector<Dot>& cloud() const noexcept { return cloud_; }
  /// The same dots with replica r renamed `to[r]` (a permutation into another site table).
  [[nodiscard]] DotContext remapped(const std::vector<ReplicaIndex>& to) const;
  /// Whether every dot `other` has seen was seen here.
  [[nodiscard]] bool includes(const DotContext& other) const noexcept;

  friend bool operator==(const DotContext& a, const DotContext& b) noexcept;

 private:
  void compact(ReplicaIndex replica);

  std::vector<std::uint64_t> base_;  // indexed by replica; trailing zeros allowed
  std::vector<Dot> cloud_;           // sorted; every dot above its replica's base
};

}  // namespace archipel::crdt
