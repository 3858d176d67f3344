#include "archipel/kube/resource.hpp"

#include <array>

namespace archipel::kube {
namespace {

using namespace std::string_view_literals;

constexpr std::array kNoNames = std::array<std::string_view, 0>{};
constexpr std::array kAll = {"all"sv};
constexpr std::array kStatus = {"status"sv};
constexpr std::array kScaleStatus = {"scale"sv, "status"sv};
constexpr std::array kPodSubresources = {"log"sv, "status"sv};
constexpr std::array kNamespaceShort = {"ns"sv};
constexpr std::array kConfigMapShort = {"cm"sv};
constexpr std::array kServiceAccountShort = {"sa"sv};
constexpr std::array kServiceShort = {"svc"sv};
constexpr std::array kPodShort = {"po"sv};
constexpr std::array kEventShort = {"ev"sv};
constexpr std::array kDeploymentShort = {"deploy"sv};

// The served types. Order: core first, then groups by name; within a group, by plural (as
// Kubernetes lists them in discovery).
const std::array kTypes = {
    ResourceType{"", "v1", "ConfigMap", "configmaps", "configmap", true, kConfigMapShort, kNoNames,
                 kNoNames, true},
    ResourceType{"", "v1", "Event", "events", "event", true, kEventShort, kNoNames, kNoNames, true},
    ResourceType{"", "v1", "Namespace", "namespaces", "namespace", false, kNamespaceShort, kNoNames,
                 kStatus, false},
    ResourceType{"", "v1", "Pod", "pods", "pod", true, kPodShort, kAll, kPodSubresources, true},
    ResourceType{"", "v1", "Secret", "secrets", "secret", true, kNoNames, kNoNames, kNoNames, true},
    ResourceType{"", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true,
                 kServiceAccountShort, kNoNames, kNoNames, true},
    ResourceType{"", "v1", "Service", "services", "service", true, kServiceShort, kAll, kStatus,
                 true},
    ResourceType{"apps", "v1", "Deployment", "deployments", "deployment", true, kDeploymentShort,
                 kAll, kScaleStatus, true},
};

}  // namespace

std::string ResourceType::api_version() const {
  return group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
}

std::string ResourceType::list_kind() const {
  return std::string(kind) + "List";
}

std::span<const ResourceType> resource_types() noexcept {
  return kTypes;
}

const ResourceType* find_resource(std::string_view group, std::string_view version,
                                  std::string_view plural) noexcept {
  for (const ResourceType& t : kTypes) {
    if (t.group == group && t.version == version && t.plural == plural) {
      return &t;
    }
  }
  return nullptr;
}

const ResourceType* find_kind(std::string_view api_version, std::string_view kind) noexcept {
  const std::size_t slash = api_version.find('/');
  const std::string_view group =
      slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
  const std::string_view version =
      slash == std::string_view::npos ? api_version : api_version.substr(slash + 1);
  for (const ResourceType& t : kTypes) {
    if (t.group == group && t.version == version && t.kind == kind) {
      return &t;
    }
  }
  return nullptr;
}

}  // namespace archipel::kube
