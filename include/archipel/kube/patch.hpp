#pragma once

// The three patch formats of the Kubernetes API, applied to JSON documents. Pure functions; the
// error is a sentence for the Status the API server returns.

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace archipel::kube {

using PatchResult = boost::system::result<boost::json::value, std::string>;

/// RFC 7386 JSON merge patch (application/merge-patch+json).
[[nodiscard]] boost::json::value apply_merge_patch(boost::json::value target,
                                                   const boost::json::value& patch);

/// RFC 6902 JSON patch (application/json-patch+json): add, remove, replace, move, copy, test.
[[nodiscard]] PatchResult apply_json_patch(boost::json::value target,
                                           const boost::json::value& patch);

/// Kubernetes strategic merge patch (application/strategic-merge-patch+json) for an object of
/// `kind`: lists with merge keys (schema.hpp) merge element-wise, and the directives
/// $patch (replace, delete, merge), $retainKeys, $setElementOrder/<list> and
/// $deleteFromPrimitiveList/<list> are honoured.
[[nodiscard]] PatchResult apply_strategic_merge_patch(boost::json::value target,
                                                      const boost::json::value& patch,
                                                      std::string_view kind);

}  // namespace archipel::kube
