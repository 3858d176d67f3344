// Laws of the scope language over random inputs, with fixed seeds (failures are reproducible).

#include "archipel/dsl/plan.hpp"
#include "archipel/dsl/scope.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace archipel::dsl {
namespace {

const std::vector<std::string> kNames = {"paris", "nantes", "rennes", "lyon", "a", "edge-7", "x1"};

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  ScopeExpr expr(int depth) {
    const int choice = depth <= 0 ? pick(4) : pick(10);
    if (choice == 0) {
      return ScopeExpr::local();
    }
    if (choice < 4) {
      return ScopeExpr::site(kNames[pick(static_cast<int>(kNames.size()))]);
    }
    std::vector<ScopeExpr> operands;
    const int n = 2 + pick(3);
    for (int i = 0; i < n; ++i) {
      operands.push_back(expr(depth - 1));
    }
    return choice < 7 ? ScopeExpr::all_of(std::move(operands))
                      : ScopeExpr::any_of(std::move(operands));
  }

  Scope scope() {
    Scope s;
    if (pick(2) == 0) {
      s.bindings.push_back({{"*", ""}, expr(4)});
      return s;
    }
    const std::vector<ResourcePattern> resources = {
        {"pods", ""}, {"configmaps", ""}, {"deployments", "apps"}, {"deployments", ""}, {"*", ""}};
    for (const ResourcePattern& r : resources) {
      if (pick(2) == 0) {
        s.bindings.push_back({r, expr(3)});
      }
    }
    if (s.bindings.empty()) {
      s.bindings.push_back({resources[0], expr(3)});
    }
    return s;
  }

  // A string of tokens and junk, mostly almost-valid.
  std::string soup() {
    static const std::vector<std::string> pieces = {
        "paris", "nantes", ".",    "&",     "|", "(", ")",  ":",    ",",
        "*",     " ",      "pods", "Paris", "-", "é", "\t", "\x01", "deployments.apps",
        "",      "&&",     "(("};
    std::string out;
    const int n = pick(24);
    for (int i = 0; i < n; ++i) {
      out += pieces[pick(static_cast<int>(pieces.size()))];
    }
    return out;
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  std::mt19937_64 rng_;
};

TEST(ScopeProperty, ParseOfPrintIsIdentityOverRandomScopes) {
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    Generator gen(seed);
    const Scope scope = gen.scope();
    const std::string text = to_string(scope);
    auto parsed = parse_scope(text);
    ASSERT_TRUE(parsed) << "seed " << seed << ": " << parsed.error().render();
    ASSERT_EQ(*parsed, scope) << "seed " << seed << ": " << text;
    ASSERT_EQ(to_string(*parsed), text) << "seed " << seed;
  }
}

TEST(ScopeProperty, RandomInputEitherParsesToAFixpointOrFailsWithAColumnInside) {
  std::size_t valid = 0;
  for (std::uint64_t seed = 0; seed < 20000; ++seed) {
    Generator gen(seed);
    const std::string text = gen.soup();
    auto parsed = parse_scope(text);
    if (parsed) {
      ++valid;
      const std::string canonical = to_string(*parsed);
      auto again = parse_scope(canonical);
      ASSERT_TRUE(again) << "seed " << seed << ": " << canonical;
      ASSERT_EQ(*again, *parsed) << "seed " << seed;
    } else {
      const ScopeError& e = parsed.error();
      if (e.code != errc::empty_expression) {
        ASSERT_GE(e.column, 1u) << "seed " << seed << ": " << text;
      }
      ASSERT_LE(e.column, text.size() + 1) << "seed " << seed << ": " << text;
      ASSERT_FALSE(e.message.empty());
    }
  }
  EXPECT_GT(valid, 100u);  // the generator does reach valid scopes
}

TEST(ScopeProperty, EvaluationNeverYieldsAnEmptyPlanOrEmptyAlternative) {
  const SiteView view("paris", {{"nantes", true},
                                {"rennes", false},
                                {"lyon", true},
                                {"a", true},
                                {"edge-7", true},
                                {"x1", true}});
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    Generator gen(seed);
    const Scope scope = gen.scope();
    for (const char* resource : {"pods", "configmaps", "deployments", "secrets"}) {
      auto plan = evaluate(scope, view, {resource, "apps"});
      if (!plan) {
        ASSERT_EQ(plan.error().code, errc::too_many_alternatives) << plan.error().render();
        continue;
      }
      ASSERT_FALSE(plan->alternatives.empty());
      for (const Alternative& alt : plan->alternatives) {
        ASSERT_FALSE(alt.sites.empty());
      }
    }
  }
}

}  // namespace
}  // namespace archipel::dsl
