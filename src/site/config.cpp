#include "archipel/site/config.hpp"

#include "archipel/dsl/scope.hpp"
#include "archipel/kube/resource.hpp"
#include "archipel/peer/identity.hpp"

#include <yaml-cpp/yaml.h>
#include <boost/assert/source_location.hpp>
#include <boost/throw_exception.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace archipel::site {

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string ConfigError::render() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  out += ": ";
  if (!key.empty()) {
    out += key + ": ";
  }
  return out + message;
}

void throw_exception_from_error(const ConfigError& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.render()), loc);
}

boost::system::result<Endpoint, std::string> parse_endpoint(std::string_view text) {
  using Result = boost::system::result<Endpoint, std::string>;
  const Result expected(
      boost::system::in_place_error,
      "expected HOST:PORT (e.g. 127.0.0.1:7100), got '" + std::string(text) + "'");
  Endpoint e;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return expected;
    }
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return expected;
    }
    e.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  const bool host_ok = !e.host.empty() && std::all_of(e.host.begin(), e.host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
  });
  if (!host_ok) {
    return expected;
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Result(boost::system::in_place_error,
                  "port must be a number from 0 to 65535, got '" + std::string(port) + "'");
  }
  e.port = static_cast<std::uint16_t>(value);
  return e;
}

namespace {

// Walks the YAML tree; the first problem is thrown as ConfigError and caught at the boundary
// (startup code, where the style guide allows exceptions).
class Reader {
 public:
  explicit Reader(std::filesystem::path file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key,
                         std::string message) const {
    const int line = node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    throw ConfigError{file_.string(), line, key, std::move(message)};
  }

  void only_keys(const YAML::Node& map, const std::string& prefix,
                 std::initializer_list<std::string_view> allowed) const {
    for (const auto& entry : map) {
      const std::string name = entry.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (std::string_view a : allowed) {
          list += (list.empty() ? "" : ", ") + std::string(a);
        }
        fail(entry.first, join(prefix, name), "unknown key (expected one of: " + list + ")");
      }
    }
  }

  YAML::Node map(const YAML::Node& parent, const std::string& prefix, const std::string& name,
                 bool required) const {
    const YAML::Node node = parent[name];
    if (!node.IsDefined() || node.IsNull()) {
      if (required) {
        fail(parent, join(prefix, name), "missing (required)");
      }
      return YAML::Node(YAML::NodeType::Undefined);
    }
    if (!node.IsMap()) {
      fail(node, join(prefix, name), "expected a mapping of keys to values");
    }
    return node;
  }

  std::optional<std::string> scalar(const YAML::Node& parent, const std::string& prefix,
                                    const std::string& name, bool required) const {
    const YAML::Node node = parent[name];
    if (!node.IsDefined() || node.IsNull()) {
      if (required) {
        fail(parent, join(prefix, name), "missing (required)");
      }
      return std::nullopt;
    }
    if (!node.IsScalar()) {
      fail(node, join(prefix, name), "expected a single value");
    }
    return node.Scalar();
  }

  Endpoint endpoint(const YAML::Node& parent, const std::string& prefix,
                    const std::string& name) const {
    const std::string text = *scalar(parent, prefix, name, true);
    auto e = parse_endpoint(text);
    if (!e) {
      fail(parent[name], join(prefix, name), e.error());
    }
    return *e;
  }

  std::filesystem::path path(const std::string& text) const {
    std::filesystem::path p(text);
    return p.is_relative() ? file_.parent_path() / p : p;
  }

  static std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }

 private:
  std::filesystem::path file_;
};

// "100ms", "2s", or a bare number of milliseconds.
std::optional<std::int64_t> parse_milliseconds(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (ec != std::errc() || value < 0 || value > 86'400'000) {
    return std::nullopt;
  }
  if (unit.empty() || unit == "ms") {
    return value;
  }
  if (unit == "s") {
    return value * 1000;
  }
  return std::nullopt;
}

void check_site_name(const Reader& r, const YAML::Node& node, const std::string& key,
                     const std::string& name) {
  if (!dsl::is_dns1123_label(name)) {
    r.fail(node, key,
           "'" + name +
               "' is not a valid site name (a DNS-1123 label: at most 63 lowercase "
               "letters, digits and '-', starting and ending with a letter or digit)");
  }
}

