#include "archipel/dsl/plan.hpp"
#include "archipel/dsl/scope.hpp"
#include "archipel/site/config.hpp"
#include "cli/commands.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>

namespace archipel::cli {
namespace {

void collect_sites(const dsl::ScopeExpr& e, std::vector<std::string>& out) {
  if (e.kind() == dsl::ScopeExpr::Kind::kSite) {
    if (std::find(out.begin(), out.end(), e.site_name()) == out.end()) {
      out.emplace_back(e.site_name());
    }
  }
  for (const dsl::ScopeExpr operand : e.operands()) {
    collect_sites(operand, out);
  }
}

// The SiteView the user described; without --sites or --config, every site the scope names is
// known and reachable, and the receiving site is "." unless --local names it.
std::optional<dsl::SiteView> make_view(const SiteViewOptions& o, const dsl::Scope* scope) {
  std::vector<std::string> names = o.sites;
  std::string local;
  if (o.config) {
    auto config = site::load_site_config(*o.config);
    if (!config) {
      std::cerr << "archipel: " << config.error().render() << "\n";
      return std::nullopt;
    }
    local = config->name;
    for (const site::PeerConfig& p : config->peers) {
      names.push_back(p.name);
    }
  } else if (!names.empty()) {
    local = names.front();
  } else {
    local = ".";
    if (scope != nullptr) {
      for (const dsl::Binding b : scope->bindings()) {
        collect_sites(b.expr, names);
      }
    }
  }
  if (o.local) {
    local = *o.local;
  }
  std::vector<dsl::SiteView::Site> peers;
  for (const std::string& n : names) {
    const bool down = std::find(o.down.begin(), o.down.end(), n) != o.down.end();
    peers.push_back({n, !down});
  }
  return dsl::SiteView(local, std::move(peers));
}

std::string resource_text(const dsl::ResourcePattern& r) {
  std::string text(r.plural);
  if (!r.group.empty()) {
    text += '.';
    text += r.group;
  }
  return text;
}

void print_plan(const dsl::Plan& plan) {
  std::string text = dsl::describe(plan);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    std::cout << "  " << text.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

}  // namespace

int scope_explain(const ScopeExplainOptions& o) {
  auto scope = dsl::parse_scope(o.expression);
  if (!scope) {
    std::cerr << "archipel: " << scope.error().render() << "\n";
    return kExitFailed;
  }
  auto view = make_view(o.view, &*scope);
  if (!view) {
    return kExitUsage;
  }
  std::cout << "canonical: " << dsl::to_string(*scope) << "\n";
  std::cout << "sites:     ";
  bool first = true;
  for (const dsl::SiteView::Site& s : view->sites()) {
    std::cout << (first ? "" : ", ") << s.name << (s.name == view->local() ? " (here)" : "")
              << (s.reachable ? "" : " (unreachable)");
    first = false;
  }
  std::cout << "\n";

  auto explain = [&](std::string_view plural, std::string_view group, const std::string& label) {
    auto plan = dsl::evaluate(*scope, *view, dsl::ResourceRef{plural, group});
    if (!plan) {
      std::cerr << "archipel: " << plan.error().render() << "\n";
      return false;
    }
    std::cout << "plan for " << label;
    if (plan->binding < 0) {
      std::cout << " (no binding applies: the receiving site only)";
    } else if (o.resource) {
      std::cout << " (binding '"
                << resource_text(scope->binding(static_cast<std::size_t>(plan->binding)).resource)
                << "')";
    }
    std::cout << ":\n";
    print_plan(*plan);
    return true;
  };

  bool ok = true;
  if (o.resource) {
    const std::size_t dot = o.resource->find('.');
    const std::string plural = o.resource->substr(0, dot);
    const std::string group = dot == std::string::npos ? "" : o.resource->substr(dot + 1);
    ok = explain(plural, group, "'" + *o.resource + "'");
  } else {
    for (const dsl::Binding b : scope->bindings()) {
      const std::string label = b.resource.is_wildcard() && scope->binding_count() == 1
                                    ? "every resource"
                                : b.resource.is_wildcard() ? "every other resource ('*')"
                                                           : "'" + resource_text(b.resource) + "'";
      ok = explain(b.resource.plural, b.resource.group, label) && ok;
    }
  }
  if (!ok) {
    return kExitFailed;
  }
  std::cout << "(numbered alternatives are tried in order until one succeeds; the sites of one\n"
               " alternative run the request together and their answers are merged)\n";
  return kExitOk;
}

int scope_check(const ScopeCheckOptions& o) {
  const bool check_sites = !o.view.sites.empty() || o.view.config.has_value();
  std::optional<dsl::SiteView> view;
  if (check_sites) {
    view = make_view(o.view, nullptr);
    if (!view) {
      return kExitUsage;
    }
  }
  std::string line;
  std::size_t number = 0;
  std::size_t checked = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') {
      continue;
    }
    auto scope = dsl::parse_scope(line);
    std::optional<dsl::ScopeError> error;
    if (!scope) {
      error = scope.error();
    } else if (view) {
      for (const dsl::Binding b : scope->bindings()) {
        auto plan = dsl::evaluate(*scope, *view, {b.resource.plural, b.resource.group});
        if (!plan) {
          error = plan.error();
          break;
        }
      }
    }
    if (error) {
      std::cerr << "stdin:" << number << ": " << error->render() << "\n";
      return kExitFailed;
    }
    ++checked;
    std::cout << dsl::to_string(*scope) << "\n";
  }
  std::cerr << checked << " scope expression" << (checked == 1 ? "" : "s") << " valid\n";
  return kExitOk;
}

}  // namespace archipel::cli
