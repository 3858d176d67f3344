#include "report/report.hpp"

#include "report/plot.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

namespace archipel::sim {
namespace {

namespace json = boost::json;
using plot::axis_max;
using plot::escape;
using plot::fixed;

// The q-quantile (0..1) of sorted values, by linear interpolation.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

std::string scope_label(const std::string& scope) {
  return scope.empty() ? "." : scope;
}

const char* state_colour(const std::string& state) {
  if (state == "up" || state == "Reachable" || state == "running") {
    return "#4caf50";
  }
  if (state == "stalled" || state == "Suspected") {
    return "#ff9800";
  }
  if (state == "cut" || state == "Down" || state == "down") {
    return "#e53935";
  }
  return "#bdbdbd";
}

// x axis ticks along [0, max] at `y`, from `x0` to `x1`.
void ticks(std::ostringstream& svg, double max, double x0, double x1, double y,
           const std::string& unit) {
  for (int i = 0; i <= 5; ++i) {
    const double v = max * i / 5;
    const double x = x0 + (x1 - x0) * i / 5;
    svg << "<line x1='" << x << "' y1='" << y << "' x2='" << x << "' y2='" << y + 4
        << "' stroke='#555'/>";
    svg << "<text x='" << x << "' y='" << y + 16 << "' text-anchor='middle'>"
        << (max >= 10 ? fixed(v, 0) : fixed(v, 1)) << unit << "</text>";
  }
}

// Rows of coloured bands over time: sites, links, each site's view of its peers.
std::string timeline(const Report& r) {
  if (r.samples.empty()) {
    return "<p>No samples.</p>";
  }
  struct Row {
    std::string label;
    std::vector<std::pair<double, std::string>> states;  // t, state
  };
  std::vector<Row> rows;
  auto row_of = [&](const std::string& label) -> Row& {
    for (Row& row : rows) {
      if (row.label == label) {
        return row;
      }
    }
    rows.push_back({label, {}});
    return rows.back();
  };
  for (const Report::Sample& s : r.samples) {
    for (const auto& [site, up] : s.site_up) {
      row_of("site " + site).states.emplace_back(s.t_s, up ? "running" : "down");
    }
  }
  for (const Report::Sample& s : r.samples) {
    for (const auto& [link, state] : s.link_state) {
      row_of("link " + link).states.emplace_back(s.t_s, state);
    }
  }
  for (const Report::Sample& s : r.samples) {
    for (const auto& [view, state] : s.peer_state) {
      row_of(view).states.emplace_back(s.t_s, state);
    }
  }
  const double end = axis_max(std::max(r.duration_s, r.samples.back().t_s));
  const double left = 150;
  const double width = 900;
  const double row_h = 16;
  const double top = 30;
  const double height = top + static_cast<double>(rows.size()) * row_h + 30;
  std::ostringstream svg;
  svg << "<svg width='" << left + width + 20 << "' height='" << height
      << "' font-size='11' font-family='sans-serif'>";
  // Steps as vertical marks.
  int n = 0;
  double last_label = -100;
  for (const Report::Step& step : r.steps) {
    if (step.skipped) {
      continue;
    }
    const double x = left + width * step.start_s / end;
    const bool labelled = x - last_label >= 14;
    if (labelled) {
      last_label = x;
    }
    svg << "<line x1='" << x << "' y1='" << top - 4 << "' x2='" << x << "' y2='" << height - 30
        << "' stroke='#9e9e9e' stroke-dasharray='2,3'><title>" << escape(step.name) << " at "
        << fixed(step.start_s, 2) << " s</title></line>";
    ++n;
    if (labelled) {
      svg << "<text x='" << x + 1 << "' y='" << top - 8 << "' fill='#616161' font-size='9'>" << n
          << "</text>";
    }
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double y = top + static_cast<double>(i) * row_h;
    svg << "<text x='" << left - 6 << "' y='" << y + 11 << "' text-anchor='end'>"
        << escape(rows[i].label) << "</text>";
    const auto& states = rows[i].states;
    for (std::size_t k = 0; k < states.size(); ++k) {
      if (k > 0 && states[k].second == states[k - 1].second) {
        continue;  // drawn with the run it continues
      }
      const double t0 = states[k].first;
      std::size_t next = k + 1;
      while (next < states.size() && states[next].second == states[k].second) {
        ++next;
      }
      const double t1 = next < states.size() ? states[next].first : r.duration_s;
      svg << "<rect x='" << left + width * t0 / end << "' y='" << y + 2 << "' width='"
          << std::max(0.5, width * (t1 - t0) / end) << "' height='" << row_h - 4 << "' fill='"
          << state_colour(states[k].second) << "'><title>" << escape(rows[i].label) << ": "
          << escape(states[k].second) << " from " << fixed(t0, 2) << " s</title></rect>";
    }
  }
  ticks(svg, end, left, left + width, height - 28, " s");
  svg << "</svg>";
  return svg.str();
}

// Per scope: a box (p25–p75), the median, whiskers p5–p95, and the maximum as a dot.
std::string latency_plot(const Report& r) {
  if (r.latencies_ms.empty()) {
    return "<p>No requests.</p>";
  }
  double max = 0;
  std::map<std::string, std::vector<double>> sorted;
  for (const auto& [scope, values] : r.latencies_ms) {
    auto v = values;
    std::sort(v.begin(), v.end());
    if (!v.empty()) {
      max = std::max(max, quantile(v, 0.95));
    }
    sorted[scope] = std::move(v);
  }
  max = axis_max(max);
  const double left = 150;
  const double width = 700;
  const double row_h = 26;
  const double height = static_cast<double>(sorted.size()) * row_h + 40;
  std::ostringstream svg;
  svg << "<svg width='" << left + width + 30 << "' height='" << height
      << "' font-size='11' font-family='sans-serif'>";
  double y = 6;
  auto x = [&](double v) { return left + width * std::min(v, max) / max; };
  for (const auto& [scope, v] : sorted) {
    svg << "<text x='" << left - 6 << "' y='" << y + 15 << "' text-anchor='end'>"
        << escape(scope_label(scope)) << "</text>";
    if (!v.empty()) {
      const double p5 = quantile(v, 0.05), p25 = quantile(v, 0.25), p50 = quantile(v, 0.5),
                   p75 = quantile(v, 0.75), p95 = quantile(v, 0.95);
      svg << "<line x1='" << x(p5) << "' y1='" << y + 11 << "' x2='" << x(p95) << "' y2='" << y + 11
          << "' stroke='#555'/>";
      svg << "<rect x='" << x(p25) << "' y='" << y + 3 << "' width='"
          << std::max(1.0, x(p75) - x(p25)) << "' height='16' fill='#90caf9' stroke='#1565c0'>"
          << "<title>p25 " << fixed(p25, 2) << " ms, p75 " << fixed(p75, 2) << " ms</title></rect>";
      svg << "<line x1='" << x(p50) << "' y1='" << y + 3 << "' x2='" << x(p50) << "' y2='" << y + 19
          << "' stroke='#0d47a1' stroke-width='2'><title>median " << fixed(p50, 2)
          << " ms</title></line>";
    }
    y += row_h;
  }
  ticks(svg, max, left, left + width, y + 2, " ms");
  svg << "</svg>";
  return svg.str();
}

// Horizontal bars: convergence time per object, the bound as a mark.
std::string convergence_plot(const Report& r) {
  if (r.convergence.empty()) {
    return "<p>No convergence checks.</p>";
  }
  double max = 0;
  for (const auto& c : r.convergence) {
    max = std::max({max, c.ms, c.within_ms});
  }
  max = axis_max(max);
  const double left = 260;
  const double width = 600;
  const double row_h = 22;
  const double height = static_cast<double>(r.convergence.size()) * row_h + 40;
  std::ostringstream svg;
  svg << "<svg width='" << left + width + 30 << "' height='" << height
      << "' font-size='11' font-family='sans-serif'>";
  double y = 6;
  for (const auto& c : r.convergence) {
    std::string sites;
    for (const auto& s : c.sites) {
      sites += (sites.empty() ? "" : ", ") + s;
    }
    svg << "<text x='" << left - 6 << "' y='" << y + 13 << "' text-anchor='end'>"
        << escape(c.object) << " (" << escape(sites) << ")</text>";
    svg << "<rect x='" << left << "' y='" << y + 3 << "' width='"
        << std::max(1.0, width * c.ms / max) << "' height='14' fill='"
        << (c.converged ? "#66bb6a" : "#e53935") << "'><title>" << fixed(c.ms, 1)
        << " ms</title></rect>";
    const double bx = left + width * c.within_ms / max;
    svg << "<line x1='" << bx << "' y1='" << y << "' x2='" << bx << "' y2='" << y + 20
        << "' stroke='#000' stroke-dasharray='3,2'><title>bound " << fixed(c.within_ms, 0)
        << " ms</title></line>";
    y += row_h;
  }
  ticks(svg, max, left, left + width, y + 2, " ms");
  svg << "</svg>";
  return svg.str();
}

// Per migration: its steps as segments along its duration; the downtime in the label.
std::string migration_plot(const Report& r) {
  if (r.migrations.empty()) {
    return "<p>No migrations.</p>";
  }
  double max = 0;
  for (const auto& m : r.migrations) {
    if (!m.steps.empty()) {
      max = std::max(max, m.steps.back().second);
    }
  }
  max = axis_max(max);
  static const char* kColours[] = {"#42a5f5", "#ab47bc", "#26a69a", "#ffa726",
                                   "#ef5350", "#8d6e63", "#78909c", "#d4e157"};
  const double left = 260;
  const double width = 600;
  const double row_h = 26;
  const double height = static_cast<double>(r.migrations.size()) * row_h + 40;
  std::ostringstream svg;
  svg << "<svg width='" << left + width + 140 << "' height='" << height
      << "' font-size='11' font-family='sans-serif'>";
  double y = 6;
  for (const auto& m : r.migrations) {
    svg << "<text x='" << left - 6 << "' y='" << y + 15 << "' text-anchor='end'>"
        << escape(m.pod + " " + m.from + "→" + m.to + " (" + m.mode + ")") << "</text>";
    double previous = 0;
    for (std::size_t i = 0; i < m.steps.size(); ++i) {
      const auto& [name, at] = m.steps[i];
      const double x0 = left + width * previous / max;
      const double w = std::max(1.0, width * (at - previous) / max);
      svg << "<rect x='" << x0 << "' y='" << y + 3 << "' width='" << w << "' height='16' fill='"
          << kColours[i % 8] << "'><title>" << escape(name) << " at " << fixed(at, 1)
          << " ms</title></rect>";
      if (w >= 6.5 * static_cast<double>(name.size())) {
        svg << "<text x='" << x0 + 3 << "' y='" << y + 15 << "' fill='#fff'>" << escape(name)
            << "</text>";
      }
      previous = at;
    }
    svg << "<text x='" << left + width * previous / max + 6 << "' y='" << y + 15 << "'>downtime "
        << fixed(m.downtime_ms, 0) << " ms</text>";
    y += row_h;
  }
  ticks(svg, max, left, left + width, y + 2, " ms");
  svg << "</svg>";
  return svg.str();
}

}  // namespace

bool Report::passed() const {
  return std::all_of(expectations.begin(), expectations.end(),
                     [](const Expectation& e) { return e.ok; });
}

json::value Report::to_json() const {
  json::object o;
  o["scenario"] = scenario;
  o["description"] = description;
  o["source"] = source;
  o["startedAt"] = started_at;
  o["durationSeconds"] = duration_s;
  o["short"] = short_run;
  o["passed"] = passed();
  json::array site_list;
  for (const auto& s : sites) {
    site_list.emplace_back(s);
  }
  o["sites"] = std::move(site_list);
  json::array step_list;
  for (const Step& s : steps) {
    step_list.push_back(json::object{{"name", s.name},
                                     {"line", s.line},
                                     {"startSeconds", s.start_s},
                                     {"endSeconds", s.end_s},
                                     {"skipped", s.skipped},
                                     {"ok", s.ok},
                                     {"detail", s.detail}});
  }
  o["steps"] = std::move(step_list);
  json::array sample_list;
  for (const Sample& s : samples) {
    json::object up, peers, links;
    for (const auto& [k, v] : s.site_up) {
      up[k] = v;
    }
    for (const auto& [k, v] : s.peer_state) {
      peers[k] = v;
    }
    for (const auto& [k, v] : s.link_state) {
      links[k] = v;
    }
    sample_list.push_back(
        json::object{{"t", s.t_s}, {"siteUp", up}, {"peerState", peers}, {"linkState", links}});
  }
  o["samples"] = std::move(sample_list);
  json::object requests;
  for (const auto& [scope, values] : latencies_ms) {
    auto v = values;
    std::sort(v.begin(), v.end());
    json::array raw(values.begin(), values.end());
    auto failures = request_failures.find(scope);
    requests[scope_label(scope)] =
        json::object{{"count", v.size()},
                     {"failures", failures == request_failures.end() ? 0U : failures->second},
                     {"p50Ms", quantile(v, 0.5)},
                     {"p90Ms", quantile(v, 0.9)},
                     {"p99Ms", quantile(v, 0.99)},
                     {"maxMs", v.empty() ? 0 : v.back()},
                     {"latenciesMs", std::move(raw)}};
  }
  o["requests"] = std::move(requests);
  json::array conv;
  for (const auto& c : convergence) {
    json::array s(c.sites.begin(), c.sites.end());
    conv.push_back(json::object{{"object", c.object},
                                {"sites", std::move(s)},
                                {"ms", c.ms},
                                {"withinMs", c.within_ms},
                                {"converged", c.converged}});
  }
  o["convergence"] = std::move(conv);
  json::array migs;
  for (const auto& m : migrations) {
    json::array st;
    for (const auto& [name, at] : m.steps) {
      st.push_back(json::object{{"name", name}, {"atMs", at}});
    }
    migs.push_back(json::object{{"name", m.name},
                                {"pod", m.pod},
                                {"from", m.from},
                                {"to", m.to},
                                {"mode", m.mode},
                                {"strategy", m.strategy},
                                {"phase", m.phase},
                                {"downtimeMs", m.downtime_ms},
                                {"imageBytes", m.image_bytes},
                                {"steps", std::move(st)},
                                {"message", m.message}});
  }
  o["migrations"] = std::move(migs);
  json::object bytes;
  for (const auto& [link, b] : link_bytes) {
    bytes[link] = b;
  }
  o["linkBytes"] = std::move(bytes);
  json::array exp;
  for (const auto& e : expectations) {
    exp.push_back(
        json::object{{"step", e.step}, {"line", e.line}, {"ok", e.ok}, {"detail", e.detail}});
  }
  o["expectations"] = std::move(exp);
  return o;
}

std::string utc_now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Report::to_html() const {
  std::ostringstream h;
  const bool ok = passed();
  h << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" << escape(scenario)
    << " — archipel simulation</title><style>"
    << "body{font-family:sans-serif;margin:2em;max-width:1150px;color:#212121}"
    << "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    << "td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:left}"
    << "th{background:#f5f5f5}.ok{color:#2e7d32}.fail{color:#c62828;font-weight:bold}"
    << ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;"
    << "vertical-align:middle}</style></head><body>\n";
  h << "<h1>" << escape(scenario) << " <span class='" << (ok ? "ok'>passed" : "fail'>FAILED")
    << "</span></h1>\n<p>" << escape(description) << "</p>\n<p>Sites: ";
  for (std::size_t i = 0; i < sites.size(); ++i) {
    h << (i ? ", " : "") << escape(sites[i]);
  }
  h << ". Started " << escape(started_at) << ", ran " << fixed(duration_s, 1) << " s"
    << (short_run ? " (short form)" : "") << ". Scenario: <code>" << escape(source)
    << "</code>.</p>\n";

