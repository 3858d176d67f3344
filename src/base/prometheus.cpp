#include "archipel/base/prometheus.hpp"

#include <cmath>
#include <cstdio>

namespace archipel::base {

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes backslash and newline
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::labels(Labels labels) {
  if (labels.size() == 0) {
    return;
  }
  out_ += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) {
      out_ += ',';
    }
    first = false;
    out_ += key;
    out_ += "=\"";
    for (char c : value) {  // label values escape backslash, quote and newline
      if (c == '\\' || c == '"') {
        out_ += '\\';
        out_ += c;
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }
  out_ += '}';
}

void PrometheusText::sample(std::string_view name, Labels label_set, double value) {
  out_ += name;
  labels(label_set);
  out_ += ' ';
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out_ += buf;
  }
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, Labels label_set, std::uint64_t value) {
  out_ += name;
  labels(label_set);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

}  // namespace archipel::base
