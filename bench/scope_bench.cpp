// Parse + evaluate of scope expressions, the work the proxy does on every scoped request.
// Target (issue #2): under 300 ns median each, one core. Run: scripts/bench-scope

#include "archipel/dsl/plan.hpp"
#include "archipel/dsl/scope.hpp"

#include <benchmark/benchmark.h>

namespace {

using namespace archipel::dsl;

const SiteView& view() {
  static const SiteView v("paris", {{"nantes", true}, {"rennes", true}});
  return v;
}

void parse_and_evaluate(benchmark::State& state, std::string_view text, std::string_view resource) {
  for (auto _ : state) {
    auto scope = parse_scope(text);
    auto plan = evaluate(*scope, view(), {resource, ""});
    benchmark::DoNotOptimize(plan);
  }
}

void parse_only(benchmark::State& state, std::string_view text) {
  for (auto _ : state) {
    auto scope = parse_scope(text);
    benchmark::DoNotOptimize(scope);
  }
}

// With the scope parsed once (what a proxy caching parsed scopes would pay per request).
void evaluate_only(benchmark::State& state, std::string_view text, std::string_view resource) {
  const Scope scope = *parse_scope(text);
  for (auto _ : state) {
    auto plan = evaluate(scope, view(), {resource, ""});
    benchmark::DoNotOptimize(plan);
  }
}

constexpr std::string_view kAndOr = "paris & (nantes | rennes)";
constexpr std::string_view kBindings = "pods: paris & nantes, configmaps: rennes | ., *: .";

BENCHMARK_CAPTURE(parse_and_evaluate, and_or, kAndOr, "pods");
BENCHMARK_CAPTURE(parse_and_evaluate, three_bindings, kBindings, "configmaps");
BENCHMARK_CAPTURE(parse_only, and_or, kAndOr);
BENCHMARK_CAPTURE(parse_only, three_bindings, kBindings);
BENCHMARK_CAPTURE(evaluate_only, and_or, kAndOr, "pods");
BENCHMARK_CAPTURE(evaluate_only, three_bindings, kBindings, "configmaps");

}  // namespace

BENCHMARK_MAIN();
