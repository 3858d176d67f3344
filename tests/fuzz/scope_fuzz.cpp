// Fuzz target for the scope language: parsing any bytes must not crash, a parsed scope must print
// to a text that parses back to it, and evaluation must not crash either.

#include "archipel/dsl/plan.hpp"
#include "archipel/dsl/scope.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace archipel::dsl;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto scope = parse_scope(text);
  if (!scope) {
    const ScopeError& e = scope.error();
    if (e.message.empty() ||
        (e.column == 0 && e.code != errc::too_long && e.code != errc::empty_expression)) {
      std::abort();
    }
    (void)e.render();
    return 0;
  }
  auto again = parse_scope(to_string(*scope));
  if (!again || !(*again == *scope)) {
    std::abort();
  }
  static const SiteView view("paris", {{"nantes", true}, {"rennes", false}, {"lyon", true}});
  for (const Binding b : scope->bindings()) {
    auto plan = evaluate(*scope, view, {b.resource.plural, b.resource.group});
    if (plan && plan->alternatives.empty()) {
      std::abort();
    }
  }
  return 0;
}
