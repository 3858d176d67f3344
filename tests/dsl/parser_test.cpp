#include "archipel/dsl/scope.hpp"
#include "tree.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace archipel::dsl {
namespace {

using test::tree;

Scope parse_ok(std::string_view text) {
  auto scope = parse_scope(text);
  EXPECT_TRUE(scope) << scope.error().render();
  return scope ? *scope : Scope();
}

// The tree of a bare expression.
std::string tree(std::string_view text) {
  const Scope scope = parse_ok(text);
  EXPECT_EQ(scope.binding_count(), 1u);
  if (scope.binding_count() != 1) {
    return "";
  }
  EXPECT_TRUE(scope.binding(0).resource.is_wildcard());
  return tree(scope.binding(0).expr);
}

std::vector<ScopeExpr> operands(const ScopeExpr& e) {
  return {e.operands().begin(), e.operands().end()};
}

ScopeError parse_error(std::string_view text) {
  auto scope = parse_scope(text);
  EXPECT_FALSE(scope) << "parsed: " << text;
  return scope ? ScopeError{} : scope.error();
}

TEST(ScopeParser, AndBindsTighterThanOr) {
  EXPECT_EQ(tree("a | b & c"), "(| a (& b c))");
  EXPECT_EQ(tree("a & b | c"), "(| (& a b) c)");
}

TEST(ScopeParser, ParenthesesOverridePrecedence) {
  EXPECT_EQ(tree("(a | b) & c"), "(& (| a b) c)");
}

TEST(ScopeParser, ChainsOfOneOperatorAreFlatAndKeepTheirOrder) {
  const Scope scope = parse_ok("c & a & b");
  const ScopeExpr e = scope.binding(0).expr;
  ASSERT_EQ(e.kind(), ScopeExpr::Kind::kAllOf);
  ASSERT_EQ(e.operands().size(), 3u);
  EXPECT_EQ(operands(e)[0].site_name(), "c");
  EXPECT_EQ(operands(e)[1].site_name(), "a");
  EXPECT_EQ(operands(e)[2].site_name(), "b");
  EXPECT_EQ(tree("(a | b) | c"), "(| a b c)");
  EXPECT_EQ(tree("a | (b | c)"), "(| a b c)");
  EXPECT_EQ(tree("(a & b) & c"), "(& a b c)");
  EXPECT_EQ(tree("a & ((b & c) & d) & e"), "(& a b c d e)");
  EXPECT_EQ(parse_ok("(a & b) & c"), parse_ok("a & (b & c)"));
}

TEST(ScopeParser, OrderOfAlternativesIsSignificant) {
  EXPECT_NE(parse_ok("a | b"), parse_ok("b | a"));
}

TEST(ScopeParser, DotIsTheReceivingSite) {
  EXPECT_EQ(parse_ok(".").binding(0).expr.kind(), ScopeExpr::Kind::kLocal);
  EXPECT_EQ(tree("paris & ."), "(& paris .)");
}

TEST(ScopeParser, RecordsSiteColumns) {
  const Scope scope = parse_ok("paris & (nantes | rennes)");
  const ScopeExpr e = scope.binding(0).expr;
  EXPECT_EQ(operands(e)[0].column(), 1u);
  EXPECT_EQ(operands(operands(e)[1])[0].column(), 10u);
  EXPECT_EQ(operands(operands(e)[1])[1].column(), 19u);
}

TEST(ScopeParser, BareExpressionIsTheWildcardBinding) {
  auto a = parse_scope("paris");
  auto b = parse_scope("*: paris");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(to_string(*b), "paris");
}

TEST(ScopeParser, BindingsKeepResourceAndGroup) {
  auto s = parse_scope("deployments.apps: paris, pods: nantes | ., *: rennes");
  ASSERT_TRUE(s) << s.error().render();
  ASSERT_EQ(s->binding_count(), 3u);
  EXPECT_EQ(s->binding(0).resource, (ResourcePattern{"deployments", "apps"}));
  EXPECT_EQ(s->binding(1).resource, (ResourcePattern{"pods", ""}));
  EXPECT_TRUE(s->binding(2).resource.is_wildcard());
  EXPECT_EQ(tree(s->binding(1).expr), "(| nantes .)");
  EXPECT_EQ(tree(s->binding(2).expr), "rennes");
}

TEST(ScopeParser, KeepsSourceText) {
  auto s = parse_scope("  paris&nantes");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->source(), "  paris&nantes");
}

