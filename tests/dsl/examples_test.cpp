// Table-driven: every example in grammar/examples/ parses (or fails) exactly as written there.

#include "archipel/dsl/scope.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace archipel::dsl {
namespace {

struct Example {
  int line;
  std::string expression;
  std::string expected;
};

std::vector<Example> read_examples(const std::string& name) {
  std::ifstream in(std::string(ARCHIPEL_SOURCE_DIR) + "/grammar/examples/" + name);
  EXPECT_TRUE(in) << "cannot open grammar/examples/" << name;
  std::vector<Example> out;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.starts_with('#')) {
      continue;
    }
    const std::size_t arrow = text.rfind(" => ");
    if (arrow == std::string::npos) {
      ADD_FAILURE() << name << ":" << line << ": no ' => ' separator";
      continue;
    }
    out.push_back({line, text.substr(0, arrow), text.substr(arrow + 4)});
  }
  return out;
}

std::string errc_name(errc e) {
  static const std::map<errc, std::string> names = {
      {errc::empty_expression, "empty_expression"},
      {errc::too_long, "too_long"},
      {errc::unexpected_character, "unexpected_character"},
      {errc::invalid_site_name, "invalid_site_name"},
      {errc::invalid_resource_name, "invalid_resource_name"},
      {errc::expected_site, "expected_site"},
      {errc::expected_operator, "expected_operator"},
      {errc::unbalanced_parenthesis, "unbalanced_parenthesis"},
      {errc::too_deep, "too_deep"},
      {errc::too_many_sites, "too_many_sites"},
      {errc::duplicate_binding, "duplicate_binding"},
      {errc::expected_binding, "expected_binding"},
      {errc::unknown_site, "unknown_site"},
      {errc::too_many_alternatives, "too_many_alternatives"},
  };
  return names.at(e);
}

TEST(ScopeExamples, ValidExamplesParseToTheirCanonicalForm) {
  const auto examples = read_examples("valid.txt");
  ASSERT_GT(examples.size(), 20u);
  for (const Example& ex : examples) {
    auto scope = parse_scope(ex.expression);
    ASSERT_TRUE(scope) << "valid.txt:" << ex.line << ": " << scope.error().render();
    EXPECT_EQ(to_string(*scope), ex.expected) << "valid.txt:" << ex.line;
    auto again = parse_scope(to_string(*scope));
    ASSERT_TRUE(again) << "valid.txt:" << ex.line;
    EXPECT_EQ(*again, *scope) << "valid.txt:" << ex.line << ": canonical form reparses differently";
  }
}

TEST(ScopeExamples, InvalidExamplesFailWithTheirCodeAndColumn) {
  const auto examples = read_examples("invalid.txt");
  ASSERT_GT(examples.size(), 30u);
  for (const Example& ex : examples) {
    auto scope = parse_scope(ex.expression);
    ASSERT_FALSE(scope) << "invalid.txt:" << ex.line << ": '" << ex.expression << "' parsed";
    const ScopeError& e = scope.error();
    EXPECT_EQ(std::to_string(e.column) + " " + errc_name(e.code), ex.expected)
        << "invalid.txt:" << ex.line << ": " << e.render();
    EXPECT_EQ(e.expression, ex.expression);
    if (e.column > 0) {
      EXPECT_TRUE(e.message.ends_with(" at column " + std::to_string(e.column))) << e.message;
    }
  }
}

}  // namespace
}  // namespace archipel::dsl
