#include "archipel/dsl/plan.hpp"

#include <algorithm>
#include <utility>

namespace archipel::dsl {

SiteView::SiteView(std::string local, std::vector<Site> peers) : local_(std::move(local)) {
  sites_ = std::move(peers);
  sites_.push_back(Site{local_, true});
  std::stable_sort(sites_.begin(), sites_.end(),
                   [](const Site& a, const Site& b) { return a.name < b.name; });
  sites_.erase(std::unique(sites_.begin(), sites_.end(),
                           [](const Site& a, const Site& b) { return a.name == b.name; }),
               sites_.end());
  // The receiving site is always reachable from itself, whatever a peer list said.
  for (Site& s : sites_) {
    if (s.name == local_) {
      s.reachable = true;
    }
  }
}

const SiteView::Site* SiteView::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(sites_.begin(), sites_.end(), name,
                             [](const Site& s, std::string_view n) { return s.name < n; });
  return it != sites_.end() && it->name == name ? &*it : nullptr;
}

namespace {

using Alternatives = std::vector<Alternative>;

ScopeError error(errc code, std::string message, std::size_t column, std::string_view source) {
  if (column > 0) {
    message += " at column " + std::to_string(column);
  }
  return ScopeError{code, std::move(message), column, std::string(source)};
}

// Adds `site` unless the alternative already holds it.
void add_site(Alternative& alt, const PlannedSite& site) {
  for (const PlannedSite& s : alt.sites) {
    if (s.name == site.name) {
      return;
    }
  }
  alt.sites.push_back(site);
}

bool same_sites(const Alternative& a, const Alternative& b) {
  if (a.sites.size() != b.sites.size()) {
    return false;
  }
  return std::all_of(a.sites.begin(), a.sites.end(), [&](const PlannedSite& s) {
    return std::any_of(b.sites.begin(), b.sites.end(),
                       [&](const PlannedSite& t) { return t.name == s.name; });
  });
}

// Appends `alt` unless an earlier alternative already names the same set of sites (trying the
// same sites twice could not succeed where the first try failed).
void add_alternative(Alternatives& out, Alternative alt) {
  for (const Alternative& a : out) {
    if (same_sites(a, alt)) {
      return;
    }
  }
  out.push_back(std::move(alt));
}

ScopeError too_many(std::string_view source) {
  return error(errc::too_many_alternatives,
               "the scope expands to more than " + std::to_string(kMaxAlternatives) +
                   " alternatives; factor it (e.g. 'a & (b | c)' rather than many '|' under '&')",
               0, source);
}

std::string known_sites(const SiteView& view) {
  std::string out;
  for (const SiteView::Site& s : view.sites()) {
    out += out.empty() ? "" : ", ";
    out += s.name;
  }
  return out;
}

// Disjunctive normal form: the alternatives of `e`, in failover order.
boost::system::result<Alternatives, ScopeError> expand(const ScopeExpr& e, const SiteView& view,
                                                       std::string_view source) {
  switch (e.kind()) {
    case ScopeExpr::Kind::kLocal:
      return Alternatives{Alternative{{PlannedSite{view.local(), true, true}}}};
    case ScopeExpr::Kind::kSite: {
      const SiteView::Site* site = view.find(e.site_name());
      if (site == nullptr) {
        return error(errc::unknown_site,
                     "unknown site '" + e.site_name() + "' (known: " + known_sites(view) + ")",
                     e.column(), source);
      }
      return Alternatives{
          Alternative{{PlannedSite{site->name, site->name == view.local(), site->reachable}}}};
    }
    case ScopeExpr::Kind::kAnyOf: {
      Alternatives out;
      for (const ScopeExpr& operand : e.operands()) {
        auto alts = expand(operand, view, source);
        if (!alts) {
          return alts.error();
        }
        for (Alternative& alt : *alts) {
          add_alternative(out, std::move(alt));
        }
        if (out.size() > kMaxAlternatives) {
          return too_many(source);
        }
      }
      return out;
    }
    case ScopeExpr::Kind::kAllOf: {
      Alternatives product{Alternative{}};
      for (const ScopeExpr& operand : e.operands()) {
        auto alts = expand(operand, view, source);
        if (!alts) {
          return alts.error();
        }
        if (product.size() * alts->size() > kMaxAlternatives) {
          return too_many(source);
        }
        Alternatives next;
        next.reserve(product.size() * alts->size());
        for (const Alternative& left : product) {  // the left operand varies slowest
          for (const Alternative& right : *alts) {
            Alternative joined = left;
            for (const PlannedSite& s : right.sites) {
              add_site(joined, s);
            }
            add_alternative(next, std::move(joined));
          }
        }
        product = std::move(next);
      }
      return product;
    }
  }
  return Alternatives{};
}

// Binding precedence: plural + group, then plural alone, then '*'.
int match_score(const ResourcePattern& pattern, std::string_view plural, std::string_view group) {
  if (pattern.is_wildcard()) {
    return 1;
  }
  if (pattern.plural != plural) {
    return 0;
  }
  if (pattern.group.empty()) {
    return 2;
  }
  return pattern.group == group ? 3 : 0;
}

}  // namespace

boost::system::result<Plan, ScopeError> evaluate(const ScopeExpr& expr, const SiteView& view) {
  auto alts = expand(expr, view, {});
  if (!alts) {
    return alts.error();
  }
  return Plan{std::move(*alts), -1};
}

boost::system::result<Plan, ScopeError> evaluate(const Scope& scope, const SiteView& view,
                                                 ResourceRef resource) {
  const std::string_view plural = resource.plural.substr(0, resource.plural.find('/'));
  int best = -1;
  int best_score = 0;
  for (std::size_t i = 0; i < scope.bindings.size(); ++i) {
    const int score = match_score(scope.bindings[i].resource, plural, resource.group);
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  if (best < 0) {  // no binding for this resource: as if unscoped
    return Plan{{Alternative{{PlannedSite{view.local(), true, true}}}}, -1};
  }
  auto alts = expand(scope.bindings[static_cast<std::size_t>(best)].expr, view, scope.source);
  if (!alts) {
    return alts.error();
  }
  return Plan{std::move(*alts), best};
}

std::string describe(const Plan& plan) {
  std::string out;
  std::size_t n = 0;
  for (const Alternative& alt : plan.alternatives) {
    if (plan.alternatives.size() > 1) {
      out += std::to_string(++n) + ". ";
    }
    bool first = true;
    for (const PlannedSite& s : alt.sites) {
      out += first ? "" : " + ";
      first = false;
      out += s.name;
      if (s.local) {
        out += " (here)";
      }
      if (!s.reachable) {
        out += " (unreachable)";
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace archipel::dsl
