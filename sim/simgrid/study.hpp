#pragma once
// A study at scale (sim/studies/*.yaml): which simulation (detection or convergence), the
// parameters it sweeps, and the checks its results must pass. Parsing only; every mistake has
// its line. The format is documented in docs/simulation.md#studies-at-scale-simgrid.

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace archipel::sim {

using Seconds = std::chrono::duration<double>;

/// Failure detection between two sites: for each heartbeat interval and jitter, `runs` pairs
/// watched for `observe` (false suspicions) and then one side stops (detection time).
struct DetectionStudy {
  std::vector<Seconds> heartbeats;
  std::vector<Seconds> jitters;  ///< mean extra delay of a heartbeat (exponential)
  Seconds latency{0.01};
  Seconds observe{600};
  unsigned runs = 5;
  struct Check {
    Seconds heartbeat;
    Seconds jitter;
    std::optional<Seconds> detection_below;      ///< median detection time
    std::optional<unsigned> false_down_at_most;  ///< over all runs
  };
  std::vector<Check> checks;
};

/// Sharing at scale: federations of each size, where every site shares one object with
/// `degree - 1` others per group it is in; each site edits its objects; convergence time, bytes
/// and state per site.
struct ConvergenceStudy {
  /// A SimGrid platform file whose hosts are the sites and whose routes join them (instead of
  /// generated federations of `sites` sizes with access links).
  std::filesystem::path platform;
  std::vector<unsigned> sites;
  std::vector<unsigned> degrees;
  unsigned groups_per_site = 1;
  unsigned edits_per_site = 4;
  Seconds duration{20};               ///< the edits are spread over it
  Seconds drain{30};                  ///< then messages may still flow this long
  Seconds access_latency_min{0.002};  ///< per site, uniform; a pair adds both
  Seconds access_latency_max{0.02};
  double bandwidth_bytes_per_second = 12.5e6;  ///< each site's access link
  /// Optionally, a share of the sites cut off from every other site for a while (edits go on
  /// everywhere); the edits not everywhere at the heal are timed from the heal.
  struct Partition {
    double fraction = 0.1;
    Seconds at{5};
    Seconds length{10};
  };
  std::optional<Partition> partition;
  struct Check {
    std::optional<Seconds> converge_p99_below;  ///< at every point
    /// Bytes sent per site may vary at most this fraction across federation sizes (at a degree).
    std::optional<double> bytes_flat_within;
    /// Likewise for the durable state per site.
    std::optional<double> state_flat_within;
    /// After the partition's heal, at every point.
    std::optional<Seconds> resync_p99_below;
  };
  std::vector<Check> checks;
};

struct Study {
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  std::variant<DetectionStudy, ConvergenceStudy> kind;
  std::filesystem::path source;
};

struct StudyError {
  std::string file;
  int line = 0;
  std::string message;
  [[nodiscard]] std::string render() const;
};

boost::system::result<Study, StudyError> load_study(const std::filesystem::path& file);
boost::system::result<Study, StudyError> parse_study(std::string_view yaml,
                                                     const std::filesystem::path& file);

}  // namespace archipel::sim
