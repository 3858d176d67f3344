#include "archipel/sharing/schema.hpp"

#include "archipel/kube/schema.hpp"

namespace archipel::sharing {

crdt::ListShape kube_list_shape(std::string_view kind, std::string_view path) {
  const kube::ListStrategy s = kube::list_strategy(kind, path);
  switch (s.kind) {
    case kube::ListStrategy::Kind::kMap:
      return crdt::ListShape{crdt::ListShape::Kind::kMap, s.keys};
    case kube::ListStrategy::Kind::kSet: return crdt::ListShape{crdt::ListShape::Kind::kSet, {}};
    case kube::ListStrategy::Kind::kAtomic: break;
  }
  return crdt::ListShape{};
}

}  // namespace archipel::sharing
