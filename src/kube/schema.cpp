#include "archipel/kube/schema.hpp"

#include <array>
#include <string>

namespace archipel::kube {
namespace {

using namespace std::string_view_literals;

constexpr std::array kName = {"name"sv};
constexpr std::array kUid = {"uid"sv};
constexpr std::array kType = {"type"sv};
constexpr std::array kIp = {"ip"sv};
constexpr std::array kMountPath = {"mountPath"sv};
constexpr std::array kDevicePath = {"devicePath"sv};
constexpr std::array kContainerPort = {"containerPort"sv, "protocol"sv};
constexpr std::array kServicePort = {"port"sv, "protocol"sv};
constexpr std::array kTopology = {"topologyKey"sv, "whenUnsatisfiable"sv};

struct Entry {
  std::string_view path;  // relative to the object, or to a pod spec for kPodSpec entries
  ListStrategy::Kind kind;
  std::span<const std::string_view> keys;
};

// Every object.
constexpr std::array kMetadataLists = {
    Entry{"metadata.ownerReferences", ListStrategy::Kind::kMap, kUid},
    Entry{"metadata.finalizers", ListStrategy::Kind::kSet, {}},
};

// A PodSpec, wherever it appears (pods: "spec", deployments: "spec.template.spec").
constexpr std::array kPodSpecLists = {
    Entry{"containers", ListStrategy::Kind::kMap, kName},
    Entry{"initContainers", ListStrategy::Kind::kMap, kName},
    Entry{"ephemeralContainers", ListStrategy::Kind::kMap, kName},
    Entry{"containers.ports", ListStrategy::Kind::kMap, kContainerPort},
    Entry{"initContainers.ports", ListStrategy::Kind::kMap, kContainerPort},
    Entry{"containers.env", ListStrategy::Kind::kMap, kName},
    Entry{"initContainers.env", ListStrategy::Kind::kMap, kName},
    Entry{"containers.volumeMounts", ListStrategy::Kind::kMap, kMountPath},
    Entry{"initContainers.volumeMounts", ListStrategy::Kind::kMap, kMountPath},
    Entry{"containers.volumeDevices", ListStrategy::Kind::kMap, kDevicePath},
    Entry{"volumes", ListStrategy::Kind::kMap, kName},
    Entry{"imagePullSecrets", ListStrategy::Kind::kMap, kName},
    Entry{"hostAliases", ListStrategy::Kind::kMap, kIp},
    Entry{"topologySpreadConstraints", ListStrategy::Kind::kMap, kTopology},
};

// Kind-specific lists outside pod specs.
struct KindEntry {
  std::string_view kind;
  Entry entry;
};
constexpr std::array kKindLists = {
    KindEntry{"Pod", {"status.conditions", ListStrategy::Kind::kMap, kType}},
    KindEntry{"Deployment", {"status.conditions", ListStrategy::Kind::kMap, kType}},
    KindEntry{"Service", {"spec.ports", ListStrategy::Kind::kMap, kServicePort}},
    KindEntry{"ServiceAccount", {"secrets", ListStrategy::Kind::kMap, kName}},
    KindEntry{"ServiceAccount", {"imagePullSecrets", ListStrategy::Kind::kMap, kName}},
    KindEntry{"Namespace", {"spec.finalizers", ListStrategy::Kind::kSet, {}}},
};

std::string_view pod_spec_prefix(std::string_view kind) {
  if (kind == "Pod") {
    return "spec.";
  }
  if (kind == "Deployment") {
    return "spec.template.spec.";
  }
  return {};
}

ListStrategy make(const Entry& e) {
  return ListStrategy{e.kind, e.keys};
}

}  // namespace

ListStrategy list_strategy(std::string_view kind, std::string_view path) noexcept {
  for (const Entry& e : kMetadataLists) {
    if (e.path == path) {
      return make(e);
    }
  }
  if (const std::string_view prefix = pod_spec_prefix(kind);
      !prefix.empty() && path.starts_with(prefix)) {
    const std::string_view rest = path.substr(prefix.size());
    for (const Entry& e : kPodSpecLists) {
      if (e.path == rest) {
        return make(e);
      }
    }
  }
  if (kind == "Deployment" && path == "spec.template.metadata.ownerReferences") {
    return ListStrategy{ListStrategy::Kind::kMap, kUid};
  }
  for (const KindEntry& k : kKindLists) {
    if (k.kind == kind && k.entry.path == path) {
      return make(k.entry);
    }
  }
  return {};
}

}  // namespace archipel::kube
