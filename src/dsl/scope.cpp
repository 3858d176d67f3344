#include "archipel/dsl/scope.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <utility>

namespace archipel::dsl {

ScopeExpr::ScopeExpr(Kind kind, std::string name, std::size_t column,
                     std::vector<ScopeExpr> operands)
    : kind_(kind), name_(std::move(name)), column_(column), operands_(std::move(operands)) {}

ScopeExpr ScopeExpr::site(std::string name, std::size_t column) {
  return ScopeExpr(Kind::kSite, std::move(name), column, {});
}

void ScopeExpr::set_site(std::string_view name, std::size_t column) {
  kind_ = Kind::kSite;
  name_.assign(name);
  column_ = column;
  operands_.clear();
}

ScopeExpr ScopeExpr::local(std::size_t column) {
  return ScopeExpr(Kind::kLocal, {}, column, {});
}

ScopeExpr ScopeExpr::all_of(std::vector<ScopeExpr> operands) {
  return combine(Kind::kAllOf, std::move(operands));
}

ScopeExpr ScopeExpr::any_of(std::vector<ScopeExpr> operands) {
  return combine(Kind::kAnyOf, std::move(operands));
}

ScopeExpr ScopeExpr::combine(Kind kind, std::vector<ScopeExpr> operands) {
  assert(!operands.empty());
  if (operands.size() == 1) {
    return std::move(operands.front());
  }
  ScopeExpr e(kind, {}, 0, std::move(operands));
  e.flatten();
  return e;
}

void ScopeExpr::flatten() {
  bool nested = false;
  for (const ScopeExpr& e : operands_) {
    nested = nested || e.kind_ == kind_;
  }
  if (!nested) {
    return;
  }
  // associativity: (a & b) & c is a & b & c
  std::vector<ScopeExpr> flat;
  for (ScopeExpr& e : operands_) {
    if (e.kind_ == kind_) {
      for (ScopeExpr& inner : e.operands_) {
        flat.push_back(std::move(inner));
      }
    } else {
      flat.push_back(std::move(e));
    }
  }
  operands_ = std::move(flat);
}

bool operator==(const ScopeExpr& a, const ScopeExpr& b) noexcept {
  return a.kind_ == b.kind_ && a.name_ == b.name_ && a.operands_ == b.operands_;
}

namespace {

void print(const ScopeExpr& e, std::string& out) {
  switch (e.kind()) {
    case ScopeExpr::Kind::kSite: out += e.site_name(); return;
    case ScopeExpr::Kind::kLocal: out += '.'; return;
    case ScopeExpr::Kind::kAllOf:
    case ScopeExpr::Kind::kAnyOf: break;
  }
  const bool all = e.kind() == ScopeExpr::Kind::kAllOf;
  bool first = true;
  for (const ScopeExpr& operand : e.operands()) {
    if (!first) {
      out += all ? " & " : " | ";
    }
    first = false;
    // '&' binds tighter than '|': only an any-of under an all-of needs parentheses.
    const bool parens = all && operand.kind() == ScopeExpr::Kind::kAnyOf;
    if (parens) {
      out += '(';
    }
    print(operand, out);
    if (parens) {
      out += ')';
    }
  }
}

}  // namespace

std::string to_string(const ScopeExpr& expr) {
  std::string out;
  print(expr, out);
  return out;
}

std::string to_string(const Scope& scope) {
  if (scope.bindings.size() == 1 && scope.bindings.front().resource.is_wildcard()) {
    return to_string(scope.bindings.front().expr);
  }
  std::string out;
  for (const Binding& b : scope.bindings) {
    if (!out.empty()) {
      out += ", ";
    }
    out += b.resource.plural;
    if (!b.resource.group.empty()) {
      out += '.';
      out += b.resource.group;
    }
    out += ": ";
    print(b.expr, out);
  }
  return out;
}

namespace {

// Character classes of DNS-1123 labels: 2 for [a-z0-9], 1 for '-', 0 for anything else.
constexpr std::array<std::uint8_t, 256> kLabelClass = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) {
    t[static_cast<std::size_t>(c)] = 2;
  }
  for (int c = '0'; c <= '9'; ++c) {
    t[static_cast<std::size_t>(c)] = 2;
  }
  t['-'] = 1;
  return t;
}();

std::uint8_t label_class(char c) {
  return kLabelClass[static_cast<unsigned char>(c)];
}

}  // namespace

bool is_dns1123_label(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  std::uint8_t all = 2;
  for (char c : name) {
    all = std::min(all, label_class(c));
  }
  return all != 0 && label_class(name.front()) == 2 && label_class(name.back()) == 2;
}

}  // namespace archipel::dsl
