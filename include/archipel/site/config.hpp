#pragma once

// A site's configuration, read from YAML (sites/*.yaml; reference in docs/configuration.md).
// Loading happens once at startup; every problem is reported as one ConfigError naming the
// file, the line, the key and what is wrong.

#include "archipel/base/log.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost {
struct source_location;
}

namespace archipel::site {

/// A TCP endpoint: an IPv4/IPv6 literal or a host name, and a port (0: any free port).
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  /// "127.0.0.1:7100", "[::1]:7100".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct PeerConfig {
  std::string name;        ///< the peer site's name (a DNS-1123 label)
  Endpoint address;        ///< its peer endpoint
  std::string public_key;  ///< its Ed25519 public key, base64 (archipel keygen); may be empty
};

/// The site's own Kubernetes: the embedded cluster served by this process, or an external
/// kube-apiserver reached with the given credentials.
struct ClusterConfig {
  enum class Mode { kEmbedded, kExternal };
  Mode mode = Mode::kEmbedded;
  Endpoint listen;                         ///< embedded: where its API is served
  std::filesystem::path tls_cert_file;     ///< embedded: serve HTTPS with this certificate
  std::filesystem::path tls_key_file;      ///< embedded: and this key
  std::string url;                         ///< external: https://host:port of the kube-apiserver
  std::filesystem::path token_file;        ///< external: bearer token (optional)
  std::filesystem::path ca_file;           ///< external: CA bundle (optional)
  std::filesystem::path client_cert_file;  ///< external: client certificate (with key)
  std::filesystem::path client_key_file;   ///< external: client key (with certificate)
  bool insecure_skip_tls_verify = false;   ///< external: do not verify the server (tests only)
};

/// The peer channel's failure detection (`failure_detector:`), as peer::DetectorConfig takes it.
struct DetectorSettings {
  std::chrono::milliseconds heartbeat{100};  ///< interval between heartbeats to each peer
  double suspect_phi = 3.0;                  ///< phi at which a peer becomes Suspected
  double down_phi = 8.0;                     ///< phi at which a peer becomes Down
};

/// A client allowed through the front door (`clients.tokens[]`): who, their bearer token (read
/// from token_file), and the sites they may run requests on (empty: every site).
struct ClientTokenConfig {
  std::string user;
  std::string token;
  std::vector<std::string> sites;
};

/// What the site shares (`sharing:`).
struct SharingSettings {
  /// The resources (plurals) a shared namespace carries; empty: the default set
  /// (configmaps, secrets, serviceaccounts, services, deployments).
  std::vector<std::string> kinds;
  /// Fields each site keeps to itself (dotted paths, e.g. spec.replicas under an autoscaler).
  std::vector<std::string> local_fields;
};

struct SiteConfig {
  std::string name;                         ///< this site's name, a DNS-1123 label
  Endpoint api;                             ///< the front door: scoped Kubernetes API for clients
  std::filesystem::path api_tls_cert_file;  ///< front door HTTPS certificate (tls.cert_file)
  std::filesystem::path api_tls_key_file;   ///< and key (tls.key_file)
  Endpoint peer;                            ///< the peer channel endpoint other sites dial
  std::filesystem::path data_dir;           ///< RocksDB and checkpoint images
  std::filesystem::path identity;  ///< this site's key file (archipel keygen); may be empty
  std::vector<PeerConfig> peers;   ///< the other sites this site knows
  ClusterConfig cluster;
  DetectorSettings detector;
  SharingSettings sharing;
  /// When not empty, the front door requires one of these bearer tokens.
  std::vector<ClientTokenConfig> client_tokens;
  base::LogLevel log_level = base::LogLevel::kInfo;
  std::filesystem::path source;  ///< the file it was read from
};

struct ConfigError {
  std::string file;     ///< as given by the caller
  int line = 0;         ///< 1-based; 0 when the error is not tied to a line
  std::string key;      ///< dotted path, e.g. "peers[1].address"; empty for the whole file
  std::string message;  ///< what is wrong, e.g. "expected HOST:PORT, got '127.0.0.1'"

  /// "sites/paris.yaml:12: peers[1].address: expected HOST:PORT, got '127.0.0.1'"
  [[nodiscard]] std::string render() const;
};

[[noreturn]] void throw_exception_from_error(const ConfigError& e,
                                             const boost::source_location& loc);

/// Reads and validates the file. Relative paths inside it are resolved against the file's
/// directory. Unknown keys are errors (they are usually typos).
[[nodiscard]] boost::system::result<SiteConfig, ConfigError> load_site_config(
    const std::filesystem::path& file);

/// Same, from text already in memory; `file` is used in messages and as the base directory.
[[nodiscard]] boost::system::result<SiteConfig, ConfigError> parse_site_config(
    std::string_view yaml, const std::filesystem::path& file);

/// A bearer token kept in `file` (clients.tokens[].token_file, cluster.token_file), trailing
/// whitespace dropped; nullopt when the file cannot be read or holds no token.
[[nodiscard]] std::optional<std::string> read_token_file(const std::filesystem::path& file);

/// Parses "HOST:PORT" / "[V6]:PORT". Returns a message describing the problem on failure.
[[nodiscard]] boost::system::result<Endpoint, std::string> parse_endpoint(std::string_view text);

}  // namespace archipel::site
