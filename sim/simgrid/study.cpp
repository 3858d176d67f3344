#include "simgrid/study.hpp"

#include "archipel/netem/units.hpp"
#include "yaml_fields.hpp"

#include <fstream>
#include <sstream>

namespace archipel::sim {
namespace {

using namespace yaml_fields;

Seconds seconds(const YAML::Node& n, const std::string& what) {
  return std::chrono::duration_cast<Seconds>(fine_duration(n, what));
}

std::vector<Seconds> seconds_list(const YAML::Node& n, const std::string& what) {
  if (!n.IsSequence() || n.size() == 0) {
    fail(n.IsDefined() ? n : YAML::Node(), what + ": expected a list of durations");
  }
  std::vector<Seconds> out;
  for (const auto& item : n) {
    out.push_back(seconds(item, what + "[]"));
  }
  return out;
}

std::vector<unsigned> number_list(const YAML::Node& n, const std::string& what, unsigned min,
                                  unsigned max) {
  if (!n.IsSequence() || n.size() == 0) {
    fail(n.IsDefined() ? n : YAML::Node(), what + ": expected a list of whole numbers");
  }
  std::vector<unsigned> out;
  for (const auto& item : n) {
    out.push_back(number(item, what + "[]", min, max));
  }
  return out;
}

DetectionStudy detection(const YAML::Node& root) {
  DetectionStudy d;
  d.heartbeats = seconds_list(root["heartbeats"], "heartbeats");
  for (Seconds h : d.heartbeats) {
    if (h < Seconds(0.005) || h > Seconds(60)) {
      fail(root["heartbeats"], "heartbeats: from 5ms to 60s");
    }
  }
  d.jitters = seconds_list(root["jitters"], "jitters");
  if (root["latency"].IsDefined()) {
    d.latency = seconds(root["latency"], "latency");
  }
  if (root["observe"].IsDefined()) {
    d.observe = seconds(root["observe"], "observe");
  }
  if (root["runs"].IsDefined()) {
    d.runs = number(root["runs"], "runs", 1, 1000);
  }
  if (const YAML::Node checks = root["checks"]; checks.IsDefined()) {
    if (!checks.IsSequence()) {
      fail(checks, "checks: expected a list");
    }
    for (const auto& c : checks) {
      only_keys(c, "checks[]", {"heartbeat", "jitter", "detection_below", "false_down_at_most"});
      DetectionStudy::Check check{seconds(c["heartbeat"], "checks[].heartbeat"),
                                  seconds(c["jitter"], "checks[].jitter")};
      if (std::find(d.heartbeats.begin(), d.heartbeats.end(), check.heartbeat) ==
              d.heartbeats.end() ||
          std::find(d.jitters.begin(), d.jitters.end(), check.jitter) == d.jitters.end()) {
        fail(c, "checks[]: this heartbeat and jitter are not among the study's");
      }
      if (c["detection_below"].IsDefined()) {
        check.detection_below = seconds(c["detection_below"], "checks[].detection_below");
      }
      if (c["false_down_at_most"].IsDefined()) {
        check.false_down_at_most =
            number(c["false_down_at_most"], "checks[].false_down_at_most", 0, 1'000'000);
      }
      d.checks.push_back(check);
    }
  }
  return d;
}

ConvergenceStudy convergence(const YAML::Node& root, const std::filesystem::path& file) {
  ConvergenceStudy c;
  if (root["platform"].IsDefined()) {
    if (root["sites"].IsDefined() || root["access_latency"].IsDefined() ||
        root["bandwidth"].IsDefined()) {
      fail(root["platform"],
           "platform: the platform file gives the sites and their links "
           "(no sites, access_latency or bandwidth with it)");
    }
    c.platform = file.parent_path() / scalar(root["platform"], "platform");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(c.platform, ec)) {
      fail(root["platform"], "platform: no file " + c.platform.string());
    }
    c.sites = {0};  // as many as the platform has hosts
  } else {
    c.sites = number_list(root["sites"], "sites", 2, 100'000);
  }
  c.degrees = number_list(root["degrees"], "degrees", 2, 1000);
  for (unsigned n : c.sites) {
    for (unsigned k : c.degrees) {
      if (n != 0 && k > n) {
        fail(root["degrees"], "degrees: " + std::to_string(k) + " sites cannot share in a " +
                                  "federation of " + std::to_string(n));
      }
    }
  }
  if (root["groups_per_site"].IsDefined()) {
    c.groups_per_site = number(root["groups_per_site"], "groups_per_site", 1, 100);
  }
  if (root["edits_per_site"].IsDefined()) {
    c.edits_per_site = number(root["edits_per_site"], "edits_per_site", 1, 10'000);
  }
  if (root["duration"].IsDefined()) {
    c.duration = seconds(root["duration"], "duration");
  }
  if (root["drain"].IsDefined()) {
    c.drain = seconds(root["drain"], "drain");
  }
  if (const YAML::Node access = root["access_latency"]; access.IsDefined()) {
    if (!access.IsSequence() || access.size() != 2) {
      fail(access, "access_latency: expected [min, max]");
    }
    c.access_latency_min = seconds(access[0], "access_latency[0]");
    c.access_latency_max = seconds(access[1], "access_latency[1]");
    if (c.access_latency_max < c.access_latency_min) {
      fail(access, "access_latency: the maximum is below the minimum");
    }
  }
  if (root["bandwidth"].IsDefined()) {
    auto b = netem::parse_bandwidth(scalar(root["bandwidth"], "bandwidth"));
    if (!b || *b == 0) {
      fail(root["bandwidth"], "bandwidth: " + (b ? std::string("must not be 0") : b.error()));
    }
    c.bandwidth_bytes_per_second = static_cast<double>(*b);
  }
  if (const YAML::Node p = root["partition"]; p.IsDefined()) {
    only_keys(p, "partition", {"fraction", "at", "for"});
    ConvergenceStudy::Partition partition;
    if (p["fraction"].IsDefined()) {
      partition.fraction = real(p["fraction"], "partition.fraction");
      if (partition.fraction <= 0 || partition.fraction >= 1) {
        fail(p["fraction"], "partition.fraction: expected a share of the sites, above 0, below 1");
      }
    }
    if (p["at"].IsDefined()) {
      partition.at = seconds(p["at"], "partition.at");
    }
    if (p["for"].IsDefined()) {
      partition.length = seconds(p["for"], "partition.for");
    }
    c.partition = partition;
  }
  if (const YAML::Node checks = root["checks"]; checks.IsDefined()) {
    if (!checks.IsSequence()) {
      fail(checks, "checks: expected a list");
    }
    for (const auto& item : checks) {
      only_keys(
          item, "checks[]",
          {"converge_p99_below", "bytes_flat_within", "state_flat_within", "resync_p99_below"});
      ConvergenceStudy::Check check;
      if (item["converge_p99_below"].IsDefined()) {
        check.converge_p99_below =
            seconds(item["converge_p99_below"], "checks[].converge_p99_below");
      }
      if (item["bytes_flat_within"].IsDefined()) {
        check.bytes_flat_within = real(item["bytes_flat_within"], "checks[].bytes_flat_within");
      }
      if (item["resync_p99_below"].IsDefined()) {
        if (!c.partition) {
          fail(item["resync_p99_below"], "checks[].resync_p99_below: the study has no partition");
        }
        check.resync_p99_below = seconds(item["resync_p99_below"], "checks[].resync_p99_below");
      }
      if (item["state_flat_within"].IsDefined()) {
        check.state_flat_within = real(item["state_flat_within"], "checks[].state_flat_within");
      }
      c.checks.push_back(check);
    }
  }
  return c;
}

}  // namespace

std::string StudyError::render() const {
  return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
}

boost::system::result<Study, StudyError> parse_study(std::string_view yaml,
                                                     const std::filesystem::path& file) {
  Study s;
  s.source = file;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      return StudyError{file.string(), 0, "expected a map (name, kind, …)"};
    }
    s.name = scalar(root["name"], "name");
    s.description = optional_scalar(root, "description", "");
    if (root["seed"].IsDefined()) {
      s.seed = number(root["seed"], "seed", 0, 4'000'000'000U);
    }
    const std::string kind = scalar(root["kind"], "kind");
    if (kind == "detection") {
      only_keys(root, "a detection study",
                {"name", "description", "kind", "seed", "heartbeats", "jitters", "latency",
                 "observe", "runs", "checks"});
      s.kind = detection(root);
    } else if (kind == "convergence") {
      only_keys(root, "a convergence study",
                {"name", "description", "kind", "seed", "platform", "sites", "degrees",
                 "groups_per_site", "edits_per_site", "duration", "drain", "access_latency",
                 "bandwidth", "partition", "checks"});
      s.kind = convergence(root, file);
    } else {
      fail(root["kind"], "kind: expected detection or convergence, got '" + kind + "'");
    }
  } catch (const Failure& f) {
    return StudyError{file.string(), f.line, f.message};
  } catch (const YAML::Exception& e) {
    return StudyError{file.string(), e.mark.line + 1, e.msg};
  }
  return s;
}

boost::system::result<Study, StudyError> load_study(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return StudyError{file.string(), 0, "cannot read it"};
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_study(text.str(), file);
}

}  // namespace archipel::sim
