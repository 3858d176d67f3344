// Studies at scale (sim/simgrid/study.hpp): the shipped ones parse; mistakes are refused with
// their line before any simulation runs.

#include "simgrid/study.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace archipel::sim {
namespace {

namespace fs = std::filesystem;

StudyError error_of(const std::string& yaml) {
  auto s = parse_study(yaml, "study.yaml");
  EXPECT_FALSE(s) << "accepted:\n" << yaml;
  return s ? StudyError{} : s.error();
}

TEST(Study, TheShippedStudiesParse) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(ARCHIPEL_SOURCE_DIR) / "sim/studies")) {
    auto s = load_study(entry.path());
    EXPECT_TRUE(s) << s.error().render();
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(Study, ReadsAConvergenceStudyWithItsPartition) {
  auto s = parse_study(R"(name: c
kind: convergence
seed: 9
sites: [16, 64]
degrees: [4]
access_latency: [1ms, 3ms]
bandwidth: 10MB/s
partition: {fraction: 0.25, at: 2s, for: 4s}
checks:
  - {resync_p99_below: 1500ms, bytes_flat_within: 0.1}
)",
                       "c.yaml");
  ASSERT_TRUE(s) << s.error().render();
  EXPECT_EQ(s->seed, 9U);
  const auto& c = std::get<ConvergenceStudy>(s->kind);
  EXPECT_EQ(c.sites, (std::vector<unsigned>{16, 64}));
  EXPECT_DOUBLE_EQ(c.access_latency_max.count(), 0.003);
  EXPECT_DOUBLE_EQ(c.bandwidth_bytes_per_second, 10e6);
  ASSERT_TRUE(c.partition);
  EXPECT_DOUBLE_EQ(c.partition->fraction, 0.25);
  EXPECT_DOUBLE_EQ(c.partition->length.count(), 4);
  ASSERT_EQ(c.checks.size(), 1U);
  EXPECT_DOUBLE_EQ(c.checks[0].resync_p99_below->count(), 1.5);
}

TEST(Study, MistakesAreRefusedWithTheirLine) {
  auto e = error_of("name: x\nkind: detection\nheartbeats: [100ms]\njitters: [soon]\n");
  EXPECT_EQ(e.line, 4);
  EXPECT_NE(e.message.find("invalid duration 'soon'"), std::string::npos) << e.message;

  e = error_of("name: x\nkind: convergence\nsites: [4]\ndegrees: [8]\n");
  EXPECT_NE(e.message.find("cannot share in a federation of 4"), std::string::npos) << e.message;

  e = error_of("name: x\nkind: convergence\nsites: [8]\ndegrees: [2]\npartition: {fraction: 1}\n");
  EXPECT_NE(e.message.find("partition.fraction"), std::string::npos) << e.message;

  e = error_of(
      "name: x\nkind: convergence\nsites: [8]\ndegrees: [2]\nchecks: [{resync_p99_below: 1s}]\n");
  EXPECT_NE(e.message.find("no partition"), std::string::npos) << e.message;

  e = error_of(
      "name: x\nkind: detection\nheartbeats: [100ms]\njitters: [0ms]\n"
      "checks: [{heartbeat: 200ms, jitter: 0ms, detection_below: 1s}]\n");
  EXPECT_NE(e.message.find("not among the study's"), std::string::npos) << e.message;

  e = error_of("name: x\nkind: chaos\n");
  EXPECT_NE(e.message.find("expected detection or convergence"), std::string::npos) << e.message;

  e = error_of("name: x\nkind: detection\nheartbeats: [100ms]\njitters: [0ms]\nspeed: 3\n");
  EXPECT_NE(e.message.find("unknown key 'speed'"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace archipel::sim
