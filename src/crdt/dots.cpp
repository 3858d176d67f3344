#include "archipel/crdt/dots.hpp"

#include <algorithm>

namespace archipel::crdt {

DotContext DotContext::assemble(std::vector<std::uint64_t> base, std::vector<Dot> cloud) {
  DotContext out;
  out.base_ = std::move(base);
  std::sort(cloud.begin(), cloud.end());
  cloud.erase(std::unique(cloud.begin(), cloud.end()), cloud.end());
  for (const Dot& d : cloud) {
    if (d.replica >= out.base_.size()) {
      out.base_.resize(d.replica + 1, 0);
    }
  }
  std::erase_if(cloud, [&](const Dot& d) { return d.counter <= out.base_[d.replica]; });
  out.cloud_ = std::move(cloud);
  for (ReplicaIndex r = 0; r < out.base_.size(); ++r) {
    out.compact(r);
  }
  return out;
}

bool DotContext::contains(Dot d) const noexcept {
  if (d.counter <= base(d.replica)) {
    return true;
  }
  return std::binary_search(cloud_.begin(), cloud_.end(), d);
}

void DotContext::insert(Dot d) {
  if (contains(d)) {
    return;
  }
  if (d.replica >= base_.size()) {
    base_.resize(d.replica + 1, 0);
  }
  if (d.counter == base_[d.replica] + 1) {
    base_[d.replica] = d.counter;
    compact(d.replica);
    return;
  }
  cloud_.insert(std::lower_bound(cloud_.begin(), cloud_.end(), d), d);
}

Dot DotContext::next(ReplicaIndex replica) {
  const Dot d{replica, base(replica) + 1};
  insert(d);
  return d;
}

void DotContext::merge(const DotContext& other) {
  if (other.base_.size() > base_.size()) {
    base_.resize(other.base_.size(), 0);
  }
  for (std::size_t r = 0; r < other.base_.size(); ++r) {
    base_[r] = std::max(base_[r], other.base_[r]);
  }
  if (!other.cloud_.empty()) {
    std::vector<Dot> cloud;
    cloud.reserve(cloud_.size() + other.cloud_.size());
    std::set_union(cloud_.begin(), cloud_.end(), other.cloud_.begin(), other.cloud_.end(),
                   std::back_inserter(cloud));
    cloud_.swap(cloud);
  }
  if (!cloud_.empty() && cloud_.back().replica >= base_.size()) {
    base_.resize(cloud_.back().replica + 1, 0);  // every replica of the cloud has a base
  }
  // Dots now under their base, and gaps the other side closed.
  std::erase_if(cloud_, [this](const Dot& d) { return d.counter <= base_[d.replica]; });
  for (ReplicaIndex r = 0; r < base_.size(); ++r) {
    compact(r);
  }
}

void DotContext::compact(ReplicaIndex replica) {
  // The cloud is sorted by (replica, counter): this replica's dots are one run.
  auto it = std::lower_bound(cloud_.begin(), cloud_.end(), Dot{replica, base_[replica] + 1});
  auto end = it;
  while (end != cloud_.end() && end->replica == replica && end->counter == base_[replica] + 1) {
    base_[replica] = end->counter;
    ++end;
  }
  cloud_.erase(it, end);
}

DotContext DotContext::remapped(const std::vector<ReplicaIndex>& to) const {
  DotContext out;
  for (ReplicaIndex r = 0; r < base_.size(); ++r) {
    if (base_[r] != 0) {
      if (to[r] >= out.base_.size()) {
        out.base_.resize(to[r] + 1, 0);
      }
      out.base_[to[r]] = base_[r];
    }
  }
  out.cloud_.reserve(cloud_.size());
  for (const Dot& d : cloud_) {
    out.cloud_.push_back(Dot{to[d.replica], d.counter});
  }
  std::sort(out.cloud_.begin(), out.cloud_.end());
  if (!out.cloud_.empty() && out.cloud_.back().replica >= out.base_.size()) {
    out.base_.resize(out.cloud_.back().replica + 1, 0);
  }
  return out;
}

bool DotContext::includes(const DotContext& other) const noexcept {
  for (ReplicaIndex r = 0; r < other.base_.size(); ++r) {
    const std::uint64_t mine = base(r);
    if (other.base_[r] > mine) {
      // Every dot above our base must be in our cloud: as many of ours as the gap is wide.
      auto from = std::upper_bound(cloud_.begin(), cloud_.end(), Dot{r, mine});
      auto to = std::upper_bound(cloud_.begin(), cloud_.end(), Dot{r, other.base_[r]});
      if (static_cast<std::uint64_t>(to - from) != other.base_[r] - mine) {
        return false;
      }
    }
  }
  return std::all_of(other.cloud_.begin(), other.cloud_.end(),
                     [this](const Dot& d) { return contains(d); });
}

bool operator==(const DotContext& a, const DotContext& b) noexcept {
  const std::size_t n = std::max(a.base_.size(), b.base_.size());
  for (ReplicaIndex r = 0; r < n; ++r) {
    if (a.base(r) != b.base(r)) {
      return false;
    }
  }
  return a.cloud_ == b.cloud_;
}

}  // namespace archipel::crdt
