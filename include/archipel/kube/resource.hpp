#pragma once

// The resource types Archipel's embedded cluster serves, in one table (src/kube/resource.cpp):
// adding a kind is adding one entry there. Discovery, routing, storage keys and validation all
// read this table.

#include <span>
#include <string>
#include <string_view>

namespace archipel::kube {

struct ResourceType {
  std::string_view group;     ///< API group; "" for core
  std::string_view version;   ///< "v1"
  std::string_view kind;      ///< "ConfigMap"
  std::string_view plural;    ///< "configmaps": the URL segment and the resource name
  std::string_view singular;  ///< "configmap"
  bool namespaced = true;
  std::span<const std::string_view> short_names;   ///< "cm"
  std::span<const std::string_view> categories;    ///< "all"
  std::span<const std::string_view> subresources;  ///< "status", "log"
  bool deletecollection = true;                    ///< Kubernetes does not offer it on namespaces

  /// "v1" or "apps/v1".
  [[nodiscard]] std::string api_version() const;
  /// The Kind of its list ("ConfigMapList").
  [[nodiscard]] std::string list_kind() const;
};

/// Every served type, core group first, then by group name; stable order (discovery uses it).
[[nodiscard]] std::span<const ResourceType> resource_types() noexcept;

/// By URL: group ("" for core), version and plural. nullptr when not served.
[[nodiscard]] const ResourceType* find_resource(std::string_view group, std::string_view version,
                                                std::string_view plural) noexcept;

/// By a written object's apiVersion ("v1", "apps/v1") and kind. nullptr when not served.
[[nodiscard]] const ResourceType* find_kind(std::string_view api_version,
                                            std::string_view kind) noexcept;

}  // namespace archipel::kube
