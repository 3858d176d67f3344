// Migration downtime with CRIU, cold against post-copy, side by side in one run (issue #8's
// benchmark, process level: the pod and peer-channel layers come on top of this).
//
// The workload (tests/workloads/memory.cpp) holds --mib MiB of resident memory, dirties 16
// pages per millisecond and writes the wall-clock time every millisecond. Each run starts one
// in its own pid namespace and moves it, on this machine, from a source images directory to a
// destination one:
//
// - cold: dump (the tree left stopped), copy the images, restore, then kill the source;
// - post-copy: lazy dump (memory stays behind, served by CRIU's page server), copy the images
//   (without the memory), start the lazy-pages daemon, restore: the tree runs at once and
//   fetches its pages, on demand and in the background, until all are there.
//
// Downtime: the first time stamp the restored workload wrote minus the last one the source
// wrote (CLOCK_REALTIME: CRIU restores into a time namespace whose monotonic clock would hide
// part of the freeze). Also the time each phase took, and for post-copy until the memory is
// all at the destination. The copy stands in for the transfer over the peer channel (a local
// copy: no network in these figures).
//
// Usage (root, a working CRIU): migration_bench [--mib 100] [--runs 5]; prints one JSON line.

#include "archipel/migrate/criu.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace archipel::migrate;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

void fail(const std::string& what) {
  std::fprintf(stderr, "migration_bench: %s\n", what.c_str());
  std::exit(1);
}

std::vector<long long> stamps(const fs::path& log) {
  std::ifstream in(log);
  std::vector<long long> out;
  long long v = 0;
  while (in >> v) {
    out.push_back(v);
  }
  return out;
}

