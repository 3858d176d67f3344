#pragma once

// Test helper: an expression tree as an s-expression, "(| a (& b c))", so that tests can state
// the tree they expect in one line.

#include "archipel/dsl/scope.hpp"

#include <string>

namespace archipel::dsl::test {

inline std::string tree(const ScopeExpr& e) {
  switch (e.kind()) {
    case ScopeExpr::Kind::kSite: return std::string(e.site_name());
    case ScopeExpr::Kind::kLocal: return ".";
    case ScopeExpr::Kind::kAllOf:
    case ScopeExpr::Kind::kAnyOf: break;
  }
  std::string out = e.kind() == ScopeExpr::Kind::kAllOf ? "(&" : "(|";
  for (const ScopeExpr operand : e.operands()) {
    out += ' ';
    out += tree(operand);
  }
  return out + ')';
}

}  // namespace archipel::dsl::test
