#pragma once
// Plots as inline SVG for the simulation reports (no script, no network): line charts with a
// linear or logarithmic x axis, and the few text helpers the reports share.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archipel::sim::plot {

/// Text made safe inside HTML and SVG.
std::string escape(std::string_view s);
/// `v` with `digits` decimals.
std::string fixed(double v, int digits = 1);
/// A round upper bound for an axis (1, 2, 2.5, 5 × 10^k) at or above `v`.
double axis_max(double v);

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  ///< x, y
};

struct LineChart {
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  std::vector<Series> series;
};

/// A line chart with its axes, ticks and legend.
std::string line_chart(const LineChart& chart);

}  // namespace archipel::sim::plot
