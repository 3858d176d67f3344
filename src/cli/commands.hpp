#pragma once

// The archipel subcommands, one function each; main.cpp parses the command line and calls them.
// Each returns the process exit code: 0 success, 1 a failed check, 2 bad usage or bad config.

#include "archipel/site/config.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace archipel::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct SiteViewOptions {
  std::vector<std::string> sites;               ///< known sites; the first is the receiving one
  std::optional<std::string> local;             ///< overrides the receiving site
  std::vector<std::string> down;                ///< sites to treat as unreachable
  std::optional<std::filesystem::path> config;  ///< take the sites from a site's config
};

struct ScopeExplainOptions {
  std::string expression;
  std::optional<std::string> resource;  ///< "pods", "deployments.apps"
  SiteViewOptions view;
};
int scope_explain(const ScopeExplainOptions& options);

struct ScopeCheckOptions {
  SiteViewOptions view;  ///< when sites are given, unknown sites fail the check too
};
/// Reads expressions from stdin, one per line ('#' comments and blank lines skipped).
int scope_check(const ScopeCheckOptions& options);

struct SiteOptions {
  std::filesystem::path config;
  bool check_only = false;
};
int site(const SiteOptions& options);

struct KeygenOptions {
  std::string site;
  std::filesystem::path out = ".";
};
/// Writes a site's Ed25519 key pair: OUT/SITE.key (secret) and OUT/SITE.pub (to pin in peers).
int keygen(const KeygenOptions& options);

struct ClusterOptions {
  std::string listen = "127.0.0.1:0";
  std::filesystem::path data;
  std::string log_level = "info";
  std::size_t max_body_bytes = 3 * 1024 * 1024;
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  unsigned bookmark_seconds = 60;
};
/// Serves the embedded Kubernetes-compatible cluster alone until SIGINT/SIGTERM; prints
/// "listening on HOST:PORT" on stdout once bound.
int cluster(const ClusterOptions& options);

struct EmbeddedCluster {
  site::Endpoint listen;
  std::filesystem::path data;
  std::size_t max_body_bytes = 3 * 1024 * 1024;
  std::filesystem::path tls_cert;  ///< with tls_key: serve HTTPS
  std::filesystem::path tls_key;
  unsigned bookmark_seconds = 60;  ///< interval of BOOKMARK events on watches that allow them
};

/// Runs the embedded cluster until SIGINT/SIGTERM; `on_listening` receives the bound port
/// (returning false stops the cluster: the command fails). Shared by `archipel cluster` and
/// `archipel site`.
int serve_embedded_cluster(const EmbeddedCluster& cluster,
                           const std::function<bool(std::uint16_t)>& on_listening);

struct LinkOptions {
  std::string listen = "127.0.0.1:0";
  std::string to;
  std::string latency = "0";
  std::string jitter = "0";
  std::string bandwidth = "0";
};
/// Runs the link emulator between `listen` and `to` until stdin ends or says "quit"; each line
/// of stdin is a command (cut, heal, stall, resume, latency D, jitter D, bandwidth B, status).
int link(const LinkOptions& options);

/// How a command reaches a site's front door.
struct ServerOptions {
  std::string server;  ///< the site's front door URL (default: $ARCHIPEL_SERVER)
  std::filesystem::path token_file;
  std::filesystem::path ca_file;
  bool insecure = false;
};

struct ShareOptions {
  std::vector<std::string> what;  ///< "namespace team-a", or "configmap/app" (with -n)
  std::string namespace_name;     ///< -n: the object's namespace
  std::string with;               ///< share: the sites, 'nantes & rennes'
  std::string from;               ///< unshare: the sites to stop sharing with (empty: all)
  bool delete_copies = false;     ///< unshare: the sites removed delete their copies
  ServerOptions front_door;
};
/// `archipel share`: shares a namespace or an object with sites, through a site's front door.
int share(const ShareOptions& options);
/// `archipel unshare`: stops sharing it (with every other site, or those of --from).
int unshare(const ShareOptions& options);

struct MigrateOptions {
  std::string what;            ///< pod/NAME
  std::string namespace_name;  ///< -n (default: default)
  std::string to;              ///< the destination site
  std::string mode = "live";   ///< cold, warm, live, app
  std::string name;            ///< the Migration's name (default: NAME-<random>)
  bool wait = true;            ///< follow it to the end, with a progress bar
  ServerOptions front_door;    ///< the site running the pod
};
/// `archipel migrate pod/NAME --to SITE`: creates a Migration at the site running the pod and
/// follows it, printing its steps; exits 0 once the pod runs at SITE.
int migrate(const MigrateOptions& options);

struct CriuCheckOptions {
  std::filesystem::path criu;  ///< empty: $ARCHIPEL_CRIU, /opt/archipel/criu/bin/criu, PATH
};
/// `archipel criu check`: what this machine's CRIU can do for migration; fails without one.
int criu_check(const CriuCheckOptions& options);

struct SimRunOptions {
  std::filesystem::path scenario;
  std::filesystem::path out;        ///< empty: var/sim/<scenario name>
  std::filesystem::path workloads;  ///< empty: tests/workloads beside this binary
  bool short_run = false;
};
/// `archipel sim run`: plays a scenario on real sites of this machine; the report's paths on
/// stdout, exit 1 when an expectation failed.
int sim_run(const SimRunOptions& options);

struct SimStudyOptions {
  std::filesystem::path study;
  std::filesystem::path out;  ///< empty: var/sim/<study name>
};
/// `archipel sim study`: a study at scale with SimGrid (the archipel-simgrid program beside
/// this binary); exit 1 when a check failed.
int sim_study(const SimStudyOptions& options);

}  // namespace archipel::cli
