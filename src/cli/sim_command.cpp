// `archipel sim run`: a scenario played on real sites of this machine (emulation), with a
// progress bar, a console summary and the JSON and HTML reports; `archipel sim study`: a study
// at scale, run by archipel-simgrid (SimGrid stays out of this binary).

#include "cli/commands.hpp"
#include "emulation/runner.hpp"
#include "emulation/scenario.hpp"

#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <vector>

namespace archipel::cli {
namespace {

namespace fs = std::filesystem;

fs::path self_path() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("archipel") : p;
}

// One line redrawn on a terminal; one line per step otherwise (logs, CI).
void show_progress(std::size_t index, std::size_t total, const std::string& step) {
  static const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (!tty) {
    if (index < total) {
      std::cerr << "[" << index + 1 << "/" << total << "] " << step << "\n";
    }
    return;
  }
  constexpr std::size_t kWidth = 30;
  const std::size_t filled = total == 0 ? kWidth : kWidth * index / total;
  std::string line = "\r[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " +
                     std::to_string(index) + "/" + std::to_string(total) + " " + step;
  if (line.size() > 100) {
    line.resize(100);
  }
  std::cerr << line << std::string(100 - line.size(), ' ') << (index == total ? "\n" : "")
            << std::flush;
}

}  // namespace

int sim_run(const SimRunOptions& o) {
  auto scenario = sim::load_scenario(o.scenario);
  if (!scenario) {
    std::cerr << "archipel sim run: " << scenario.error().render() << "\n";
    return kExitUsage;
  }
  sim::RunOptions options;
  options.archipel = self_path();
  options.workloads = o.workloads.empty() ? options.archipel.parent_path() / "tests" / "workloads"
                                          : fs::absolute(o.workloads);
  options.out = fs::absolute(o.out.empty() ? fs::path("var/sim") / scenario->name : o.out);
  options.short_run = o.short_run;
  options.progress = show_progress;
  std::error_code ec;
  fs::remove_all(options.out, ec);
  fs::create_directories(options.out, ec);
  if (ec) {
    std::cerr << "archipel sim run: cannot create " << options.out << ": " << ec.message() << "\n";
    return kExitFailed;
  }
  std::cerr << "scenario " << scenario->name << ": " << scenario->sites.size() << " sites, "
            << scenario->steps.size() << " steps" << (o.short_run ? " (short form)" : "") << "\n";
  auto report = sim::run_scenario(*scenario, options);
  if (!report) {
    std::cerr << "archipel sim run: " << report.error() << "\n";
    return kExitFailed;
  }
  const fs::path json_path = options.out / "report.json";
  const fs::path html_path = options.out / "report.html";
  std::ofstream(json_path) << boost::json::serialize(report->to_json()) << "\n";
  std::ofstream(html_path) << report->to_html();

  std::size_t failed = 0;
  for (const auto& e : report->expectations) {
    std::cout << (e.ok ? "  ok    " : "  FAIL  ") << e.step << ": " << e.detail << "\n";
    failed += e.ok ? 0 : 1;
  }
  for (const auto& m : report->migrations) {
    std::cout << "  migration " << m.pod << " " << m.from << " -> " << m.to << " (" << m.mode
              << "): " << m.phase << ", downtime " << m.downtime_ms << " ms\n";
  }
  for (const auto& c : report->convergence) {
    std::cout << "  convergence " << c.object << ": " << c.ms << " ms\n";
  }
  std::cout << scenario->name << ": " << report->expectations.size() - failed << " of "
            << report->expectations.size() << " expectations held in " << report->duration_s
            << " s\n"
            << "report: " << html_path.string() << "\n"
            << "data:   " << json_path.string() << "\n";
  return failed == 0 ? kExitOk : kExitFailed;
}

int sim_study(const SimStudyOptions& o) {
  const fs::path program = self_path().parent_path() / "archipel-simgrid";
  if (!fs::exists(program)) {
    std::cerr << "archipel sim study: " << program.string()
              << " is not built (SimGrid was not found: scripts/setup-simgrid installs it)\n";
    return kExitFailed;
  }
  std::vector<std::string> args{program.string(), o.study.string()};
  if (!o.out.empty()) {
    args.insert(args.end(), {"--out", o.out.string()});
  }
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  ::execv(program.c_str(), argv.data());
  std::cerr << "archipel sim study: cannot run " << program.string() << ": " << std::strerror(errno)
            << "\n";
  return kExitFailed;
}

}  // namespace archipel::cli
