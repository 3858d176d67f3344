#pragma once

// The scope language's syntax tree, its parser and its canonical printer.
// Pure: no I/O, no clock, no global state; every function is thread-safe.
// The grammar is grammar/scope.ebnf; the language reference is docs/scope-language.md.

#include "archipel/dsl/error.hpp"

#include <boost/container/small_vector.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

namespace archipel::dsl {

/// Longest expression, not counting spaces and tabs (so that every canonical form, which adds
/// spaces around operators, parses again).
inline constexpr std::size_t kMaxExpressionBytes = 4096;
/// Longest expression including whitespace.
inline constexpr std::size_t kMaxRawBytes = 16384;
inline constexpr std::size_t kMaxNesting = 64;
inline constexpr std::size_t kMaxSites = 256;

class Scope;

/// A location expression, normalised: an all-of never holds an all-of, an any-of never holds an
/// any-of (both operators are associative), and neither holds a single operand.
/// Operand order is kept as written: it is the failover order for any-of.
///
/// A ScopeExpr is a view of one node of a parsed Scope (two words, cheap to copy); it is valid
/// while that Scope lives and has not been moved from or assigned to.
class ScopeExpr {
 public:
  enum class Kind : std::uint8_t {
    kSite,   ///< a named site
    kLocal,  ///< '.', the site that received the request
    kAllOf,  ///< a & b & …: every operand
    kAnyOf,  ///< a | b | …: the first operand that succeeds
  };

  /// The operands of an all-of or any-of, in the order written: a forward range.
  class Operands;

  [[nodiscard]] Kind kind() const noexcept;
  /// The site's name (kSite only; empty otherwise).
  [[nodiscard]] std::string_view site_name() const noexcept;
  /// 1-based column where a site or '.' was written (0 for operators).
  [[nodiscard]] std::size_t column() const noexcept;
  [[nodiscard]] Operands operands() const noexcept;
  /// The text of the scope this node belongs to.
  [[nodiscard]] std::string_view source() const noexcept;

  /// Structural equality, across scopes; columns are not compared.
  friend bool operator==(const ScopeExpr& a, const ScopeExpr& b) noexcept;

 private:
  friend class Scope;
  ScopeExpr(const Scope* scope, std::uint32_t node) noexcept : scope_(scope), node_(node) {}

  const Scope* scope_;
  std::uint32_t node_;
};

/// The resources a binding applies to: a plural name, optionally qualified by its API group
/// ("pods", "deployments.apps"), or "*" for every resource. Views into the Scope's text.
struct ResourcePattern {
  std::string_view plural;  ///< "*" for every resource
  std::string_view group;   ///< empty: any group (and the core group)

  [[nodiscard]] bool is_wildcard() const noexcept { return plural == "*"; }
  friend bool operator==(const ResourcePattern&, const ResourcePattern&) = default;
};

/// One "resource: expression" of a scope (views into the Scope).
struct Binding {
  ResourcePattern resource;
  ScopeExpr expr;
};

/// A whole scope: bindings in the order written. A bare expression is the single binding
/// "*: expr" (and prints as the bare expression).
///
/// Flat: the expression trees of every binding are nodes of one array (inline for up to
/// kInlineNodes nodes), and names are spans of the source text, so parsing a usual scope
/// allocates at most once (for a source longer than std::string's inline buffer). Copying and
/// moving a Scope are plain member copies; views taken before are not carried over.
class Scope {
 public:
  class Bindings;
  static constexpr std::size_t kInlineNodes = 8;

  // User-provided, so that a Scope built in place (in a result) is not zero-filled first.
  Scope() noexcept {}  // NOLINT(modernize-use-equals-default)

  [[nodiscard]] Bindings bindings() const noexcept;
  [[nodiscard]] std::size_t binding_count() const noexcept { return bindings_.size(); }
  [[nodiscard]] Binding binding(std::size_t index) const noexcept;
  /// The text it was parsed from; quoted by evaluation errors.
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

  /// Structural equality of the bindings; the source text is not compared.
  friend bool operator==(const Scope& a, const Scope& b) noexcept;

 private:
  friend class ScopeExpr;
  friend class ScopeParser;  // builds scopes (src/dsl/parser.cpp)

  static constexpr std::uint32_t kNone = 0xffffffff;

  struct Span {  // a piece of source_
    std::uint32_t offset = 0;
    std::uint32_t size = 0;
  };
  struct Node {
    ScopeExpr::Kind kind = ScopeExpr::Kind::kLocal;
    std::uint32_t column = 0;
    std::uint32_t first = kNone;  // operators: first operand; kSite: name offset in source_
    std::uint32_t count = 0;      // operators: number of operands; kSite: name length
    std::uint32_t next = kNone;   // the next operand of the same operator
  };
  struct BindingNode {
    bool wildcard = false;  // "*", written or implied by a bare expression
    Span plural;
    Span group;
    std::uint32_t root = kNone;
  };

  [[nodiscard]] std::string_view text(Span s) const noexcept;
  [[nodiscard]] const Node& node(std::uint32_t i) const noexcept { return nodes_[i]; }

  std::string source_;
  boost::container::small_vector<Node, kInlineNodes> nodes_;
  boost::container::small_vector<BindingNode, 4> bindings_;
};

class ScopeExpr::Operands {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = ScopeExpr;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = ScopeExpr;
    iterator() = default;
    ScopeExpr operator*() const noexcept { return {scope_, node_}; }
    iterator& operator++() noexcept;
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.node_ == b.node_;
    }

   private:
    friend class Operands;
    iterator(const Scope* scope, std::uint32_t node) noexcept : scope_(scope), node_(node) {}
    const Scope* scope_ = nullptr;
    std::uint32_t node_ = 0xffffffff;
  };

  [[nodiscard]] iterator begin() const noexcept { return {scope_, first_}; }
  [[nodiscard]] iterator end() const noexcept { return {scope_, 0xffffffff}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// The first operand (not empty()).
  [[nodiscard]] ScopeExpr front() const noexcept { return {scope_, first_}; }

 private:
  friend class ScopeExpr;
  Operands(const Scope* scope, std::uint32_t first, std::size_t size) noexcept
      : scope_(scope), first_(first), size_(size) {}
  const Scope* scope_;
  std::uint32_t first_;
  std::size_t size_;
};

class Scope::Bindings {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Binding;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Binding;
    iterator() = default;
    Binding operator*() const noexcept { return scope_->binding(index_); }
    iterator& operator++() noexcept {
      ++index_;
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++index_;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.index_ == b.index_;
    }

   private:
    friend class Bindings;
    iterator(const Scope* scope, std::size_t index) noexcept : scope_(scope), index_(index) {}
    const Scope* scope_ = nullptr;
    std::size_t index_ = 0;
  };

  [[nodiscard]] iterator begin() const noexcept { return {scope_, 0}; }
  [[nodiscard]] iterator end() const noexcept { return {scope_, scope_->binding_count()}; }
  [[nodiscard]] std::size_t size() const noexcept { return scope_->binding_count(); }
  [[nodiscard]] Binding operator[](std::size_t i) const noexcept { return scope_->binding(i); }
  [[nodiscard]] Binding front() const noexcept { return scope_->binding(0); }

 private:
  friend class Scope;
  explicit Bindings(const Scope* scope) noexcept : scope_(scope) {}
  const Scope* scope_;
};

inline Scope::Bindings Scope::bindings() const noexcept {
  return Bindings(this);
}

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
