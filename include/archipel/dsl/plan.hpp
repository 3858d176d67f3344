#pragma once

// Evaluation of a scope for one request: which sites to run it on, in which order.
// Pure: the caller passes what the receiving site knows (SiteView); no I/O, no clock.

#include "archipel/dsl/error.hpp"
#include "archipel/dsl/scope.hpp"

#include <boost/container/small_vector.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::dsl {

/// Most alternatives a plan may hold: "(a|b) & (c|d) & …" multiplies them.
inline constexpr std::size_t kMaxAlternatives = 256;

/// What the receiving site knows of the federation when a request arrives. A value: build it
/// from membership, pass it by const reference; lookups are O(log n).
class SiteView {
 public:
  struct Site {
    std::string name;
    bool reachable = true;
  };

  /// `local` is the receiving site's name; it is known (and reachable) whether or not it is in
  /// `peers`. Duplicate names keep the first entry.
  SiteView(std::string local, std::vector<Site> peers);

  [[nodiscard]] const std::string& local() const noexcept { return local_; }
  /// nullptr when `name` is not a known site.
  [[nodiscard]] const Site* find(std::string_view name) const noexcept;
  /// Every known site, sorted by name (the receiving site included).
  [[nodiscard]] const std::vector<Site>& sites() const noexcept { return sites_; }
  /// The receiving site's entry in sites().
  [[nodiscard]] const Site& local_site() const noexcept { return sites_[local_index_]; }

 private:
  std::string local_;
  std::vector<Site> sites_;  // sorted by name, unique
  std::size_t local_index_ = 0;
  // Lookup order: by length, then bytes. Most names differ in length, so a probe seldom
  // reaches memcmp. Indices into sites_.
  std::vector<std::uint32_t> by_length_;
};

/// A request's resource as a binding sees it: plural name and API group ("" for core).
/// Subresources ("pods/log") are scoped as their resource.
struct ResourceRef {
  std::string_view plural;
  std::string_view group;
};

struct PlannedSite {
  std::string name;
  bool local = false;     ///< the receiving site itself
  bool reachable = true;  ///< as the SiteView had it when the plan was made
  friend bool operator==(const PlannedSite&, const PlannedSite&) = default;
};

/// One way to satisfy the scope: run on every site of `sites` (in parallel) and merge.
struct Alternative {
  /// Distinct, in the order first written. Inline for up to four sites.
  boost::container::small_vector<PlannedSite, 4> sites;
  friend bool operator==(const Alternative&, const Alternative&) = default;
};

/// What to execute for a request: alternatives tried in order until one succeeds ('|'), each a
/// set of sites run together ('&'). Never empty when evaluation succeeds.
struct Plan {
  // User-provided, so that a Plan built in place (in a result) is not zero-filled first.
  Plan() noexcept {}  // NOLINT(modernize-use-equals-default)
  /// Inline for up to two alternatives ("a | b", "a & (b | c)"): planning the usual scopes
  /// allocates nothing.
  boost::container::small_vector<Alternative, 2> alternatives;
  /// Index of the binding that applied; -1 when no binding matched and the request runs on the
  /// receiving site only (as with no scope at all).
  int binding = -1;
  friend bool operator==(const Plan&, const Plan&) = default;
};

/// Picks the binding for `resource` (exact plural+group, then plural alone, then '*'; none:
/// the receiving site) and expands its expression into alternatives.
/// Errors: unknown_site (names the site and the known ones), too_many_alternatives.
[[nodiscard]] boost::system::result<Plan, ScopeError> evaluate(const Scope& scope,
                                                               const SiteView& view,
                                                               ResourceRef resource);

/// Expands one expression (no binding lookup).
[[nodiscard]] boost::system::result<Plan, ScopeError> evaluate(const ScopeExpr& expr,
                                                               const SiteView& view);

/// A human-readable plan, one alternative per line: "1. paris + nantes" with "(here)" and
/// "(unreachable)" marks.
[[nodiscard]] std::string describe(const Plan& plan);

}  // namespace archipel::dsl
