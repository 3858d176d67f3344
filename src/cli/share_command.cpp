// archipel share / unshare: SharedObjects requests to a site's front door
// (proxy/shared_objects.hpp).

#include "archipel/dsl/scope.hpp"
#include "archipel/kube/resource.hpp"
#include "archipel/proxy/shared_objects.hpp"
#include "archipel/sharing/bridge.hpp"
#include "cli/commands.hpp"
#include "cli/front_door_client.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace archipel::cli {
namespace {

namespace json = boost::json;
constexpr std::string_view kCollection = "/apis/archipel.io/v1/sharedobjects";

struct Target {
  std::string resource;  // plural
  std::string namespace_name;
  std::string name;
  [[nodiscard]] std::string group() const {
    return sharing::group_id(resource, namespace_name, name);
  }
};

boost::system::result<Target, std::string> target_of(const ShareOptions& o) {
  using R = boost::system::result<Target, std::string>;
  if (o.what.size() == 2) {
    if (o.what[0] != "namespace" && o.what[0] != "namespaces" && o.what[0] != "ns") {
      return R(boost::system::in_place_error, "expected 'namespace NAME' or RESOURCE/NAME, got '" +
                                                  o.what[0] + " " + o.what[1] + "'");
    }
    if (!o.namespace_name.empty()) {
      return R(boost::system::in_place_error, "-n names an object's namespace, not a namespace");
    }
    return Target{"namespaces", "", o.what[1]};
  }
  const std::string& what = o.what.at(0);
  const std::size_t slash = what.find('/');
  if (slash == std::string::npos) {
    return R(boost::system::in_place_error,
             "expected 'namespace NAME' or RESOURCE/NAME (configmap/app), got '" + what + "'");
  }
  const std::string_view kind = std::string_view(what).substr(0, slash);
  for (const kube::ResourceType& t : kube::resource_types()) {
    bool match = t.namespaced && (t.plural == kind || t.singular == kind);
    for (std::string_view s : t.short_names) {
      match = match || (t.namespaced && s == kind);
    }
    if (match) {
      return Target{std::string(t.plural),
                    o.namespace_name.empty() ? std::string("default") : o.namespace_name,
                    what.substr(slash + 1)};
    }
  }
  return R(boost::system::in_place_error,
           "'" + std::string(kind) + "' is not a namespaced resource this site knows");
}

// The sites of 'nantes & rennes' (or one site).
boost::system::result<std::vector<std::string>, std::string> sites_of(const std::string& text,
                                                                      const char* option) {
  using R = boost::system::result<std::vector<std::string>, std::string>;
  auto scope = dsl::parse_scope(text);
  if (!scope) {
    return R(boost::system::in_place_error, std::string(option) + ": " + scope.error().message);
  }
  const std::string expected = std::string(option) +
                               " takes site names joined by '&' (e.g. 'nantes & rennes'), not '" +
                               text + "'";
  if (scope->binding_count() != 1 || !scope->binding(0).resource.is_wildcard()) {
    return R(boost::system::in_place_error, expected);
  }
  const dsl::ScopeExpr e = scope->binding(0).expr;
  std::vector<std::string> sites;
  if (e.kind() == dsl::ScopeExpr::Kind::kSite) {
    sites.emplace_back(e.site_name());
  } else if (e.kind() == dsl::ScopeExpr::Kind::kAllOf) {
    for (const dsl::ScopeExpr operand : e.operands()) {
      if (operand.kind() != dsl::ScopeExpr::Kind::kSite) {
        return R(boost::system::in_place_error, expected);
      }
      sites.emplace_back(operand.site_name());
    }
  } else {
    return R(boost::system::in_place_error, expected);
  }
  return sites;
}

std::string sites_text(const json::value& shared) {
  std::string out;
  const json::value* spec = shared.is_object() ? shared.as_object().if_contains("spec") : nullptr;
  const json::value* sites =
      spec && spec->is_object() ? spec->as_object().if_contains("sites") : nullptr;
  if (sites != nullptr && sites->is_array()) {
    for (const json::value& s : sites->as_array()) {
      if (s.is_string()) {
        out += (out.empty() ? "" : ", ") + std::string(s.as_string());
      }
    }
  }
  return out;
}

int finish(const boost::system::result<FrontDoorResponse, std::string>& r, std::string_view done) {
  if (!r) {
    std::cerr << "archipel: " << r.error() << "\n";
    return kExitFailed;
  }
  if (r->status >= 300) {
    std::cerr << "archipel: " << message_of(*r) << "\n";
    return kExitFailed;
  }
  boost::system::error_code ec;
  const json::value v = json::parse(r->body, ec);
  const std::string name = !ec && v.is_object() && v.as_object().contains("metadata")
                               ? std::string(v.at("metadata").at("name").as_string())
                               : std::string();
  std::cout << "sharedobject.archipel.io/" << name << " " << done << " " << sites_text(v) << "\n";
  return kExitOk;
}

}  // namespace

int share(const ShareOptions& o) {
  auto target = target_of(o);
  if (!target) {
    std::cerr << "archipel share: " << target.error() << "\n";
    return kExitUsage;
  }
  auto sites = sites_of(o.with, "--with");
  if (!sites) {
    std::cerr << "archipel share: " << sites.error() << "\n";
    return kExitUsage;
  }
  json::object spec{{"resource", target->resource}, {"name", target->name}};
  if (!target->namespace_name.empty()) {
    spec["namespace"] = target->namespace_name;
  }
  json::array list;
  for (const std::string& s : *sites) {
    list.emplace_back(s);
  }
  spec["sites"] = std::move(list);
  const json::object body{
      {"apiVersion", "archipel.io/v1"}, {"kind", "SharedObject"}, {"spec", std::move(spec)}};
  return finish(
      call_front_door(o.front_door, "POST", std::string(kCollection), json::serialize(body)),
      "shared by");
}

int unshare(const ShareOptions& o) {
  auto target = target_of(o);
  if (!target) {
    std::cerr << "archipel unshare: " << target.error() << "\n";
    return kExitUsage;
  }
  const std::string path =
      std::string(kCollection) + "/" + proxy::shared_object_name(target->group());
  const std::string copies = o.delete_copies ? "?removedCopies=Delete" : "";
  if (o.from.empty()) {
    return finish(call_front_door(o.front_door, "DELETE", path + copies, ""), "now only at");
  }
  auto from = sites_of(o.from, "--from");
  if (!from) {
    std::cerr << "archipel unshare: " << from.error() << "\n";
    return kExitUsage;
  }
  auto current = call_front_door(o.front_door, "GET", path, "");
  if (!current || current->status != 200) {
    return finish(current, "");
  }
  json::value shared = json::parse(current->body);
  json::array kept;
  for (const json::value& s : shared.at("spec").at("sites").as_array()) {
    if (std::find(from->begin(), from->end(), std::string_view(s.as_string())) == from->end()) {
      kept.push_back(s);
    }
  }
  shared.as_object()["spec"].as_object()["sites"] = std::move(kept);
  shared.as_object().erase("status");
  return finish(call_front_door(o.front_door, "PUT", path + copies, json::serialize(shared)),
                "shared by");
}

}  // namespace archipel::cli
