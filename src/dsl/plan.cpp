#include "archipel/dsl/plan.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <optional>
#include <utility>

namespace archipel::dsl {

namespace {
bool shorter_or_before(std::string_view a, std::string_view b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}
}  // namespace

SiteView::SiteView(std::string local, std::vector<Site> peers) : local_(std::move(local)) {
  sites_ = std::move(peers);
  sites_.push_back(Site{local_, true});
  std::stable_sort(sites_.begin(), sites_.end(),
                   [](const Site& a, const Site& b) { return a.name < b.name; });
  sites_.erase(std::unique(sites_.begin(), sites_.end(),
                           [](const Site& a, const Site& b) { return a.name == b.name; }),
               sites_.end());
  // The receiving site is always reachable from itself, whatever a peer list said.
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    if (sites_[i].name == local_) {
      sites_[i].reachable = true;
      local_index_ = i;
    }
  }
  by_length_.resize(sites_.size());
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    by_length_[i] = static_cast<std::uint32_t>(i);
  }
  std::sort(by_length_.begin(), by_length_.end(), [this](std::uint32_t a, std::uint32_t b) {
    return shorter_or_before(sites_[a].name, sites_[b].name);
  });
}

const SiteView::Site* SiteView::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(
      by_length_.begin(), by_length_.end(), name,
      [this](std::uint32_t i, std::string_view n) { return shorter_or_before(sites_[i].name, n); });
  return it != by_length_.end() && sites_[*it].name == name ? &sites_[*it] : nullptr;
}

namespace {

ScopeError error(errc code, std::string message, std::size_t column, std::string_view source) {
  if (column > 0) {
    message += " at column " + std::to_string(column);
  }
  return ScopeError{code, std::move(message), column, std::string(source)};
}

std::string known_sites(const SiteView& view) {
  std::string out;
  for (const SiteView::Site& s : view.sites()) {
    out += out.empty() ? "" : ", ";
    out += s.name;
  }
  return out;
}

// A scope names at most kMaxSites sites (the parser's limit), so each distinct site gets a slot
// below kMaxSites and an alternative's membership is a fixed-size bit set: comparing two
// alternatives as sets is a few word compares, whatever their size. Only the words that slots
// in use reach are read or copied (one for up to 64 sites); the others stay zero.
class Members {
 public:
  [[nodiscard]] bool test(std::size_t slot) const {
    return (words_[slot / 64] >> (slot % 64)) & 1U;
  }
  void set(std::size_t slot) { words_[slot / 64] |= std::uint64_t{1} << (slot % 64); }
  void reset(std::size_t slot) { words_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64)); }
  // Word by word, on purpose: a wide copy of words just written one by one stalls the load.
  [[nodiscard]] bool equals(const Members& o, std::size_t words) const {
    for (std::size_t i = 0; i < words; ++i) {
      if (words_[i] != o.words_[i]) {
        return false;
      }
    }
    return true;
  }
  void assign(const Members& o, std::size_t words) {
    for (std::size_t i = 0; i < words; ++i) {
      words_[i] = o.words_[i];
    }
  }

 private:
  std::array<std::uint64_t, kMaxSites / 64> words_{};
};

// Most alternatives enumerated before duplicates are dropped: bounds the work on expressions
// such as "(a | a | a) & (a | a | a) & …" whose plan is small but whose expansion is not.
constexpr std::size_t kMaxEnumerated = 16 * kMaxAlternatives;

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

// Expands an expression into disjunctive normal form by depth-first enumeration: the sites of
// the alternative being built are pushed and popped on one stack, and what remains to be done
// after a subexpression is a chain of frames on the call stack (depth bounded by the parser's
// limits on sites and nesting). Nothing is allocated for small plans until the Plan is built.
class Expander {
 public:
  Expander(const SiteView& view, std::string_view source) : view_(view), source_(source) {}

  boost::system::result<Plan, ScopeError> plan(const ScopeExpr& e, int binding) {
    // Built in place in the result, which is returned by name (a Plan holds its first
    // alternatives inline: moving it would move every site).
    boost::system::result<Plan, ScopeError> result;
    walk(e, nullptr);
    if (failure_) {
      result = std::move(*failure_);
      return result;
    }
    Plan& plan = *result;
    plan.binding = binding;
    plan.alternatives.resize(alts_.size());
    for (std::size_t i = 0; i < alts_.size(); ++i) {
      auto& sites = plan.alternatives[i].sites;
      sites.reserve(alts_[i].end - alts_[i].begin);
      for (std::uint32_t j = alts_[i].begin; j < alts_[i].end; ++j) {
        const SiteView::Site& s = *sites_[slots_[j]];
        sites.push_back(PlannedSite{s.name, &s == &view_.local_site(), s.reachable});
      }
    }
    return result;
  }

 private:
  // What is left to expand after the current subexpression: the remaining operands of an
  // enclosing all-of, then whatever follows that all-of.
  struct Frame {
    ScopeExpr::Operands::iterator rest;  // not at the end
    const Frame* next;
  };

