#include "archipel/dsl/error.hpp"

#include <boost/assert/source_location.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>
#include <string>

namespace archipel::dsl {
namespace {

class ScopeCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "archipel.scope"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::empty_expression: return "empty scope expression";
      case errc::too_long: return "scope expression too long";
      case errc::unexpected_character: return "unexpected character";
      case errc::invalid_site_name: return "invalid site name";
      case errc::invalid_resource_name: return "invalid resource name";
      case errc::expected_site: return "expected a site name or '('";
      case errc::expected_operator: return "expected an operator";
      case errc::unbalanced_parenthesis: return "unbalanced parenthesis";
      case errc::too_deep: return "parentheses nested too deep";
      case errc::too_many_sites: return "too many site names";
      case errc::duplicate_binding: return "resource bound twice";
      case errc::expected_binding: return "expected 'resource: expression'";
      case errc::unknown_site: return "unknown site";
      case errc::too_many_alternatives: return "too many alternatives";
    }
    return "unknown scope error";
  }
};

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Bytes of the code points [first, last) of `text` (1-based, last exclusive).
std::string code_points(const std::string& text, std::size_t first, std::size_t last) {
  std::string out;
  std::size_t index = 0;
  for (char c : text) {
    if (!is_continuation(c)) {
      ++index;
    }
    if (index >= first && index < last) {
      out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
    }
  }
  return out;
}

}  // namespace

const boost::system::error_category& scope_category() noexcept {
  static const ScopeCategory category;
  return category;
}

std::string ScopeError::render() const {
  constexpr std::size_t kWindow = 100;  // code points shown around the fault
  std::string out = message;
  if (expression.empty()) {
    return out;
  }
  std::size_t length = 0;
  for (char c : expression) {
    length += is_continuation(c) ? 0 : 1;
  }
  std::size_t first = 1;
  if (length > kWindow && column > kWindow / 2) {
    first = column - kWindow / 2;
  }
  const std::size_t last = first + kWindow;
  out += "\n  ";
  if (first > 1) {
    out += "...";
  }
  out += code_points(expression, first, last);
  if (last <= length) {
    out += "...";
  }
  if (column > 0) {
    out += "\n  ";
    out.append((first > 1 ? 3 : 0) + (column - first), ' ');
    out += '^';
  }
  return out;
}

void throw_exception_from_error(const ScopeError& e, const boost::source_location& loc) {
  boost::throw_exception(std::invalid_argument(e.message), loc);
}

}  // namespace archipel::dsl
