#pragma once

// Writes metrics in the Prometheus text exposition format (version 0.0.4), the format every
// Kubernetes component serves on /metrics. Collectors render their current values at scrape
// time: nothing is registered globally.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace archipel::base {

class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  /// Starts a metric family: its HELP and TYPE lines ("counter", "gauge", "histogram").
  void family(std::string_view name, std::string_view type, std::string_view help);
  /// One sample of the current family (or of `name` with a suffix such as _bucket).
  void sample(std::string_view name, Labels labels, double value);
  void sample(std::string_view name, Labels labels, std::uint64_t value);

  [[nodiscard]] const std::string& text() const noexcept { return out_; }
  [[nodiscard]] std::string take() { return std::move(out_); }

  /// The Content-Type to serve it with.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void labels(Labels labels);
  std::string out_;
};

}  // namespace archipel::base