TEST(ScopeParser, RejectsDanglingAndWithCaretUnderTheFault) {
  const ScopeError e = parse_error("paris & & nantes");
  EXPECT_EQ(e.code, errc::expected_site);
  EXPECT_EQ(e.message, "expected a site name or '(' after '&' at column 9");
  EXPECT_EQ(e.render(),
            "expected a site name or '(' after '&' at column 9\n"
            "  paris & & nantes\n"
            "          ^");
}

TEST(ScopeParser, RejectsTrailingOperatorAtTheEnd) {
  const ScopeError e = parse_error("paris |");
  EXPECT_EQ(e.message, "expected a site name or '(' after '|' at column 8");
}

TEST(ScopeParser, RejectsMissingOperatorNamingBothSides) {
  EXPECT_EQ(parse_error("paris nantes").message,
            "expected '&' or '|' between 'paris' and 'nantes' at column 7");
}

TEST(ScopeParser, RejectsUnclosedParenthesisPointingAtTheEnd) {
  const ScopeError e = parse_error("(paris & nantes");
  EXPECT_EQ(e.code, errc::unbalanced_parenthesis);
  EXPECT_EQ(e.message, "missing ')' (opened at column 1) at column 16");
}

TEST(ScopeParser, RejectsStrayClosingParenthesis) {
  EXPECT_EQ(parse_error("paris)").message, "')' without a matching '(' at column 6");
}

TEST(ScopeParser, RejectsEmptyParentheses) {
  EXPECT_EQ(parse_error("()").message, "empty parentheses at column 2");
}

TEST(ScopeParser, RejectsCommaInBareExpressionWithAHint) {
  const ScopeError e = parse_error("paris, nantes");
  EXPECT_EQ(e.code, errc::expected_operator);
  EXPECT_NE(e.message.find("use '&'"), std::string::npos) << e.message;
}

TEST(ScopeParser, RejectsUppercaseSiteNames) {
  const ScopeError e = parse_error("paris & Nantes");
  EXPECT_EQ(e.code, errc::invalid_site_name);
  EXPECT_EQ(e.column, 9u);
  EXPECT_NE(e.message.find("'Nantes'"), std::string::npos);
}

TEST(ScopeParser, RejectsControlCharactersShowingThemEscaped) {
  const ScopeError e = parse_error(std::string_view("paris &\x01 nantes", 15));
  EXPECT_EQ(e.code, errc::unexpected_character);
  EXPECT_EQ(e.column, 8u);
  EXPECT_NE(e.message.find("'\\x01'"), std::string::npos) << e.message;
  EXPECT_EQ(e.render().find('\x01'), std::string::npos);
}

TEST(ScopeParser, RejectsNulByte) {
  const ScopeError e = parse_error(std::string_view("paris\0", 6));
  EXPECT_EQ(e.code, errc::unexpected_character);
  EXPECT_EQ(e.column, 6u);
}

TEST(ScopeParser, CountsColumnsInCharactersNotBytes) {
  const ScopeError e = parse_error("été & &");
  EXPECT_EQ(e.code, errc::unexpected_character);
  EXPECT_EQ(e.column, 1u);
  const ScopeError f = parse_error("a & é");
  EXPECT_EQ(f.column, 5u);
  EXPECT_EQ(f.render(), f.message + "\n  a & é\n      ^");
}

TEST(ScopeParser, RejectsEmptyExpression) {
  EXPECT_EQ(parse_error("").code, errc::empty_expression);
  EXPECT_EQ(parse_error(" \t ").code, errc::empty_expression);
}

TEST(ScopeParser, RejectsDuplicateBindingNamingTheFirst) {
  const ScopeError e = parse_error("pods: paris, configmaps: ., pods: nantes");
  EXPECT_EQ(e.code, errc::duplicate_binding);
  EXPECT_EQ(e.message, "resource 'pods' is bound twice (first at column 1) at column 29");
}

TEST(ScopeParser, SameResourceInAnotherGroupIsADifferentBinding) {
  EXPECT_TRUE(parse_scope("deployments: paris, deployments.apps: nantes"));
}

TEST(ScopeParser, RejectsExpressionOverTheLengthLimit) {
  std::string text = "paris";
  while (text.size() <= kMaxExpressionBytes) {
    text += "|paris";
  }
  const ScopeError e = parse_error(text);
  EXPECT_EQ(e.code, errc::too_long);
  EXPECT_NE(e.message.find("limits are 4096"), std::string::npos) << e.message;
}

