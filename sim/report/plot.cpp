#include "report/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace archipel::sim::plot {

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double axis_max(double v) {
  if (v <= 0) {
    return 1;
  }
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= v * (1 - 1e-12)) {
      return m * p;
    }
  }
  return 10 * p;
}

namespace {

constexpr const char* kColours[] = {"#1565c0", "#c62828", "#2e7d32", "#ef6c00",
                                    "#6a1b9a", "#00838f", "#5d4037", "#9e9d24"};

std::string label_of(double v) {
  if (v != 0 && (std::fabs(v) >= 10000 || std::fabs(v) < 0.01)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  return fixed(v, std::fabs(v) >= 10 || v == std::floor(v) ? 0 : 2);
}

}  // namespace

std::string line_chart(const LineChart& chart) {
  double x_min = 0, x_max = 0, y_max = 0;
  bool first = true;
  for (const Series& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      if (first) {
        x_min = x_max = x;
        first = false;
      }
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  }
  if (first) {
    return "<p>No data.</p>";
  }
  const bool log_x = chart.log_x && x_min > 0;
  const double y_top = axis_max(y_max);
  double lo = x_min, hi = x_max;
  if (log_x) {
    lo = std::pow(10, std::floor(std::log10(x_min)));
    hi = std::pow(10, std::ceil(std::log10(x_max)));
  } else {
    lo = std::min(0.0, x_min);
    hi = axis_max(x_max);
  }
  if (hi <= lo) {
    hi = lo + 1;
  }
  const double left = 70, top = 20, width = 560, height = 260;
  auto px = [&](double x) {
    const double f = log_x ? (std::log10(x) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                           : (x - lo) / (hi - lo);
    return left + width * f;
  };
  auto py = [&](double y) { return top + height - height * std::min(y, y_top) / y_top; };
  std::ostringstream svg;
  svg << "<svg width='" << left + width + 220 << "' height='" << top + height + 50
      << "' font-size='11' font-family='sans-serif'>";
  svg << "<rect x='" << left << "' y='" << top << "' width='" << width << "' height='" << height
      << "' fill='none' stroke='#bbb'/>";
  for (int i = 0; i <= 5; ++i) {  // y grid
    const double y = y_top * i / 5;
    svg << "<line x1='" << left << "' y1='" << py(y) << "' x2='" << left + width << "' y2='"
        << py(y) << "' stroke='#eee'/><text x='" << left - 6 << "' y='" << py(y) + 4
        << "' text-anchor='end'>" << label_of(y) << "</text>";
  }
  std::vector<double> xs;
  if (log_x) {
    for (double d = lo; d <= hi * 1.0001; d *= 10) {
      xs.push_back(d);
    }
  } else {
    for (int i = 0; i <= 5; ++i) {
      xs.push_back(lo + (hi - lo) * i / 5);
    }
  }
  for (double x : xs) {
    svg << "<line x1='" << px(x) << "' y1='" << top << "' x2='" << px(x) << "' y2='" << top + height
        << "' stroke='#eee'/><text x='" << px(x) << "' y='" << top + height + 16
        << "' text-anchor='middle'>" << label_of(x) << "</text>";
  }
  svg << "<text x='" << left + width / 2 << "' y='" << top + height + 36
      << "' text-anchor='middle'>" << escape(chart.x_label) << "</text>";
  svg << "<text x='14' y='" << top + height / 2
      << "' text-anchor='middle' transform='rotate(-90 14 " << top + height / 2 << ")'>"
      << escape(chart.y_label) << "</text>";
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const char* colour = kColours[i % 8];
    std::string path;
    for (const auto& [x, y] : s.points) {
      path += (path.empty() ? "M" : " L") + fixed(px(x), 1) + "," + fixed(py(y), 1);
    }
    svg << "<path d='" << path << "' fill='none' stroke='" << colour << "' stroke-width='2'/>";
    for (const auto& [x, y] : s.points) {
      svg << "<circle cx='" << px(x) << "' cy='" << py(y) << "' r='3' fill='" << colour
          << "'><title>" << escape(s.label) << ": " << label_of(x) << " → " << fixed(y, 2)
          << "</title></circle>";
    }
    svg << "<rect x='" << left + width + 14 << "' y='" << top + 4 + 16.0 * static_cast<double>(i)
        << "' width='12' height='3' fill='" << colour << "'/><text x='" << left + width + 32
        << "' y='" << top + 9 + 16.0 * static_cast<double>(i) << "'>" << escape(s.label)
        << "</text>";
  }
  svg << "</svg>";
  return svg.str();
}

}  // namespace archipel::sim::plot
