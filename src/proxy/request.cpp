#include "archipel/proxy/request.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <span>

namespace archipel::proxy {

const char* to_string(Verb verb) noexcept {
  switch (verb) {
    case Verb::kGet: return "get";
    case Verb::kList: return "list";
    case Verb::kWatch: return "watch";
    case Verb::kCreate: return "create";
    case Verb::kUpdate: return "update";
    case Verb::kPatch: return "patch";
    case Verb::kDelete: return "delete";
    case Verb::kDeleteCollection: return "deletecollection";
    case Verb::kOther: break;
  }
  return "other";
}

namespace {

// A resource path has at most 8 segments (/apis/G/V/namespaces/NS/R/NAME/SUB).
using PathSegments = boost::container::small_vector<std::string_view, 8>;

PathSegments split_path(std::string_view path) {
  PathSegments parts;
  std::size_t begin = 0;
  while (begin < path.size()) {
    std::size_t end = path.find('/', begin);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (end > begin) {
      parts.push_back(path.substr(begin, end - begin));
    }
    begin = end + 1;
  }
  return parts;
}

// HTTP field names are ASCII: Beast's comparison folds them without the C locale
// (std::tolower is a call per byte).
bool iequals(std::string_view a, std::string_view b) noexcept {
  return boost::beast::iequals(a, b);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] != '%') {
      out += in[i];
    } else {
      const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
      if (lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

std::string percent_encode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    }
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
  }
  return std::nullopt;
}

std::string with_query_param(std::string_view target, std::string_view key,
                             std::optional<std::string_view> value) {
  const std::size_t q = target.find('?');
  std::string out(target.substr(0, q));
  std::string query;
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      const std::size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      if (!pair.empty() && pair.substr(0, pair.find('=')) != key) {
        query += query.empty() ? "" : "&";
        query += pair;
      }
      rest = amp == std::string_view::npos ? "" : rest.substr(amp + 1);
    }
  }
  if (value) {
    query += query.empty() ? "" : "&";
    query += std::string(key) + "=" + percent_encode(*value);
  }
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  return out;
}

RequestInfo classify(std::string_view method, std::string_view path, bool watch) {
  RequestInfo info;
  const PathSegments all = split_path(path);
  std::span<const std::string_view> parts(all.data(), all.size());
  if (!parts.empty() && parts[0] == "api" && parts.size() >= 2) {
    info.version = parts[1];
    parts = parts.subspan(2);
  } else if (!parts.empty() && parts[0] == "apis" && parts.size() >= 3) {
    info.group = parts[1];
    info.version = parts[2];
    parts = parts.subspan(3);
  } else {
    parts = {};  // not a resource path: discovery, /openapi, /version…
  }
  if (!parts.empty() && parts[0] == "namespaces" && parts.size() > 1) {
    info.namespace_ = parts[1];
    // As kube-apiserver: "namespaces/NS/status" is the namespace's subresource, and
    // "namespaces/NS/pods/…" a resource inside it.
    if (parts.size() > 2 && parts[2] != "status" && parts[2] != "finalize") {
      parts = parts.subspan(2);
    }
  }
  if (parts.empty()) {
    info.verb = method == "GET" || method == "HEAD" ? Verb::kGet : Verb::kOther;
    return info;
  }
  info.resource = parts[0];
  if (parts.size() > 1) {
    info.name = parts[1];
  }
  if (parts.size() > 2) {
    info.subresource = parts[2];
  }
  if (info.resource == "namespaces" && !info.name.empty()) {
    info.namespace_ = info.name;
  }
  const bool named = !info.name.empty();
  if (method == "GET" || method == "HEAD") {
    info.verb = watch ? Verb::kWatch : named ? Verb::kGet : Verb::kList;
  } else if (method == "POST") {
    info.verb = Verb::kCreate;
  } else if (method == "PUT") {
    info.verb = Verb::kUpdate;
  } else if (method == "PATCH") {
    info.verb = Verb::kPatch;
  } else if (method == "DELETE") {
    info.verb = named ? Verb::kDelete : Verb::kDeleteCollection;
  }
  return info;
}

boost::system::result<std::optional<std::string>, std::string> take_path_scope(
    std::string& target) {
  constexpr std::string_view kPrefix = "/scope/";
  if (!std::string_view(target).starts_with(kPrefix)) {
    return boost::system::result<std::optional<std::string>, std::string>(
        boost::system::in_place_value);
  }
  const std::size_t end = target.find_first_of("/?", kPrefix.size());
  const std::string_view encoded =
      std::string_view(target).substr(kPrefix.size(), end - std::min(end, kPrefix.size()));
  using Result = boost::system::result<std::optional<std::string>, std::string>;
  if (encoded.empty()) {
    return Result(boost::system::in_place_error,
                  "path prefix '/scope/' without an expression (use /scope/<url-encoded "
                  "expression>/api/…)");
  }
  auto text = percent_decode(encoded);
  if (!text) {
    return Result(
        boost::system::in_place_error,
        "bad percent-encoding in the scope of the path prefix '" + std::string(encoded) + "'");
  }
  if (end == std::string::npos || target[end] == '?') {
    target = "/" + (end == std::string::npos ? std::string() : target.substr(end));
  } else {
    target.erase(0, end);
  }
  return Result(boost::system::in_place_value, std::move(*text));
}

std::optional<std::string> annotation_scope(std::string_view body) {
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 512;  // objects nest deeper than Boost.JSON's default of 32
  const boost::json::value doc = boost::json::parse(body, ec, {}, options);
  if (ec || !doc.is_object()) {
    return std::nullopt;
  }
  const auto* metadata = doc.as_object().if_contains("metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    return std::nullopt;
  }
  const auto* annotations = metadata->as_object().if_contains("annotations");
  if (annotations == nullptr || !annotations->is_object()) {
    return std::nullopt;
  }
  const auto* scope = annotations->as_object().if_contains(kScopeAnnotation);
  if (scope == nullptr || !scope->is_string()) {
    return std::nullopt;
  }
  return std::string(scope->as_string());
}

std::string_view find_header(const Headers& headers, std::string_view name) noexcept {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return {};
}

namespace {
// One of `names`, ignoring case. Sizes are compared first, inline: most names differ in size.
template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& names, std::string_view name) noexcept {
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) {
    return n.size() == name.size() && iequals(n, name);
  });
}
}  // namespace

bool forwarded_request_header(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 5> kForwarded = {
      "accept", "content-type", "user-agent", "kubectl-command", "kubectl-session"};
  return one_of(kForwarded, name);
}

bool forwarded_response_header(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 8> kDropped = {"connection",
                                                               "keep-alive",
                                                               "transfer-encoding",
                                                               "content-length",
                                                               "proxy-connection",
                                                               "upgrade",
                                                               "te",
                                                               "trailer"};
  return !one_of(kDropped, name);
}

}  // namespace archipel::proxy
