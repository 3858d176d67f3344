#pragma once

// The OpenAPI v3 documents kubectl reads before it writes: the root index (/openapi/v3) and one
// document per group-version (/openapi/v3/api/v1, /openapi/v3/apis/apps/v1). They describe each
// served kind's paths and operations with Kubernetes' vendor extensions, so that kubectl sees the
// server validates fields itself (the fieldValidation parameter) and leaves validation to it.

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

namespace archipel::cluster {

[[nodiscard]] boost::json::object openapi_v3_root();

/// The document for "api/v1" or "apis/GROUP/VERSION"; nullopt for anything else.
[[nodiscard]] std::optional<boost::json::object> openapi_v3_document(
    std::string_view group_version);

}  // namespace archipel::cluster
