#include "archipel/proxy/merge.hpp"

#include "archipel/kube/object.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace archipel::proxy {

namespace json = boost::json;

std::string_view SiteAnswer::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

namespace {

// Composite tokens: "arc1." and the base64url (no padding) of a JSON object {site: value}, so
// that they pass through query strings unencoded.
constexpr std::string_view kCompositePrefix = "arc1.";

std::string base64url(std::string_view in) {
  std::string out = kube::base64_encode(in);
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  if (in.find_first_of("+/=") != std::string_view::npos) {
    return std::nullopt;
  }
  std::string text(in);
  std::replace(text.begin(), text.end(), '-', '+');
  std::replace(text.begin(), text.end(), '_', '/');
  text.append((4 - text.size() % 4) % 4, '=');
  std::string out;
  if (!kube::base64_decode(text, out)) {
    return std::nullopt;
  }
  return out;
}

json::object* metadata_of(json::object& o) {
  json::value* m = o.if_contains("metadata");
  if (m == nullptr || !m->is_object()) {
    m = &o["metadata"];
    *m = json::object();
  }
  return &m->as_object();
}

void annotate(json::object& o, std::string_view site) {
  json::object* metadata = metadata_of(o);
  json::value* annotations = metadata->if_contains("annotations");
  if (annotations == nullptr || !annotations->is_object()) {
    annotations = &(*metadata)["annotations"];
    *annotations = json::object();
  }
  annotations->as_object()[kSiteAnnotation] = site;
}

bool is_table(const json::object& o) {
  const json::value* kind = o.if_contains("kind");
  return kind != nullptr && kind->is_string() && kind->as_string() == "Table";
}

json::object site_column() {
  return json::object{{"name", "Site"},
                      {"type", "string"},
                      {"format", ""},
                      {"description", "The site this row comes from (annotation archipel.io/site)"},
                      {"priority", 0}};
}

// A Table's rows get their site as the first cell (and on their object); the Site column is
// defined when the table defines columns.
void annotate_table(json::object& table, std::string_view site) {
  json::value* definitions = table.if_contains("columnDefinitions");
  if (definitions != nullptr && definitions->is_array() && !definitions->as_array().empty()) {
    json::array& d = definitions->as_array();
    d.insert(d.begin(), site_column());
  }
  json::value* rows = table.if_contains("rows");
  if (rows == nullptr || !rows->is_array()) {
    return;
  }
  for (json::value& row : rows->as_array()) {
    if (!row.is_object()) {
      continue;
    }
    json::value& cells = row.as_object()["cells"];
    if (!cells.is_array()) {
      cells = json::array();
    }
    cells.as_array().insert(cells.as_array().begin(), json::value(site));
    json::value* object = row.as_object().if_contains("object");
    if (object != nullptr && object->is_object()) {
      annotate(object->as_object(), site);
    }
  }
}

std::optional<json::object> parse_object(std::string_view body) {
  boost::system::error_code ec;
  // Objects nest deeper than Boost.JSON's default limit of 32 (CRDs with deep schemas).
  json::parse_options options;
  options.max_depth = 512;
  json::value v = json::parse(body, ec, {}, options);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.as_object());
}

std::string meta_field(const json::object& o, std::string_view field) {
  const json::value* m = o.if_contains("metadata");
  if (m == nullptr || !m->is_object()) {
    return {};
  }
  const json::value* v = m->as_object().if_contains(field);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

void set_meta_field(json::object& o, std::string_view field, std::string value) {
  json::object* metadata = metadata_of(o);
  if (value.empty()) {
    metadata->erase(field);
  } else {
    (*metadata)[field] = std::move(value);
  }
}

}  // namespace

std::string encode_composite(const SiteValues& values) {
  json::object o;
  for (const auto& [site, value] : values) {
    o[site] = value;
  }
  return std::string(kCompositePrefix) + base64url(json::serialize(o));
}

bool is_composite(std::string_view token) noexcept {
  return token.starts_with(kCompositePrefix);
}

boost::system::result<SiteValues, std::string> decode_composite(std::string_view token) {
  const std::string bad = "invalid composite version or token '" +
                          std::string(token.substr(0, 80)) + "' (not one this proxy issued)";
  if (!is_composite(token)) {
    return bad;
  }
  auto text = unbase64url(token.substr(kCompositePrefix.size()));
  if (!text) {
    return bad;
  }
  auto o = parse_object(*text);
  if (!o) {
    return bad;
  }
  SiteValues values;
  for (const auto& [site, value] : *o) {
    if (!value.is_string()) {
      return bad;
    }
    values.emplace(std::string(site), std::string(value.as_string()));
  }
  return values;
}

