#pragma once

// The scope language's syntax tree, its parser and its canonical printer.
// Pure: no I/O, no clock, no global state; every function is thread-safe.
// The grammar is grammar/scope.ebnf; the language reference is docs/scope-language.md.

#include "archipel/dsl/error.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::dsl {

/// Longest expression, not counting spaces and tabs (so that every canonical form, which adds
/// spaces around operators, parses again).
inline constexpr std::size_t kMaxExpressionBytes = 4096;
/// Longest expression including whitespace.
inline constexpr std::size_t kMaxRawBytes = 16384;
inline constexpr std::size_t kMaxNesting = 64;
inline constexpr std::size_t kMaxSites = 256;

/// A location expression, normalised: an all-of never holds an all-of, an any-of never holds an
/// any-of (both operators are associative), and neither holds a single operand.
/// Operand order is kept as written: it is the failover order for any-of.
class ScopeExpr {
 public:
  enum class Kind : std::uint8_t {
    kSite,   ///< a named site
    kLocal,  ///< '.', the site that received the request
    kAllOf,  ///< a & b & …: every operand
    kAnyOf,  ///< a | b | …: the first operand that succeeds
  };

  /// A named site. `column` is where it was written (1-based; 0 when built by code): used in
  /// evaluation errors, ignored by ==.
  /// '.', the receiving site (so that containers and out-parameters can hold one).
  ScopeExpr() = default;

  static ScopeExpr site(std::string name, std::size_t column = 0);
  static ScopeExpr local(std::size_t column = 0);
  /// Makes this a named site in place, reusing its storage (the parser's hot path).
  void set_site(std::string_view name, std::size_t column);
  /// Normalising constructors: nested operands of the same kind are spliced in; one operand
  /// is returned as is. `operands` must not be empty.
  static ScopeExpr all_of(std::vector<ScopeExpr> operands);
  static ScopeExpr any_of(std::vector<ScopeExpr> operands);

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// The site's name (kSite only; empty otherwise).
  [[nodiscard]] const std::string& site_name() const noexcept { return name_; }
  [[nodiscard]] std::size_t column() const noexcept { return column_; }
  /// The operands of kAllOf / kAnyOf (empty for sites).
  [[nodiscard]] std::span<const ScopeExpr> operands() const noexcept { return operands_; }

  /// Structural equality; source columns are not compared.
  friend bool operator==(const ScopeExpr& a, const ScopeExpr& b) noexcept;

 private:
  friend class ScopeExprBuilder;  // the parser's in-place construction (src/dsl/parser.cpp)

  ScopeExpr(Kind kind, std::string name, std::size_t column, std::vector<ScopeExpr> operands);
  static ScopeExpr combine(Kind kind, std::vector<ScopeExpr> operands);
  /// Splices operands of this node's own kind into it (associativity).
  void flatten();

  Kind kind_ = Kind::kLocal;
  std::string name_;
  std::size_t column_ = 0;
  std::vector<ScopeExpr> operands_;
};

/// The resources a binding applies to: a plural name, optionally qualified by its API group
/// ("pods", "deployments.apps"), or "*" for every resource.
struct ResourcePattern {
  std::string plural;  ///< "*" for every resource
  std::string group;   ///< empty: any group (and the core group)

  [[nodiscard]] bool is_wildcard() const noexcept { return plural == "*"; }
  friend bool operator==(const ResourcePattern&, const ResourcePattern&) = default;
};

struct Binding {
  ResourcePattern resource;
  ScopeExpr expr;
  friend bool operator==(const Binding&, const Binding&) = default;
};

/// A whole scope: bindings in the order written. A bare expression is the single binding
/// "*: expr" (and prints as the bare expression).
struct Scope {
  std::vector<Binding> bindings;
  /// The text it was parsed from (empty when built by code); quoted by evaluation errors.
  /// Not compared by ==.
  std::string source;

  friend bool operator==(const Scope& a, const Scope& b) { return a.bindings == b.bindings; }
};

/// Parses `text` as a scope. Never throws, never recurses deeper than kMaxNesting, and rejects
/// input over the limits with an error naming the limit.
[[nodiscard]] boost::system::result<Scope, ScopeError> parse_scope(std::string_view text);

/// The canonical text: single spaces around '&' and '|', "r: e, r: e" for bindings, and only
/// the parentheses the precedence needs. parse_scope(to_string(s)) == s for every valid s.
[[nodiscard]] std::string to_string(const ScopeExpr& expr);
[[nodiscard]] std::string to_string(const Scope& scope);

/// Whether `name` is a DNS-1123 label (1–63 of [a-z0-9-], alphanumeric at both ends).
[[nodiscard]] bool is_dns1123_label(std::string_view name) noexcept;

}  // namespace archipel::dsl
