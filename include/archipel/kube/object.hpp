#pragma once

// Helpers over Kubernetes objects held as JSON, and Kubernetes' name rules.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>

namespace archipel::kube {

/// metadata (created empty when absent or not an object).
boost::json::object& metadata(boost::json::object& object);
/// The value at a path of object fields (`{"status", "phase"}`); nullptr when a step is missing
/// or not an object.
[[nodiscard]] const boost::json::value* find_path(const boost::json::object& object,
                                                  std::initializer_list<const char*> path);

/// A string field of metadata ("" when absent or not a string).
[[nodiscard]] std::string_view meta_string(const boost::json::object& object, std::string_view key);

/// RFC 1123 label (63 chars max) and subdomain (253 chars max), as Kubernetes validates names.
[[nodiscard]] bool is_dns1123_label(std::string_view s) noexcept;
[[nodiscard]] bool is_dns1123_subdomain(std::string_view s) noexcept;

/// "2026-11-23T01:24:37Z" (UTC, seconds), Kubernetes' metav1.Time.
[[nodiscard]] std::string rfc3339(std::chrono::system_clock::time_point t);
/// Parses rfc3339() output; nullopt-like epoch on failure.
[[nodiscard]] bool parse_rfc3339(std::string_view text, std::chrono::system_clock::time_point& out);

/// "5s", "3m", "2h", "4d" as kubectl prints ages (the largest unit that fits, like
/// k8s.io/apimachinery's HumanDuration, simplified).
[[nodiscard]] std::string human_duration(std::chrono::seconds d);

/// A random RFC 4122 version 4 UUID.
[[nodiscard]] std::string random_uuid();
/// Five random characters for generateName, from Kubernetes' alphabet (no vowels).
[[nodiscard]] std::string random_suffix();

/// Standard base64 (with padding), as Secret data is carried.
[[nodiscard]] std::string base64_encode(std::string_view bytes);
/// Returns false on malformed input.
[[nodiscard]] bool base64_decode(std::string_view text, std::string& out);

}  // namespace archipel::kube
