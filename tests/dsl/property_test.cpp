// Laws of the scope language over random inputs, with fixed seeds (failures are reproducible).

#include "archipel/dsl/plan.hpp"
#include "archipel/dsl/scope.hpp"
#include "tree.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace archipel::dsl {
namespace {

const std::vector<std::string> kNames = {"paris", "nantes", "rennes", "lyon", "a", "edge-7", "x1"};

// An expression tree built by the test, independently of the parser.
struct Tree {
  char op = 0;       // '&', '|', or 0 for a site ("." is the receiving site)
  std::string name;  // sites
  std::vector<Tree> operands;
};

std::string expected_tree(const Tree& t);

// The normalised s-expression the parser must produce for `t`: operators of one kind nested in
// each other are one operator (associativity), order is kept.
void flatten_into(const Tree& t, char op, std::string& out) {
  for (const Tree& o : t.operands) {
    if (o.op == op) {
      flatten_into(o, op, out);
    } else {
      out += ' ';
      out += expected_tree(o);
    }
  }
}

std::string expected_tree(const Tree& t) {
  if (t.op == 0) {
    return t.name;
  }
  std::string out = t.op == '&' ? "(&" : "(|";
  flatten_into(t, t.op, out);
  return out + ')';
}

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  Tree tree(int depth) {
    const int choice = depth <= 0 ? pick(4) : pick(10);
    if (choice == 0) {
      return Tree{0, ".", {}};
    }
    if (choice < 4) {
      return Tree{0, kNames[pick(static_cast<int>(kNames.size()))], {}};
    }
    Tree t{choice < 7 ? '&' : '|', "", {}};
    const int n = 2 + pick(3);
    for (int i = 0; i < n; ++i) {
      t.operands.push_back(tree(depth - 1));
    }
    return t;
  }

  // `t` as text: every operator operand parenthesised (so the text means `t` whatever the
  // precedence), sometimes with redundant parentheses, random blanks between tokens.
  std::string text(const Tree& t) {
    std::string out;
    write(t, out);
    return out;
  }

  // A random scope as text, with the trees of its bindings (in order).
  std::pair<std::string, std::vector<std::string>> scope() {
    if (pick(2) == 0) {
      const Tree t = tree(4);
      return {text(t), {expected_tree(t)}};
    }
    std::string out;
    std::vector<std::string> trees;
    for (const char* resource : {"pods", "configmaps", "deployments.apps", "deployments", "*"}) {
      if (pick(2) == 0 || (trees.empty() && std::string_view(resource) == "*")) {
        const Tree t = tree(3);
        out += out.empty() ? "" : "," + blank();
        out += resource + blank() + ":" + blank() + text(t);
        trees.push_back(expected_tree(t));
      }
    }
    return {out, trees};
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
  std::string blank() { return pick(3) == 0 ? " " : ""; }

  void write(const Tree& t, std::string& out) {
    const bool extra = pick(8) == 0;
    out += extra ? "(" + blank() : "";
    if (t.op == 0) {
      out += t.name;
    } else {
      for (std::size_t i = 0; i < t.operands.size(); ++i) {
        if (i > 0) {
          out += blank() + t.op + blank();
        }
        const bool parens = t.operands[i].op != 0;
        out += parens ? "(" : "";
        write(t.operands[i], out);
        out += parens ? ")" : "";
      }
    }
    out += extra ? blank() + ")" : "";
  }

  std::mt19937_64 rng_;
};

TEST(ScopeProperty, ParsesRandomTreesAndParseOfPrintIsIdentity) {
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    Generator gen(seed);
    const auto [text, trees] = gen.scope();
    auto parsed = parse_scope(text);
    ASSERT_TRUE(parsed) << "seed " << seed << ": " << text << "\n" << parsed.error().render();
    ASSERT_EQ(parsed->binding_count(), trees.size()) << "seed " << seed << ": " << text;
    for (std::size_t i = 0; i < trees.size(); ++i) {
      ASSERT_EQ(test::tree(parsed->binding(i).expr), trees[i]) << "seed " << seed << ": " << text;
    }
    const std::string canonical = to_string(*parsed);
    auto again = parse_scope(canonical);
    ASSERT_TRUE(again) << "seed " << seed << ": " << again.error().render();
    ASSERT_EQ(*again, *parsed) << "seed " << seed << ": " << canonical;
    ASSERT_EQ(to_string(*again), canonical) << "seed " << seed;
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
    auto scope = parse_scope(gen.scope().first);
    ASSERT_TRUE(scope) << "seed " << seed;
    for (const char* resource : {"pods", "configmaps", "deployments", "secrets"}) {
      auto plan = evaluate(*scope, view, {resource, "apps"});
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