  h << "<h2>Expectations</h2><table><tr><th>step</th><th>line</th><th>result</th>"
    << "<th>detail</th></tr>";
  for (const auto& e : expectations) {
    h << "<tr><td>" << escape(e.step) << "</td><td>" << e.line << "</td><td class='"
      << (e.ok ? "ok'>ok" : "fail'>failed") << "</td><td>" << escape(e.detail) << "</td></tr>";
  }
  h << "</table>\n";

  h << "<h2>Sites, links and failure detectors over time</h2>"
    << "<p class='legend'><span style='background:#4caf50'></span>running / up / Reachable"
    << "<span style='background:#ff9800'></span>stalled / Suspected"
    << "<span style='background:#e53935'></span>down / cut / Down"
    << "<span style='background:#bdbdbd'></span>unknown. A row <i>a&gt;b</i> is what "
    << "a's failure detector says of b; the dashed lines are the steps (numbered as below)."
    << "</p>\n"
    << timeline(*this) << "\n";

  h << "<h2>Request latency by scope</h2><p>Box: 25th–75th percentile, bar: median, "
    << "whiskers: 5th–95th percentile.</p>\n"
    << latency_plot(*this)
    << "<table><tr><th>scope</th><th>requests</th><th>failures</th><th>p50 ms</th>"
    << "<th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>";
  for (const auto& [scope, values] : latencies_ms) {
    auto v = values;
    std::sort(v.begin(), v.end());
    auto failures = request_failures.find(scope);
    h << "<tr><td>" << escape(scope_label(scope)) << "</td><td>" << v.size() << "</td><td>"
      << (failures == request_failures.end() ? 0U : failures->second) << "</td><td>"
      << fixed(quantile(v, 0.5), 2) << "</td><td>" << fixed(quantile(v, 0.9), 2) << "</td><td>"
      << fixed(quantile(v, 0.99), 2) << "</td><td>" << fixed(v.empty() ? 0 : v.back(), 2)
      << "</td></tr>";
  }
  h << "</table>\n";

