#pragma once

// How Kubernetes merges lists, per kind and field path: the `x-kubernetes-patch-merge-key` /
// `x-kubernetes-list-map-keys` metadata of the API's OpenAPI schema, for the kinds Archipel
// serves, in one place. Strategic merge patch (the embedded cluster) and the object CRDT
// (sharing) both read it.

#include <span>
#include <string_view>

namespace archipel::kube {

struct ListStrategy {
  enum class Kind {
    kAtomic,  ///< replaced whole (no merge key)
    kMap,     ///< elements identified by `keys`, merged element-wise
    kSet,     ///< a list of scalars merged as a set (finalizers)
  };
  Kind kind = Kind::kAtomic;
  std::span<const std::string_view> keys;  ///< kMap: the identifying fields, primary first
};

/// The strategy for the list at `path` (field names joined by '.', list indices omitted, e.g.
/// "spec.template.spec.containers.env") in an object of `kind`. Lists not in the table are
/// atomic, as Kubernetes treats lists without merge metadata.
[[nodiscard]] ListStrategy list_strategy(std::string_view kind, std::string_view path) noexcept;

}  // namespace archipel::kube
