#include "archipel/dsl/scope.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <utility>

namespace archipel::dsl {

ScopeExpr::Kind ScopeExpr::kind() const noexcept {
  return scope_->node(node_).kind;
}

std::string_view ScopeExpr::site_name() const noexcept {
  const Scope::Node& n = scope_->node(node_);
  return n.kind == Kind::kSite ? scope_->text({n.first, n.count}) : std::string_view();
}

std::size_t ScopeExpr::column() const noexcept {
  return scope_->node(node_).column;
}

ScopeExpr::Operands ScopeExpr::operands() const noexcept {
  const Scope::Node& n = scope_->node(node_);
  if (n.kind == Kind::kSite || n.kind == Kind::kLocal) {
    return {scope_, Scope::kNone, 0};
  }
  return {scope_, n.first, n.count};
}

std::string_view ScopeExpr::source() const noexcept {
  return scope_->source();
}

ScopeExpr::Operands::iterator& ScopeExpr::Operands::iterator::operator++() noexcept {
  node_ = scope_->node(node_).next;
  return *this;
}

bool operator==(const ScopeExpr& a, const ScopeExpr& b) noexcept {
  if (a.kind() != b.kind() || a.site_name() != b.site_name()) {
    return false;
  }
  const ScopeExpr::Operands x = a.operands();
  const ScopeExpr::Operands y = b.operands();
  return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
}

std::string_view Scope::text(Span s) const noexcept {
  return std::string_view(source_).substr(s.offset, s.size);
}

Binding Scope::binding(std::size_t index) const noexcept {
  const BindingNode& b = bindings_[index];
  ResourcePattern resource{b.wildcard ? std::string_view("*") : text(b.plural), text(b.group)};
  return Binding{resource, ScopeExpr(this, b.root)};
}

bool operator==(const Scope& a, const Scope& b) noexcept {
  if (a.binding_count() != b.binding_count()) {
    return false;
  }
  for (std::size_t i = 0; i < a.binding_count(); ++i) {
    const Binding x = a.binding(i);
    const Binding y = b.binding(i);
    if (x.resource != y.resource || !(x.expr == y.expr)) {
      return false;
    }
  }
  return true;
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
  for (const ScopeExpr operand : e.operands()) {
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
  const Scope::Bindings bindings = scope.bindings();
  if (bindings.size() == 1 && bindings.front().resource.is_wildcard()) {
    return to_string(bindings.front().expr);
  }
  std::string out;
  for (const Binding b : bindings) {
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