void wait_for_stamps(const fs::path& log, std::size_t n) {
  const auto end = Clock::now() + 20s;
  while (stamps(log).size() < n) {
    if (Clock::now() > end) {
      fail("the workload wrote nothing to " + log.string());
    }
    std::this_thread::sleep_for(5ms);
  }
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Result {
  double downtime_ms = 0;
  double dump_ms = 0;
  double copy_ms = 0;
  double restore_ms = 0;
  double memory_complete_ms = 0;  // post-copy: from the restore until every page arrived
};

struct Move {
  const Criu& criu;
  fs::path dir;
  int mib;
  bool lazy;

  Result run() {
    fs::create_directories(dir);
    const fs::path source_log = dir / "source.log";
    const fs::path destination_log = dir / "destination.log";
    auto pid = start_in_own_pid_namespace(
        {MEMORY_BIN, "--mib", std::to_string(mib), "--stamp-us", "1000", "--dirty-pages", "16"},
        source_log);
    if (!pid) {
      fail(pid.error());
    }
    wait_for_stamps(source_log, 500);  // memory written, running for half a second

    Result r;
    const auto start = Clock::now();
    std::unique_ptr<CriuDaemon> serving;
    if (lazy) {
      auto d = criu.start_lazy_dump({.pid = *pid,
                                     .images = dir / "source",
                                     .page_server_address = "127.0.0.1",
                                     .page_server_port = port()});
      if (!d) {
        fail(d.error().describe() + "\n" + d.error().log_excerpt);
      }
      serving = std::move(*d);
    } else {
      auto d = criu.dump({.pid = *pid, .images = dir / "source", .leave_stopped = true});
      if (!d) {
        fail(d.error().describe() + "\n" + d.error().log_excerpt);
      }
    }
    r.dump_ms = ms_since(start);

    auto t = Clock::now();
    fs::copy(dir / "source", dir / "destination", fs::copy_options::recursive);
    r.copy_ms = ms_since(t);

    t = Clock::now();
    std::unique_ptr<CriuDaemon> fetching;
    if (lazy) {
      auto l = criu.start_lazy_pages(dir / "destination", "127.0.0.1", last_port_);
      if (!l) {
        fail(l.error().describe() + "\n" + l.error().log_excerpt);
      }
      fetching = std::move(*l);
    }
    auto restored = criu.restore({.images = dir / "destination",
                                  .reopen = {{source_log, destination_log}},
                                  .lazy_pages = lazy});
    if (!restored) {
      fail(restored.error().describe() + "\n" + restored.error().log_excerpt);
    }
    r.restore_ms = ms_since(t);
    if (lazy) {
      if (auto f = fetching->finish(60s); !f) {
        fail(f.error().describe() + "\n" + f.error().log_excerpt);
      }
      r.memory_complete_ms = ms_since(t);
      if (auto f = serving->finish(60s); !f) {
        fail(f.error().describe() + "\n" + f.error().log_excerpt);
      }
    } else {
      ::kill(*pid, SIGKILL);  // the destination runs: the source goes
    }
    ::waitpid(*pid, nullptr, 0);

    wait_for_stamps(destination_log, 50);
    const std::vector<long long> before = stamps(source_log);
    const std::vector<long long> after = stamps(destination_log);
    r.downtime_ms = static_cast<double>(after.front() - before.back()) / 1000.0;
    ::kill(*restored, SIGKILL);
    return r;
  }

  std::uint16_t port() {
    last_port_ = static_cast<std::uint16_t>(20000 + std::random_device{}() % 20000);
    return last_port_;
  }
  std::uint16_t last_port_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string figures(const std::vector<Result>& rs) {
  std::vector<double> down;
  std::vector<double> dump;
  std::vector<double> copy;
  std::vector<double> restore;
  std::vector<double> complete;
  for (const Result& r : rs) {
    down.push_back(r.downtime_ms);
    dump.push_back(r.dump_ms);
    copy.push_back(r.copy_ms);
    restore.push_back(r.restore_ms);
    complete.push_back(r.memory_complete_ms);
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"downtime_ms\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f},\"dump_ms\":%.1f,"
                "\"copy_ms\":%.1f,\"restore_ms\":%.1f,\"memory_complete_ms\":%.1f}",
                median(down), *std::min_element(down.begin(), down.end()),
                *std::max_element(down.begin(), down.end()), median(dump), median(copy),
                median(restore), median(complete));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int mib = 100;
  int runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--mib") {
      mib = value;
    } else if (flag == "--runs") {
      runs = value;
    } else {
      fail("unknown flag " + flag);
    }
  }
  if (mib <= 0 || runs <= 0) {
    fail("--mib and --runs must be positive");
  }
  const auto binary = Criu::locate();
  if (!binary) {
    fail("no CRIU (scripts/setup-criu installs one)");
  }
  const Criu criu({*binary, 60s});
  if (const CriuFeatures f = criu.check(); !f.works) {
    fail("CRIU does not work here: " + f.problem);
  }
  const fs::path base = fs::temp_directory_path() /
                        ("archipel-migration-bench-" + std::to_string(std::random_device{}()));
  std::vector<Result> cold;
  std::vector<Result> lazy;
  for (int i = 0; i < runs; ++i) {  // interleaved: the machine's noise falls on both
    cold.push_back(Move{criu, base / ("cold-" + std::to_string(i)), mib, false}.run());
    lazy.push_back(Move{criu, base / ("lazy-" + std::to_string(i)), mib, true}.run());
    fs::remove_all(base / ("cold-" + std::to_string(i)));
    fs::remove_all(base / ("lazy-" + std::to_string(i)));
  }
  fs::remove_all(base);
  std::vector<double> ratios;
  for (int i = 0; i < runs; ++i) {
    ratios.push_back(cold[static_cast<std::size_t>(i)].downtime_ms /
                     lazy[static_cast<std::size_t>(i)].downtime_ms);
  }
  std::printf(
      "{\"mib\":%d,\"runs\":%d,\"cold\":%s,\"post_copy\":%s,\"cold_over_post_copy\":%.2f}\n", mib,
      runs, figures(cold).c_str(), figures(lazy).c_str(), median(ratios));
  return 0;
}
