#include "yaml_fields.hpp"

#include "archipel/netem/units.hpp"

#include <algorithm>
#include <charconv>

namespace archipel::sim::yaml_fields {

void fail(const YAML::Node& at, std::string message) {
  throw Failure{at.IsDefined() ? at.Mark().line + 1 : 0, std::move(message)};
}

std::string scalar(const YAML::Node& n, const std::string& what) {
  if (!n.IsDefined() || n.IsNull()) {
    fail(n, what + ": missing");
  }
  if (!n.IsScalar()) {
    fail(n, what + ": expected a value, not a list or a map");
  }
  return n.Scalar();
}

std::string optional_scalar(const YAML::Node& map, const char* key, const std::string& what,
                            std::string fallback) {
  const YAML::Node n = map[key];
  return n.IsDefined() && !n.IsNull() ? scalar(n, what + "." + key) : fallback;
}

std::chrono::microseconds fine_duration(const YAML::Node& n, const std::string& what) {
  auto d = netem::parse_duration(scalar(n, what));
  if (!d) {
    fail(n, what + ": " + d.error());
  }
  return *d;
}

std::chrono::milliseconds duration(const YAML::Node& n, const std::string& what) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(fine_duration(n, what));
}

unsigned number(const YAML::Node& n, const std::string& what, unsigned min, unsigned max) {
  const std::string text = scalar(n, what);
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    fail(n, what + ": expected a whole number from " + std::to_string(min) + " to " +
                std::to_string(max) + ", got '" + text + "'");
  }
  return v;
}

double real(const YAML::Node& n, const std::string& what) {
  const std::string text = scalar(n, what);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    fail(n, what + ": expected a number, got '" + text + "'");
  }
  return v;
}

void only_keys(const YAML::Node& map, const std::string& what,
               std::initializer_list<std::string_view> keys) {
  if (!map.IsMap()) {
    fail(map, what + ": expected a map");
  }
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string known;
      for (std::string_view k : keys) {
        known += (known.empty() ? "" : ", ") + std::string(k);
      }
      fail(kv.first, what + ": unknown key '" + key + "' (known: " + known + ")");
    }
  }
}

}  // namespace archipel::sim::yaml_fields
