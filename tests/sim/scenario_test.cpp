// Simulation scenarios (sim/emulation/scenario.hpp): the shipped ones parse; every mistake is
// refused before a site starts, with the line it is on and what was expected.

#include "emulation/scenario.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace archipel::sim {
namespace {

namespace fs = std::filesystem;

boost::system::result<Scenario, ScenarioError> parse(const std::string& yaml) {
  return parse_scenario(yaml, "test.yaml");
}

// The error for `steps` (a YAML list) under a valid header.
ScenarioError step_error(const std::string& steps) {
  auto s = parse("name: t\nsites: [paris, nantes]\nsteps:\n" + steps);
  EXPECT_FALSE(s) << "accepted:\n" << steps;
  return s ? ScenarioError{} : s.error();
}

TEST(Scenario, TheShippedScenariosParse) {
  int count = 0;
  for (const auto& entry :
       fs::directory_iterator(fs::path(ARCHIPEL_SOURCE_DIR) / "sim/scenarios")) {
    if (entry.path().extension() != ".yaml") {
      continue;
    }
    auto s = load_scenario(entry.path());
    EXPECT_TRUE(s) << s.error().render();
    ++count;
  }
  EXPECT_GE(count, 3);
}

TEST(Scenario, ReadsSitesLinksAndSteps) {
  auto s = parse(R"(name: demo
sites: [paris, nantes, rennes]
links:
  latency: 5ms
  bandwidth: 100Mbit/s
  pairs:
    paris-rennes: {latency: 20ms}
failure_detector: {heartbeat: 50ms}
steps:
  - requests: {site: paris, scope: "paris & nantes", path: /api/v1/pods, count: 3}
  - name: cut it
    at: 2s
    cut: [paris, nantes]
  - stall: rennes
  - long: true
    converge: {object: configmaps/team-a/app, sites: [paris, nantes], within: 1500ms}
  - write:
      site: paris
      object: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}, data: {n: "3"}}
)");
  ASSERT_TRUE(s) << s.error().render();
  EXPECT_EQ(s->sites, (std::vector<std::string>{"paris", "nantes", "rennes"}));
  EXPECT_EQ(s->heartbeat, Millis(50));
  EXPECT_EQ(link_profile(*s, "nantes", "paris").latency, std::chrono::milliseconds(5));
  EXPECT_EQ(link_profile(*s, "rennes", "paris").latency, std::chrono::milliseconds(20));
  EXPECT_EQ(link_profile(*s, "rennes", "paris").bandwidth_bytes_per_second, 12'500'000U);
  ASSERT_EQ(s->steps.size(), 5U);
  const auto& requests = std::get<Requests>(s->steps[0].action);
  EXPECT_EQ(requests.count, 3U);
  EXPECT_EQ(requests.scope, "paris & nantes");
  EXPECT_EQ(s->steps[1].name, "cut it");
  EXPECT_EQ(s->steps[1].at, Millis(2000));
  EXPECT_EQ(std::get<LinkChange>(s->steps[1].action).pairs.size(), 1U);
  EXPECT_EQ(std::get<LinkChange>(s->steps[2].action).pairs.size(), 2U);  // every link of rennes
  EXPECT_TRUE(s->steps[3].long_only);
  const auto& converge = std::get<Converge>(s->steps[3].action);
  EXPECT_EQ(converge.object.path(), "/api/v1/namespaces/team-a/configmaps/app");
  EXPECT_EQ(converge.within, Millis(1500));
  EXPECT_EQ(s->steps[3].line, 15);
  const auto& write = std::get<Write>(s->steps[4].action);
  EXPECT_TRUE(write.object.at("data").at("n").is_string());  // quoted: a string
}

TEST(Scenario, AnUnknownActionIsNamedWithItsLine) {
  auto e = step_error("  - wait: 1s\n  - explode: paris\n");
  EXPECT_EQ(e.line, 5);
  EXPECT_NE(e.message.find("unknown action 'explode'"), std::string::npos) << e.message;
}

TEST(Scenario, AStepHasOneAction) {
  auto e = step_error("  - {cut: [paris, nantes], heal: [paris, nantes]}\n");
  EXPECT_NE(e.message.find("one action"), std::string::npos) << e.message;
}

TEST(Scenario, ASiteNotInTheScenarioIsRefused) {
  auto e = step_error("  - cut: [paris, lyon]\n");
  EXPECT_NE(e.message.find("'lyon' is not a site of the scenario"), std::string::npos) << e.message;
}

TEST(Scenario, ABadScopeIsRefusedWithItsColumn) {
  auto e =
      step_error("  - requests: {site: paris, scope: 'paris & & nantes', path: /api/v1/pods}\n");
  EXPECT_EQ(e.line, 4);
  EXPECT_NE(e.message.find("column"), std::string::npos) << e.message;
}

TEST(Scenario, ABadDurationIsRefused) {
  auto e = step_error("  - wait: soon\n");
  EXPECT_NE(e.message.find("invalid duration 'soon'"), std::string::npos) << e.message;
}

TEST(Scenario, AnUnknownKeyIsRefused) {
  auto e = step_error("  - migrate: {site: paris, pod: shop/cart, to: nantes, speed: fast}\n");
  EXPECT_NE(e.message.find("unknown key 'speed'"), std::string::npos) << e.message;
}

TEST(Scenario, ObjectsAndPodsAreNamedFully) {
  EXPECT_NE(step_error("  - absent: {object: configmaps/app, site: paris}\n")
                .message.find("RESOURCE/NAMESPACE/NAME"),
            std::string::npos);
  EXPECT_NE(step_error("  - running: {pod: cart, site: paris}\n").message.find("NAMESPACE/NAME"),
            std::string::npos);
  EXPECT_NE(step_error("  - write: {site: paris, object: {apiVersion: v1, kind: Widget}}\n")
                .message.find("not a kind the sites serve"),
            std::string::npos);
}

TEST(Scenario, AFileThatIsNotYamlIsAnError) {
  auto s = parse("name: [unclosed\n");
  ASSERT_FALSE(s);
  EXPECT_GT(s.error().line, 0);
  EXPECT_FALSE(parse("- a list\n"));
  EXPECT_FALSE(parse("name: t\nsites: [paris]\nsteps: [{wait: 1s}]\n"));  // one site
}

}  // namespace
}  // namespace archipel::sim