  struct Alt {
    Members members;
    std::uint32_t begin = 0;  // slots_[begin, end): the sites in the order first written
    std::uint32_t end = 0;
  };

  void walk(const ScopeExpr& e, const Frame* k) {
    if (failure_) {
      return;
    }
    switch (e.kind()) {
      case ScopeExpr::Kind::kLocal: return visit_site(&view_.local_site(), k);
      case ScopeExpr::Kind::kSite: {
        const SiteView::Site* site = view_.find(e.site_name());
        if (site == nullptr) {
          failure_ = error(errc::unknown_site,
                           "unknown site '" + std::string(e.site_name()) +
                               "' (known: " + known_sites(view_) + ")",
                           e.column(), source_);
          return;
        }
        return visit_site(site, k);
      }
      case ScopeExpr::Kind::kAnyOf:
        for (const ScopeExpr operand : e.operands()) {
          walk(operand, k);
        }
        return;
      case ScopeExpr::Kind::kAllOf: {
        auto it = e.operands().begin();
        const ScopeExpr first = *it;
        const Frame rest{++it, k};
        return walk(first, &rest);
      }
    }
  }

  void visit_site(const SiteView::Site* site, const Frame* k) {
    const std::uint16_t slot = slot_of(site);
    const bool added = !current_.test(slot);
    if (added) {
      current_.set(slot);
      stack_.push_back(slot);
    }
    resume(k);
    if (added) {
      current_.reset(slot);
      stack_.pop_back();
    }
  }

  void resume(const Frame* k) {
    if (k == nullptr) {
      return emit();
    }
    auto it = k->rest;
    const ScopeExpr e = *it;
    if (++it == ScopeExpr::Operands::iterator()) {
      return walk(e, k->next);
    }
    const Frame rest{it, k->next};
    walk(e, &rest);
  }

  // One complete alternative. Trying the same sites again could not succeed where the first
  // try failed, so a set already planned is skipped.
  void emit() {
    if (++enumerated_ > kMaxEnumerated) {
      return fail_too_many();
    }
    const std::size_t words = (sites_.size() + 63) / 64;
    for (const Alt& a : alts_) {
      if (a.members.equals(current_, words)) {
        return;
      }
    }
    if (alts_.size() == kMaxAlternatives) {
      return fail_too_many();
    }
    Alt& alt = alts_.emplace_back();
    alt.members.assign(current_, words);
    alt.begin = static_cast<std::uint32_t>(slots_.size());
    slots_.insert(slots_.end(), stack_.begin(), stack_.end());
    alt.end = static_cast<std::uint32_t>(slots_.size());
  }

  void fail_too_many() {
    failure_ = error(errc::too_many_alternatives,
                     "the scope expands to more than " + std::to_string(kMaxAlternatives) +
                         " alternatives; factor it (e.g. 'a & (b | c)' rather than many '|' "
                         "under '&')",
                     0, source_);
  }

  std::uint16_t slot_of(const SiteView::Site* site) {
    for (std::size_t i = 0; i < sites_.size(); ++i) {
      if (sites_[i] == site) {
        return static_cast<std::uint16_t>(i);
      }
    }
    // The parser caps site names per scope at kMaxSites, so slots never run out.
    assert(sites_.size() < kMaxSites);
    sites_.push_back(site);
    return static_cast<std::uint16_t>(sites_.size() - 1);
  }

  const SiteView& view_;
  std::string_view source_;
  boost::container::small_vector<const SiteView::Site*, 8> sites_;  // slot -> site
  Members current_;                                                 // the alternative being built
  boost::container::small_vector<std::uint16_t, 8> stack_;          // its slots, in order
  boost::container::small_vector<Alt, 4> alts_;                     // complete alternatives
  boost::container::small_vector<std::uint16_t, 8> slots_;          // their slots
  std::size_t enumerated_ = 0;
  std::optional<ScopeError> failure_;
};

}  // namespace

boost::system::result<Plan, ScopeError> evaluate(const ScopeExpr& expr, const SiteView& view) {
  return Expander(view, expr.source()).plan(expr, -1);
}

boost::system::result<Plan, ScopeError> evaluate(const Scope& scope, const SiteView& view,
                                                 ResourceRef resource) {
  const std::string_view plural = resource.plural.substr(0, resource.plural.find('/'));
  int best = -1;
  int best_score = 0;
  for (std::size_t i = 0; i < scope.binding_count(); ++i) {
    const int score = match_score(scope.binding(i).resource, plural, resource.group);
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  if (best < 0) {  // no binding for this resource: as if unscoped
    boost::system::result<Plan, ScopeError> result;
    result->alternatives.emplace_back().sites.push_back(PlannedSite{view.local(), true, true});
    return result;
  }
  return Expander(view, scope.source())
      .plan(scope.binding(static_cast<std::size_t>(best)).expr, best);
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