Merged merge_lists(std::span<const SiteAnswer> answers, std::vector<std::string>& warnings) {
  std::optional<json::object> merged;
  SiteValues versions;
  SiteValues continues;
  json::array items;
  for (const SiteAnswer& a : answers) {
    auto o = parse_object(a.body);
    const bool table = o && is_table(*o);
    json::value* list = o ? o->if_contains(table ? "rows" : "items") : nullptr;
    if (list == nullptr || !(list->is_array() || list->is_null())) {
      warnings.push_back(a.site + ": the answer is not a list");
      continue;
    }
    if (table) {
      annotate_table(*o, a.site);
    } else if (list->is_array()) {
      for (json::value& item : list->as_array()) {
        if (item.is_object()) {
          annotate(item.as_object(), a.site);
        }
      }
    }
    if (list->is_array()) {
      for (json::value& item : list->as_array()) {
        items.push_back(std::move(item));
      }
    }
    versions[a.site] = meta_field(*o, "resourceVersion");
    if (std::string token = meta_field(*o, "continue"); !token.empty()) {
      continues[a.site] = std::move(token);
    }
    if (!merged) {
      merged = std::move(*o);
    }
  }
  if (!merged) {
    return Merged{502, "application/json", ""};
  }
  (*merged)[is_table(*merged) ? "rows" : "items"] = std::move(items);
  set_meta_field(*merged, "resourceVersion", encode_composite(versions));
  set_meta_field(*merged, "continue", continues.empty() ? "" : encode_composite(continues));
  // A remaining count is per site: the sum would be a guess, so none is reported.
  metadata_of(*merged)->erase("remainingItemCount");
  return Merged{200, "application/json", json::serialize(*merged)};
}

Merged merge_gets(std::span<const SiteAnswer> answers, std::vector<std::string>& warnings) {
  std::optional<json::object> table;
  json::array items;
  for (const SiteAnswer& a : answers) {
    auto o = parse_object(a.body);
    if (!o) {
      warnings.push_back(a.site + ": the answer is not a JSON object");
      continue;
    }
    if (is_table(*o)) {
      annotate_table(*o, a.site);
      if (!table) {
        table = std::move(*o);
        continue;
      }
      json::value* rows = o->if_contains("rows");
      if (rows != nullptr && rows->is_array()) {
        json::value& into = (*table)["rows"];
        if (!into.is_array()) {
          into = json::array();
        }
        for (json::value& row : rows->as_array()) {
          into.as_array().push_back(std::move(row));
        }
      }
      continue;
    }
    annotate(*o, a.site);
    items.push_back(std::move(*o));
  }
  if (table) {
    metadata_of(*table)->erase("resourceVersion");
    return Merged{200, "application/json", json::serialize(*table)};
  }
  if (items.size() ==
      1) {  // one site has it: the object itself, so kubectl logs/exec/describe work
    return Merged{200, "application/json", json::serialize(items.front())};
  }
  json::object list{{"apiVersion", "v1"},
                    {"kind", "List"},
                    {"metadata", json::object{{"resourceVersion", ""}}},
                    {"items", std::move(items)}};
  return Merged{200, "application/json", json::serialize(list)};
}

std::string annotate_object(std::string_view body, std::string_view site) {
  auto o = parse_object(body);
  if (!o) {
    return std::string(body);
  }
  annotate(*o, site);
  return json::serialize(*o);
}

std::string rewrite_watch_event(std::string_view line, std::string_view site,
                                SiteValues& versions) {
  auto event = parse_object(line);
  json::value* object = event ? event->if_contains("object") : nullptr;
  const json::value* type = event ? event->if_contains("type") : nullptr;
  if (object == nullptr || !object->is_object() || type == nullptr || !type->is_string()) {
    return std::string(line);
  }
  json::object& o = object->as_object();
  if (type->as_string() == "ERROR") {
    annotate(o, site);  // a Status: say whose
    return json::serialize(*event) + "\n";
  }
  if (is_table(o)) {
    annotate_table(o, site);
  } else if (type->as_string() != "BOOKMARK") {
    annotate(o, site);
  }
  if (std::string version = meta_field(o, "resourceVersion"); !version.empty()) {
    versions[std::string(site)] = std::move(version);
  }
  set_meta_field(o, "resourceVersion", encode_composite(versions));
  // A Table's rows carry their objects' versions too.
  if (json::value* rows = is_table(o) ? o.if_contains("rows") : nullptr;
      rows != nullptr && rows->is_array()) {
    for (json::value& row : rows->as_array()) {
      json::value* inner = row.is_object() ? row.as_object().if_contains("object") : nullptr;
      if (inner != nullptr && inner->is_object() &&
          !meta_field(inner->as_object(), "resourceVersion").empty()) {
        set_meta_field(inner->as_object(), "resourceVersion", encode_composite(versions));
      }
    }
  }
  return json::serialize(*event) + "\n";
}

std::string status_message(const SiteAnswer& answer) {
  if (auto o = parse_object(answer.body)) {
    const json::value* message = o->if_contains("message");
    if (message != nullptr && message->is_string() && !message->as_string().empty()) {
      return std::string(message->as_string());
    }
  }
  return "HTTP " + std::to_string(answer.status);
}

std::string warning_header(std::string_view text) {
  std::string out = "299 - \"";
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace archipel::proxy
