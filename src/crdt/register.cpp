#include "archipel/crdt/register.hpp"

#include <algorithm>

namespace archipel::crdt {

MvRegister MvRegister::write(Dot dot, Hlc at, std::string value, DotContext& covered,
                             Scopes scope) {
  for (const Value& v : values_) {
    covered.insert(v.dot);
  }
  covered.insert(dot);
  MvRegister delta;
  delta.values_.push_back(Value{dot, at, std::move(value), std::move(scope)});
  values_ = delta.values_;
  return delta;
}

void MvRegister::add(Value v) {
  values_.insert(std::upper_bound(values_.begin(), values_.end(), v,
                                  [](const Value& a, const Value& b) { return a.dot < b.dot; }),
                 std::move(v));
}

void MvRegister::remap(const std::vector<ReplicaIndex>& to) {
  for (Value& v : values_) {
    v.dot.replica = to[v.dot.replica];
    for (Dot& s : v.scope) {
      s.replica = to[s.replica];
    }
    std::sort(v.scope.begin(), v.scope.end());
  }
  std::sort(values_.begin(), values_.end(),
            [](const Value& a, const Value& b) { return a.dot < b.dot; });
}

void MvRegister::join(const MvRegister& other, const DotContext& mine, const DotContext& theirs) {
  // The common cases in place: nothing on their side (what they saw removed goes), or nothing
  // on ours (what we never saw comes in).
  if (other.values_.empty()) {
    std::erase_if(values_, [&](const Value& v) { return theirs.contains(v.dot); });
    return;
  }
  if (values_.empty()) {
    for (const Value& v : other.values_) {
      if (!mine.contains(v.dot)) {
        values_.push_back(v);
      }
    }
    return;
  }
  std::vector<Value> joined;
  joined.reserve(values_.size() + other.values_.size());
  auto a = values_.begin();
  auto b = other.values_.begin();
  // Both lists are sorted by dot: walk them together.
  while (a != values_.end() || b != other.values_.end()) {
    if (b == other.values_.end() || (a != values_.end() && a->dot < b->dot)) {
      if (!theirs.contains(a->dot)) {
        joined.push_back(std::move(*a));  // they never saw it: it stays
      }
      ++a;
    } else if (a == values_.end() || b->dot < a->dot) {
      if (!mine.contains(b->dot)) {
        joined.push_back(*b);  // we never saw it: it comes in
      }
      ++b;
    } else {
      joined.push_back(std::move(*a));  // both hold it
      ++a;
      ++b;
    }
  }
  values_.swap(joined);
}

const MvRegister::Value* MvRegister::winner(
    const std::function<std::string_view(ReplicaIndex)>& site_of) const {
  const Value* best = nullptr;
  for (const Value& v : values_) {
    if (best == nullptr || v.at > best->at ||
        (v.at == best->at && site_of(v.dot.replica) > site_of(best->dot.replica))) {
      best = &v;
    }
  }
  return best;
}

}  // namespace archipel::crdt