SiteConfig read(const Reader& r, const YAML::Node& root) {
  if (!root.IsMap()) {
    r.fail(root, "", "expected a mapping at the top level (site:, listen:, peers:, cluster:)");
  }
  r.only_keys(root, "",
              {"site", "listen", "tls", "data", "identity", "peers", "cluster", "failure_detector",
               "sharing", "clients", "log"});

  SiteConfig c;
  c.name = *r.scalar(root, "", "site", true);
  check_site_name(r, root["site"], "site", c.name);

  const YAML::Node listen = r.map(root, "", "listen", true);
  r.only_keys(listen, "listen", {"api", "peer"});
  c.api = r.endpoint(listen, "listen", "api");
  c.peer = r.endpoint(listen, "listen", "peer");
  if (c.api == c.peer) {
    r.fail(listen["peer"], "listen.peer", "same address as listen.api; each needs its own port");
  }

  if (const YAML::Node tls = r.map(root, "", "tls", false); tls.IsDefined()) {
    r.only_keys(tls, "tls", {"cert_file", "key_file"});
    c.api_tls_cert_file = r.path(*r.scalar(tls, "tls", "cert_file", true));
    c.api_tls_key_file = r.path(*r.scalar(tls, "tls", "key_file", true));
  }

  const auto data = r.scalar(root, "", "data", false);
  c.data_dir = data ? r.path(*data) : std::filesystem::path("/var/lib/archipel") / c.name;
  if (auto identity = r.scalar(root, "", "identity", false)) {
    c.identity = r.path(*identity);
  }

  if (const YAML::Node peers = root["peers"]; peers.IsDefined() && !peers.IsNull()) {
    if (!peers.IsSequence()) {
      r.fail(peers, "peers", "expected a list of {name, address}");
    }
    for (std::size_t i = 0; i < peers.size(); ++i) {
      const std::string key = "peers[" + std::to_string(i) + "]";
      const YAML::Node p = peers[i];
      if (!p.IsMap()) {
        r.fail(p, key, "expected {name: SITE, address: HOST:PORT}");
      }
      r.only_keys(p, key, {"name", "address", "public_key"});
      PeerConfig peer{*r.scalar(p, key, "name", true), r.endpoint(p, key, "address"), ""};
      if (auto pk = r.scalar(p, key, "public_key", false)) {
        if (auto decoded = peer::decode_public_key(*pk); !decoded) {
          r.fail(p["public_key"], key + ".public_key", decoded.error());
        }
        peer.public_key = *pk;
      }
      check_site_name(r, p["name"], key + ".name", peer.name);
      if (peer.name == c.name) {
        r.fail(p["name"], key + ".name", "'" + peer.name + "' is this site itself");
      }
      for (const PeerConfig& earlier : c.peers) {
        if (earlier.name == peer.name) {
          r.fail(p["name"], key + ".name", "peer '" + peer.name + "' is listed twice");
        }
      }
      if (!c.identity.empty() && peer.public_key.empty()) {
        r.fail(p, key + ".public_key", "required when the site has an identity");
      }
      c.peers.push_back(std::move(peer));
    }
  }

  const YAML::Node cluster = r.map(root, "", "cluster", true);
  const std::string mode = *r.scalar(cluster, "cluster", "mode", true);
  if (mode == "embedded") {
    r.only_keys(cluster, "cluster", {"mode", "listen", "tls_cert_file", "tls_key_file"});
    c.cluster.mode = ClusterConfig::Mode::kEmbedded;
    c.cluster.listen = r.endpoint(cluster, "cluster", "listen");
    if (auto cert = r.scalar(cluster, "cluster", "tls_cert_file", false)) {
      c.cluster.tls_cert_file = r.path(*cert);
    }
    if (auto key = r.scalar(cluster, "cluster", "tls_key_file", false)) {
      c.cluster.tls_key_file = r.path(*key);
    }
    if (c.cluster.tls_cert_file.empty() != c.cluster.tls_key_file.empty()) {
      r.fail(cluster, "cluster",
             "tls_cert_file and tls_key_file go together: give both or neither");
    }
    if (c.cluster.listen == c.api || c.cluster.listen == c.peer) {
      r.fail(cluster["listen"], "cluster.listen", "same address as a listen: endpoint");
    }
  } else if (mode == "external") {
    r.only_keys(cluster, "cluster",
                {"mode", "url", "token_file", "ca_file", "client_cert_file", "client_key_file",
                 "insecure_skip_tls_verify"});
    c.cluster.mode = ClusterConfig::Mode::kExternal;
    c.cluster.url = *r.scalar(cluster, "cluster", "url", true);
    if (!c.cluster.url.starts_with("https://") && !c.cluster.url.starts_with("http://")) {
      r.fail(cluster["url"], "cluster.url",
             "expected the kube-apiserver's URL (https://HOST:PORT), got '" + c.cluster.url + "'");
    }
    auto file = [&](const char* name) {
      auto v = r.scalar(cluster, "cluster", name, false);
      return v ? r.path(*v) : std::filesystem::path();
    };
    c.cluster.token_file = file("token_file");
    c.cluster.ca_file = file("ca_file");
    c.cluster.client_cert_file = file("client_cert_file");
    c.cluster.client_key_file = file("client_key_file");
    if (c.cluster.client_cert_file.empty() != c.cluster.client_key_file.empty()) {
      r.fail(cluster, "cluster",
             "client_cert_file and client_key_file go together: give both or neither");
    }
    if (auto v = r.scalar(cluster, "cluster", "insecure_skip_tls_verify", false)) {
      if (*v != "true" && *v != "false") {
        r.fail(cluster["insecure_skip_tls_verify"], "cluster.insecure_skip_tls_verify",
               "expected true or false, got '" + *v + "'");
      }
      c.cluster.insecure_skip_tls_verify = *v == "true";
    }
  } else {
    r.fail(cluster["mode"], "cluster.mode",
           "expected 'embedded' or 'external', got '" + mode + "'");
  }

  if (const YAML::Node fd = r.map(root, "", "failure_detector", false); fd.IsDefined()) {
    r.only_keys(fd, "failure_detector", {"heartbeat", "suspect_phi", "down_phi"});
    if (auto hb = r.scalar(fd, "failure_detector", "heartbeat", false)) {
      auto ms = parse_milliseconds(*hb);
      if (!ms || *ms < 10 || *ms > 60'000) {
        r.fail(fd["heartbeat"], "failure_detector.heartbeat",
               "expected a duration from 10ms to 60s (e.g. 100ms, 1s), got '" + *hb + "'");
      }
      c.detector.heartbeat = std::chrono::milliseconds(*ms);
    }
    for (const char* key : {"suspect_phi", "down_phi"}) {
      if (auto v = r.scalar(fd, "failure_detector", key, false)) {
        double phi = 0;
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), phi);
        if (ec != std::errc() || end != v->data() + v->size() || phi <= 0 || phi > 100) {
          r.fail(fd[key], std::string("failure_detector.") + key,
                 "expected a number above 0 and at most 100, got '" + *v + "'");
        }
        (std::string_view(key) == "down_phi" ? c.detector.down_phi : c.detector.suspect_phi) = phi;
      }
    }
    if (c.detector.suspect_phi >= c.detector.down_phi) {
      r.fail(fd, "failure_detector",
             "suspect_phi must be below down_phi (a peer is Suspected before it is Down)");
    }
  }

  if (const YAML::Node sharing = r.map(root, "", "sharing", false); sharing.IsDefined()) {
    r.only_keys(sharing, "sharing", {"kinds", "local_fields"});
    if (const YAML::Node fields = sharing["local_fields"]; fields.IsDefined()) {
      if (!fields.IsSequence()) {
        r.fail(fields, "sharing.local_fields", "expected a list of dotted paths (spec.replicas)");
      }
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const std::string path = fields[i].IsScalar() ? fields[i].Scalar() : "";
        const bool top = path.starts_with("metadata") || path.starts_with("apiVersion") ||
                         path.starts_with("kind") || path.find('.') == std::string::npos;
        if (path.empty() || path.front() == '.' || path.back() == '.' ||
            path.find("..") != std::string::npos || top) {
          r.fail(fields[i], "sharing.local_fields[" + std::to_string(i) + "]",
                 "expected a dotted path inside the object's body (spec.replicas), got '" + path +
                     "'");
        }
        c.sharing.local_fields.push_back(path);
      }
    }
    const YAML::Node kinds = sharing["kinds"];
    if (kinds.IsDefined() && (!kinds.IsSequence() || kinds.size() == 0)) {
      r.fail(kinds, "sharing.kinds",
             "expected a list of namespaced resources (e.g. [configmaps, deployments])");
    }
    for (std::size_t i = 0; kinds.IsDefined() && i < kinds.size(); ++i) {
      const std::string name = kinds[i].IsScalar() ? kinds[i].Scalar() : "";
      const bool shareable = std::any_of(
          kube::resource_types().begin(), kube::resource_types().end(),
          [&](const kube::ResourceType& t) { return t.namespaced && t.plural == name; });
      if (!shareable) {
        r.fail(kinds[i], "sharing.kinds[" + std::to_string(i) + "]",
               "'" + name + "' is not a namespaced resource this site knows (e.g. configmaps)");
      }
      c.sharing.kinds.push_back(name);
    }
  }

  if (const YAML::Node clients = r.map(root, "", "clients", false); clients.IsDefined()) {
    r.only_keys(clients, "clients", {"tokens"});
    const YAML::Node tokens = clients["tokens"];
    if (!tokens.IsSequence()) {
      r.fail(tokens.IsDefined() ? tokens : clients, "clients.tokens",
             "expected a list of {user, token_file, sites}");
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string key = "clients.tokens[" + std::to_string(i) + "]";
      const YAML::Node t = tokens[i];
      if (!t.IsMap()) {
        r.fail(t, key, "expected {user: NAME, token_file: PATH, sites: [SITE, ...]}");
      }
      r.only_keys(t, key, {"user", "token_file", "sites"});
      ClientTokenConfig token;
      token.user = *r.scalar(t, key, "user", true);
      const std::filesystem::path file = r.path(*r.scalar(t, key, "token_file", true));
      auto secret = read_token_file(file);
      if (!secret) {
        r.fail(t["token_file"], key + ".token_file",
               "cannot read a token from '" + file.string() + "'");
      }
      token.token = std::move(*secret);
      if (const YAML::Node sites = t["sites"]; sites.IsDefined()) {
        if (!sites.IsSequence()) {
          r.fail(sites, key + ".sites", "expected a list of site names");
        }
        for (std::size_t j = 0; j < sites.size(); ++j) {
          const std::string site_key = key + ".sites[" + std::to_string(j) + "]";
          const std::string name = sites[j].IsScalar() ? sites[j].Scalar() : "";
          const bool known =
              name == c.name || std::any_of(c.peers.begin(), c.peers.end(),
                                            [&](const PeerConfig& p) { return p.name == name; });
          if (!known) {
            r.fail(sites[j], site_key, "'" + name + "' is neither this site nor one of its peers");
          }
          token.sites.push_back(name);
        }
      }
      for (const ClientTokenConfig& earlier : c.client_tokens) {
        if (earlier.token == token.token) {
          r.fail(t, key, "the same token as user '" + earlier.user + "'");
        }
      }
      c.client_tokens.push_back(std::move(token));
    }
  }

  if (const YAML::Node log = r.map(root, "", "log", false); log.IsDefined()) {
    r.only_keys(log, "log", {"level"});
    if (auto level = r.scalar(log, "log", "level", false)) {
      auto parsed = base::parse_log_level(*level);
      if (!parsed) {
        r.fail(log["level"], "log.level",
               "expected trace, debug, info, warn, error or off, got '" + *level + "'");
      }
      c.log_level = *parsed;
    }
  }
  return c;
}

}  // namespace

boost::system::result<SiteConfig, ConfigError> parse_site_config(
    std::string_view yaml, const std::filesystem::path& file) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    SiteConfig c = read(Reader(file), root);
    c.source = file;
    return c;
  } catch (const ConfigError& e) {
    return e;
  } catch (const YAML::Exception& e) {
    return ConfigError{file.string(), e.mark.line >= 0 ? e.mark.line + 1 : 0, "",
                       "not valid YAML: " + e.msg};
  }
}

std::optional<std::string> read_token_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (!in || token.empty()) {
    return std::nullopt;
  }
  return token;
}

boost::system::result<SiteConfig, ConfigError> load_site_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return ConfigError{file.string(), 0, "",
                       std::string("cannot read the file: ") + std::strerror(errno)};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_site_config(text.str(), file);
}

}  // namespace archipel::site
