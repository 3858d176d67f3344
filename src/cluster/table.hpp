#pragma once

// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (Accept: …;as=Table), with the
// columns Kubernetes prints for each kind.

#include "archipel/kube/resource.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace archipel::cluster {

/// A Table of `items`. Rows carry the full object when `include_object`, otherwise its
/// metadata as a PartialObjectMetadata (Kubernetes' default).
[[nodiscard]] boost::json::object make_table(const kube::ResourceType& type,
                                             const std::vector<boost::json::object>& items,
                                             std::uint64_t resource_version,
                                             std::chrono::system_clock::time_point now,
                                             bool include_object);

}  // namespace archipel::cluster