  h << "<h2>Convergence of shared objects</h2><p>Time from the check's start (placed right "
    << "after the heal or the edit it follows) until every site named holds the same data, "
    << "labels and annotations; the dashed mark is the scenario's bound.</p>\n"
    << convergence_plot(*this) << "\n";

  h << "<h2>Migrations</h2><p>Each bar is one migration, split into its steps (hover for "
    << "their names and times).</p>\n"
    << migration_plot(*this)
    << "<table><tr><th>migration</th><th>pod</th><th>from → to</th><th>mode</th>"
    << "<th>strategy</th><th>phase</th><th>downtime ms</th><th>image bytes</th>"
    << "<th>steps</th></tr>";
  for (const auto& m : migrations) {
    std::string steps_text;
    for (const auto& [name, at] : m.steps) {
      steps_text += (steps_text.empty() ? "" : ", ") + name + " " + fixed(at, 0);
    }
    h << "<tr><td>" << escape(m.name) << "</td><td>" << escape(m.pod) << "</td><td>"
      << escape(m.from) << " → " << escape(m.to) << "</td><td>" << escape(m.mode) << "</td><td>"
      << escape(m.strategy) << "</td><td>" << escape(m.phase) << "</td><td>"
      << fixed(m.downtime_ms, 1) << "</td><td>" << fixed(m.image_bytes, 0) << "</td><td>"
      << escape(steps_text) << (m.message.empty() ? "" : " — " + escape(m.message)) << "</td></tr>";
  }
  h << "</table>\n";

  h << "<h2>Bytes carried by each link</h2><table><tr><th>link</th><th>bytes</th></tr>";
  for (const auto& [link, b] : link_bytes) {
    h << "<tr><td>" << escape(link) << "</td><td>" << fixed(b, 0) << "</td></tr>";
  }
  h << "</table>\n";

  h << "<h2>Timeline</h2><table><tr><th>#</th><th>step</th><th>line</th><th>start s</th>"
    << "<th>took s</th><th>result</th><th>detail</th></tr>";
  int n = 0;
  for (const Step& s : steps) {
    h << "<tr><td>" << (s.skipped ? std::string("–") : std::to_string(++n)) << "</td><td>"
      << escape(s.name) << "</td><td>" << s.line << "</td><td>" << fixed(s.start_s, 2)
      << "</td><td>" << fixed(s.end_s - s.start_s, 2) << "</td><td class='"
      << (s.skipped ? "'>skipped"
          : s.ok    ? "ok'>ok"
                    : "fail'>failed")
      << "</td><td>" << escape(s.detail) << "</td></tr>";
  }
  h << "</table>\n</body></html>\n";
  return h.str();
}

}  // namespace archipel::sim
