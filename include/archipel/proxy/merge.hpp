#pragma once

// Merging the answers of several sites into the one answer a Kubernetes client expects: a
// List (or Table) whose items carry their site, composite resourceVersions and continue tokens
// that resume every site where it was, watch events rewritten the same way, and Kubernetes
// `Warning:` headers for the sites that did not answer. Pure: no I/O.

#include "archipel/proxy/request.hpp"

#include <boost/system/result.hpp>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace archipel::proxy {

/// One site's complete answer.
struct SiteAnswer {
  std::string site;
  unsigned status = 0;
  Headers headers;  ///< the forwarded ones
  std::string body;

  [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

/// Per-site values (resourceVersions, continue tokens) as one opaque token and back. A site
/// missing from a continue token has no more items.
using SiteValues = std::map<std::string, std::string, std::less<>>;
[[nodiscard]] std::string encode_composite(const SiteValues& values);
/// Whether `token` is one of ours (a client may also pass a site's own version).
[[nodiscard]] bool is_composite(std::string_view token) noexcept;
[[nodiscard]] boost::system::result<SiteValues, std::string> decode_composite(
    std::string_view token);

/// A merged answer: status, headers and body for the client.
struct Merged {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// Lists (or Tables) from several sites, all 2xx, into one: items (rows) annotated (a "Site"
/// column first) with their site, in the order of `answers`; resourceVersion and continue
/// composite. A site whose body is not a list is skipped and named in `warnings`.
[[nodiscard]] Merged merge_lists(std::span<const SiteAnswer> answers,
                                 std::vector<std::string>& warnings);

/// The object from each site (get over '&'): a List of them, each annotated, or one Table
/// with a row per site when the client asked for a Table. The object itself (annotated) when
/// only one site has it, so that kubectl logs, exec and describe work on it.
[[nodiscard]] Merged merge_gets(std::span<const SiteAnswer> answers,
                                std::vector<std::string>& warnings);

/// Annotates a JSON object (a written object echoed back) with its site; the body unchanged
/// when it is not a JSON object.
[[nodiscard]] std::string annotate_object(std::string_view body, std::string_view site);

/// One line of a site's watch stream rewritten for a merged watch: the object annotated (or
/// its Table rows given a Site cell, the column defined when the event defines columns), and
/// its resourceVersion replaced by the composite of `versions` after this event. `versions`
/// is updated. A line that is not a watch event comes back unchanged.
[[nodiscard]] std::string rewrite_watch_event(std::string_view line, std::string_view site,
                                              SiteValues& versions);

/// What a Status answer says, for a Warning ("pods \"x\" not found"), or the HTTP reason.
[[nodiscard]] std::string status_message(const SiteAnswer& answer);

/// A Kubernetes Warning header value: `299 - "text"` (quotes and backslashes escaped, control
/// characters dropped).
[[nodiscard]] std::string warning_header(std::string_view text);

}  // namespace archipel::proxy
