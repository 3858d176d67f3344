#pragma once

// The same JSON whatever the order of object members, for comparisons that print well (gtest
// does not print boost::json values, and serialize keeps insertion order).

#include <boost/json/value.hpp>

#include <map>
#include <string_view>

namespace archipel::testing {

inline boost::json::value canonical(const boost::json::value& v) {
  if (const boost::json::object* o = v.if_object()) {
    std::map<std::string_view, const boost::json::value*> sorted;
    for (const auto& [k, x] : *o) {
      sorted[k] = &x;
    }
    boost::json::object out;
    for (const auto& [k, x] : sorted) {
      out.emplace(k, canonical(*x));
    }
    return out;
  }
  if (const boost::json::array* a = v.if_array()) {
    boost::json::array out;
    for (const boost::json::value& x : *a) {
      out.push_back(canonical(x));
    }
    return out;
  }
  return v;
}

}  // namespace archipel::testing
