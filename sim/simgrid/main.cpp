// archipel-simgrid: runs a study at scale (sim/studies/*.yaml) with SimGrid, checks it, and
// writes its reports. `archipel sim study` runs it; it can also be run directly:
//   archipel-simgrid STUDY.yaml [--out DIR]

#include "report/plot.hpp"
#include "simgrid/studies.hpp"

#include <boost/json.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace sim = archipel::sim;
namespace plot = archipel::sim::plot;

void show_progress(std::size_t index, std::size_t total, const std::string& what) {
  std::cerr << "[" << index + 1 << "/" << total << "] " << what << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path file;
  fs::path out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (file.empty() && !arg.starts_with("-")) {
      file = arg;
    } else {
      std::cerr << "usage: archipel-simgrid STUDY.yaml [--out DIR]\n";
      return 2;
    }
  }
  if (file.empty()) {
    std::cerr << "usage: archipel-simgrid STUDY.yaml [--out DIR]\n";
    return 2;
  }
  auto study = sim::load_study(file);
  if (!study) {
    std::cerr << "archipel sim study: " << study.error().render() << "\n";
    return 2;
  }
  if (out.empty()) {
    out = fs::path("var/sim") / study->name;
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) {
    std::cerr << "archipel sim study: cannot create " << out << ": " << ec.message() << "\n";
    return 1;
  }
  const std::string started = sim::utc_now_rfc3339();
  const auto begin = std::chrono::steady_clock::now();
  const char* kind =
      std::holds_alternative<sim::DetectionStudy>(study->kind) ? "detection" : "convergence";
  std::cerr << "study " << study->name << " (" << kind << ", seed " << study->seed << ")\n";
  sim::StudyOutcome outcome =
      std::holds_alternative<sim::DetectionStudy>(study->kind)
          ? sim::run_detection(*study, std::get<sim::DetectionStudy>(study->kind), show_progress)
          : sim::run_convergence(*study, std::get<sim::ConvergenceStudy>(study->kind),
                                 show_progress);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  bool passed = true;
  json::array checks;
  for (const auto& c : outcome.checks) {
    passed = passed && c.ok;
    checks.push_back(json::object{{"check", c.step}, {"ok", c.ok}, {"detail", c.detail}});
  }
  const json::object report{{"study", study->name},
                            {"kind", kind},
                            {"description", study->description},
                            {"source", fs::absolute(file).string()},
                            {"seed", study->seed},
                            {"startedAt", started},
                            {"wallSeconds", wall},
                            {"passed", passed},
                            {"checks", std::move(checks)},
                            {"results", outcome.results}};
  std::ofstream(out / "report.json") << json::serialize(report) << "\n";
  std::ofstream html(out / "report.html");
  html << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>"
       << plot::escape(study->name) << " — archipel simulation study</title><style>"
       << "body{font-family:sans-serif;margin:2em;max-width:1150px;color:#212121}"
       << "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
       << "td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:left}"
       << "th{background:#f5f5f5}.ok{color:#2e7d32}.fail{color:#c62828;font-weight:bold}"
       << "</style></head><body>\n<h1>" << plot::escape(study->name) << " <span class='"
       << (passed ? "ok'>passed" : "fail'>FAILED") << "</span></h1>\n<p>"
       << plot::escape(study->description) << "</p>\n<p>A " << kind
       << " study simulated with SimGrid (seed " << study->seed << ", deterministic for it), run "
       << plot::escape(started) << " in " << plot::fixed(wall, 1)
       << " s of wall time. Study: <code>" << plot::escape(fs::absolute(file).string())
       << "</code>.</p>\n<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>detail</th></"
          "tr>";
  for (const auto& c : outcome.checks) {
    html << "<tr><td>" << plot::escape(c.step) << "</td><td class='"
         << (c.ok ? "ok'>ok" : "fail'>failed") << "</td><td>" << plot::escape(c.detail)
         << "</td></tr>";
  }
  html << "</table>\n" << outcome.html << "\n</body></html>\n";
  std::size_t failed = 0;
  for (const auto& c : outcome.checks) {
    std::cout << (c.ok ? "  ok    " : "  FAIL  ") << c.step << ": " << c.detail << "\n";
    failed += c.ok ? 0 : 1;
  }
  std::cout << study->name << ": " << outcome.checks.size() - failed << " of "
            << outcome.checks.size() << " checks held in " << plot::fixed(wall, 1) << " s\n"
            << "report: " << (out / "report.html").string() << "\n"
            << "data:   " << (out / "report.json").string() << "\n";
  return failed == 0 ? 0 : 1;
}
