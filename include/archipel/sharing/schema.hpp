#pragma once

// The Kubernetes list metadata (kube::list_strategy, the one table) as the object CRDT takes it:
// the SchemaOf a site gives its replica groups.

#include "archipel/crdt/object.hpp"

#include <string_view>

namespace archipel::sharing {

/// How objects of `kind` merge the list at `path` (field names joined by '.').
[[nodiscard]] crdt::ListShape kube_list_shape(std::string_view kind, std::string_view path);

}  // namespace archipel::sharing