TEST(ScopeParser, WhitespaceDoesNotCountTowardsTheLengthLimitUpToTheRawLimit) {
  std::string text = "paris";
  text += std::string(kMaxExpressionBytes, ' ');
  EXPECT_TRUE(parse_scope(text));
  text += std::string(kMaxRawBytes, '\t');
  EXPECT_EQ(parse_error(text).code, errc::too_long);
}

// Found by the fuzzer: the canonical form adds spaces, so a scope near the limit printed to
// more than 4096 bytes and no longer parsed.
TEST(ScopeParser, CanonicalFormOfTheLongestScopeParsesAgain) {
  std::string text;
  for (std::size_t i = 0; i < kMaxSites; ++i) {
    std::string name = "site" + std::to_string(i);
    name.resize(15, 'x');
    text += (i ? "&" : "") + name;
  }
  ASSERT_LE(text.size(), kMaxExpressionBytes);
  auto scope = parse_scope(text);
  ASSERT_TRUE(scope) << scope.error().message;
  const std::string canonical = to_string(*scope);
  EXPECT_GT(canonical.size(), kMaxExpressionBytes);
  auto again = parse_scope(canonical);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *scope);
}

TEST(ScopeParser, AcceptsNestingUpToTheLimit) {
  const std::string text = std::string(kMaxNesting, '(') + "paris" + std::string(kMaxNesting, ')');
  EXPECT_EQ(tree(text), "paris");
}

TEST(ScopeParser, RejectsNestingBeyondTheLimitWithoutRecursingFurther) {
  const std::string text =
      std::string(kMaxNesting + 1, '(') + "paris" + std::string(kMaxNesting + 1, ')');
  const ScopeError e = parse_error(text);
  EXPECT_EQ(e.code, errc::too_deep);
  EXPECT_EQ(e.column, kMaxNesting + 1);
  // Far deeper input, still within the byte limit, fails the same way.
  EXPECT_EQ(parse_error(std::string(4000, '(')).code, errc::too_deep);
}

TEST(ScopeParser, RejectsMoreSitesThanTheLimit) {
  std::string text = "s0";
  for (std::size_t i = 1; i < kMaxSites; ++i) {
    text += "&s" + std::to_string(i);
  }
  EXPECT_TRUE(parse_scope(text));
  text += "&.";
  const ScopeError e = parse_error(text);
  EXPECT_EQ(e.code, errc::too_many_sites);
  EXPECT_EQ(e.column, text.size());
}

TEST(ScopeParser, RenderShowsAWindowOfLongExpressions) {
  std::string text = "paris";
  for (int i = 0; i < 100; ++i) {
    text += " & paris";
  }
  text += " &";
  const ScopeError e = parse_error(text);
  const std::string rendered = e.render();
  const std::size_t caret_line = rendered.rfind('\n');
  const std::size_t text_line = rendered.rfind('\n', caret_line - 1);
  const std::string shown = rendered.substr(text_line + 1, caret_line - text_line - 1);
  const std::string caret = rendered.substr(caret_line + 1);
  EXPECT_LT(shown.size(), 120u);
  ASSERT_EQ(caret.back(), '^');
  EXPECT_EQ(caret.size(), shown.size() + 1) << rendered;  // the caret sits just past the end
}

TEST(ScopeErrorCode, ConvertsToErrorCodeWithItsCategory) {
  boost::system::error_code ec = errc::unknown_site;
  EXPECT_EQ(ec.category().name(), std::string("archipel.scope"));
  EXPECT_EQ(ec.message(), "unknown site");
}

TEST(ScopePrinter, PrintsOnlyTheParenthesesPrecedenceNeeds) {
  EXPECT_EQ(to_string(parse_ok("((a & b)) | ((c))")), "a & b | c");
  EXPECT_EQ(to_string(parse_ok("a & (b | c) & d")), "a & (b | c) & d");
}

TEST(ScopeLabel, AcceptsDns1123LabelsOnly) {
  EXPECT_TRUE(is_dns1123_label("a"));
  EXPECT_TRUE(is_dns1123_label("edge-01"));
  EXPECT_TRUE(is_dns1123_label(std::string(63, 'a')));
  EXPECT_FALSE(is_dns1123_label(std::string(64, 'a')));
  EXPECT_FALSE(is_dns1123_label(""));
  EXPECT_FALSE(is_dns1123_label("-a"));
  EXPECT_FALSE(is_dns1123_label("a-"));
  EXPECT_FALSE(is_dns1123_label("A"));
  EXPECT_FALSE(is_dns1123_label("a.b"));
}

}  // namespace
}  // namespace archipel::dsl
