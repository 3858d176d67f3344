#pragma once

// Errors of the scope language: what went wrong, where, and how to show it to a user.

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

namespace boost {
struct source_location;
}

namespace archipel::dsl {

/// What kind of mistake a scope expression holds. Stable values: they appear in logs and metrics.
enum class errc {
  empty_expression = 1,    ///< nothing but whitespace
  too_long,                ///< over kMaxExpressionBytes (or kMaxRawBytes with whitespace)
  unexpected_character,    ///< a character no token starts with
  invalid_site_name,       ///< a word that is not a DNS-1123 label where a site is expected
  invalid_resource_name,   ///< a binding's resource is not a plural name (or '*')
  expected_site,           ///< a site name or '(' was expected
  expected_operator,       ///< '&', '|', ')' , ',' or the end was expected
  unbalanced_parenthesis,  ///< a '(' without ')' or a ')' without '('
  too_deep,                ///< parentheses nested deeper than kMaxNesting
  too_many_sites,          ///< more than kMaxSites site names
  duplicate_binding,       ///< the same resource bound twice
  expected_binding,        ///< after ',', another 'resource: expression' was expected
  unknown_site,            ///< evaluation: a site the receiving site does not know
  too_many_alternatives,   ///< evaluation: the plan would exceed kMaxAlternatives
};

/// The error category of `errc` ("archipel.scope"), so scope errors compose with error_code.
const boost::system::error_category& scope_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), scope_category()};
}

/// A scope error a user can act on: a sentence, the 1-based column (in characters) it points
/// at, and the expression it quotes. `render()` gives the multi-line form with a caret.
struct ScopeError {
  errc code{};
  std::string message;     ///< one sentence, ends with "at column N" when it has a position
  std::size_t column = 0;  ///< 1-based character column; 0 when the error has no position
  std::string expression;  ///< the expression as the user wrote it (truncated when very long)

  /// "message\n  expression\n  ^" (the caret under `column`). Control characters in the
  /// expression are shown as '?', so the caret stays aligned.
  [[nodiscard]] std::string render() const;
};

/// Lets boost::system::result<T, ScopeError>::value() throw on misuse (it is never used on a
/// request path: callers test the result first).
[[noreturn]] void throw_exception_from_error(const ScopeError& e,
                                             const boost::source_location& loc);

}  // namespace archipel::dsl

template <>
struct boost::system::is_error_code_enum<archipel::dsl::errc> : std::true_type {};
