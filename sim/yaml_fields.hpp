#pragma once
// Reading the YAML of scenarios and studies (private to sim/): values with what they are for,
// and every mistake thrown as a Failure with its line, caught at the parser's entry.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>

namespace archipel::sim::yaml_fields {

struct Failure {
  int line;  ///< 1-based; 0 when unknown
  std::string message;
};

[[noreturn]] void fail(const YAML::Node& at, std::string message);

/// A scalar's text; a missing one, a list or a map is a Failure naming `what`.
std::string scalar(const YAML::Node& n, const std::string& what);
/// `map[key]`'s text, or `fallback` when absent.
std::string optional_scalar(const YAML::Node& map, const char* key, const std::string& what,
                            std::string fallback = {});
/// "500us", "20ms", "1.5s", "0".
std::chrono::milliseconds duration(const YAML::Node& n, const std::string& what);
std::chrono::microseconds fine_duration(const YAML::Node& n, const std::string& what);
unsigned number(const YAML::Node& n, const std::string& what, unsigned min, unsigned max);
double real(const YAML::Node& n, const std::string& what);
/// A map with no key but these.
void only_keys(const YAML::Node& map, const std::string& what,
               std::initializer_list<std::string_view> keys);

}  // namespace archipel::sim::yaml_fields
