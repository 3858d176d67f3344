#include "archipel/site/config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace archipel::site {
namespace {

const char* kValid = R"(site: paris
listen:
  api: 127.0.0.1:7100
  peer: 127.0.0.1:7101
data: ../var/paris
peers:
  - name: nantes
    address: 127.0.0.1:7201
  - name: rennes
    address: "[::1]:7301"
cluster:
  mode: embedded
  listen: 127.0.0.1:7102
log:
  level: debug
)";

ConfigError error_of(const std::string& yaml) {
  auto c = parse_site_config(yaml, "sites/test.yaml");
  EXPECT_FALSE(c) << "accepted:\n" << yaml;
  return c ? ConfigError{} : c.error();
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(SiteConfig, ReadsEveryField) {
  auto c = parse_site_config(kValid, "/etc/archipel/paris.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->name, "paris");
  EXPECT_EQ(c->api, (Endpoint{"127.0.0.1", 7100}));
  EXPECT_EQ(c->peer, (Endpoint{"127.0.0.1", 7101}));
  EXPECT_EQ(c->data_dir, std::filesystem::path("/etc/archipel/../var/paris"));
  ASSERT_EQ(c->peers.size(), 2u);
  EXPECT_EQ(c->peers[1].name, "rennes");
  EXPECT_EQ(c->peers[1].address, (Endpoint{"::1", 7301}));
  EXPECT_EQ(c->peers[1].address.to_string(), "[::1]:7301");
  EXPECT_EQ(c->cluster.mode, ClusterConfig::Mode::kEmbedded);
  EXPECT_EQ(c->cluster.listen.port, 7102);
  EXPECT_EQ(c->log_level, base::LogLevel::kDebug);
}

TEST(SiteConfig, ReadsExternalClusterWithCredentials) {
  std::string yaml = replace(kValid, "  mode: embedded\n  listen: 127.0.0.1:7102\n",
                             "  mode: external\n  url: https://10.0.0.1:6443\n"
                             "  token_file: /run/token\n  ca_file: ca.pem\n"
                             "  insecure_skip_tls_verify: false\n");
  auto c = parse_site_config(yaml, "/etc/archipel/paris.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->cluster.mode, ClusterConfig::Mode::kExternal);
  EXPECT_EQ(c->cluster.url, "https://10.0.0.1:6443");
  EXPECT_EQ(c->cluster.token_file, std::filesystem::path("/run/token"));
  EXPECT_EQ(c->cluster.ca_file, std::filesystem::path("/etc/archipel/ca.pem"));
}

TEST(SiteConfig, DefaultsDataDirAndLogLevel) {
  std::string yaml =
      replace(replace(kValid, "data: ../var/paris\n", ""), "log:\n  level: debug\n", "");
  auto c = parse_site_config(yaml, "x.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->data_dir, std::filesystem::path("/var/lib/archipel/paris"));
  EXPECT_EQ(c->log_level, base::LogLevel::kInfo);
}

TEST(SiteConfig, ReadsFailureDetectorSettingsWithDefaults) {
  auto defaults = parse_site_config(kValid, "x.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->detector.heartbeat, std::chrono::milliseconds(100));
  EXPECT_EQ(defaults->detector.down_phi, 8.0);
  auto c = parse_site_config(std::string(kValid) +
                                 "failure_detector:\n  heartbeat: 1s\n  suspect_phi: 2.5\n"
                                 "  down_phi: 12\n",
                             "x.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->detector.heartbeat, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->detector.suspect_phi, 2.5);
  EXPECT_EQ(c->detector.down_phi, 12.0);
}

TEST(SiteConfig, ReadsSharingSettings) {
  auto defaults = parse_site_config(kValid, "x.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_TRUE(defaults->sharing.kinds.empty());  // the default set
  EXPECT_TRUE(defaults->sharing.local_fields.empty());
  auto c = parse_site_config(std::string(kValid) +
                                 "sharing:\n  kinds: [configmaps, deployments]\n"
                                 "  local_fields: [spec.replicas]\n",
                             "x.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->sharing.kinds, (std::vector<std::string>{"configmaps", "deployments"}));
  EXPECT_EQ(c->sharing.local_fields, std::vector<std::string>{"spec.replicas"});
  EXPECT_EQ(c->log_level, base::LogLevel::kDebug);  // the sections after it are read too
}

TEST(SiteConfig, RejectsBadSharingSettings) {
  const std::string base = std::string(kValid) + "sharing:\n";
  const ConfigError kind = error_of(base + "  kinds: [configmaps, nodes]\n");
  EXPECT_EQ(kind.key, "sharing.kinds[1]");
  EXPECT_NE(kind.message.find("'nodes'"), std::string::npos);
  EXPECT_EQ(error_of(base + "  kinds: []\n").key, "sharing.kinds");
  EXPECT_EQ(error_of(base + "  local_fields: [spec..replicas]\n").key, "sharing.local_fields[0]");
  EXPECT_EQ(error_of(base + "  local_fields: [metadata.labels]\n").key, "sharing.local_fields[0]");
  EXPECT_EQ(error_of(base + "  local_fields: [spec]\n").key, "sharing.local_fields[0]");
  EXPECT_EQ(error_of(base + "  groups: []\n").key, "sharing.groups");
}

TEST(SiteConfig, RejectsBadFailureDetectorSettings) {
  const std::string base = std::string(kValid) + "failure_detector:\n";
  const ConfigError hb = error_of(base + "  heartbeat: 5 minutes\n");
  EXPECT_EQ(hb.key, "failure_detector.heartbeat");
  EXPECT_NE(hb.message.find("'5 minutes'"), std::string::npos);
  EXPECT_EQ(error_of(base + "  heartbeat: 1ms\n").key, "failure_detector.heartbeat");
  EXPECT_EQ(error_of(base + "  down_phi: high\n").key, "failure_detector.down_phi");
  EXPECT_EQ(error_of(base + "  suspect_phi: 9\n").key, "failure_detector");  // above down_phi
  EXPECT_EQ(error_of(base + "  heartbeats: 1s\n").key, "failure_detector.heartbeats");
}

TEST(SiteConfig, RejectsUnknownKeyNamingFileLineAndKey) {
  const ConfigError e = error_of(replace(kValid, "  peer: 127.0.0.1:7101\n",
                                         "  peer: 127.0.0.1:7101\n  pear: 127.0.0.1:7109\n"));
  EXPECT_EQ(e.file, "sites/test.yaml");
  EXPECT_EQ(e.key, "listen.pear");
  EXPECT_EQ(e.line, 5);
  EXPECT_EQ(e.render(), "sites/test.yaml:5: listen.pear: unknown key (expected one of: api, peer)");
}

TEST(SiteConfig, RejectsMissingRequiredKey) {
  const ConfigError e = error_of(replace(kValid, "site: paris\n", ""));
  EXPECT_EQ(e.key, "site");
  EXPECT_EQ(e.message, "missing (required)");
}

TEST(SiteConfig, RejectsBadEndpointsWithWhatWasGiven) {
  EXPECT_EQ(error_of(replace(kValid, "api: 127.0.0.1:7100", "api: 127.0.0.1")).message,
            "expected HOST:PORT (e.g. 127.0.0.1:7100), got '127.0.0.1'");
  const ConfigError e = error_of(replace(kValid, "127.0.0.1:7201", "127.0.0.1:99999"));
  EXPECT_EQ(e.key, "peers[0].address");
  EXPECT_EQ(e.line, 8);
  EXPECT_EQ(e.message, "port must be a number from 0 to 65535, got '99999'");
}

TEST(SiteConfig, RejectsInvalidSiteNames) {
  EXPECT_EQ(error_of(replace(kValid, "site: paris", "site: Paris")).key, "site");
  EXPECT_EQ(error_of(replace(kValid, "name: nantes", "name: paris")).message,
            "'paris' is this site itself");
  EXPECT_EQ(error_of(replace(kValid, "name: rennes", "name: nantes")).message,
            "peer 'nantes' is listed twice");
}

TEST(SiteConfig, RejectsSharedListenAddresses) {
  EXPECT_EQ(error_of(replace(kValid, "peer: 127.0.0.1:7101", "peer: 127.0.0.1:7100")).key,
            "listen.peer");
  EXPECT_EQ(error_of(replace(kValid, "listen: 127.0.0.1:7102", "listen: 127.0.0.1:7101")).key,
            "cluster.listen");
}

TEST(SiteConfig, RejectsBadClusterMode) {
  const ConfigError e = error_of(replace(kValid, "mode: embedded", "mode: kind"));
  EXPECT_EQ(e.key, "cluster.mode");
  EXPECT_EQ(e.message, "expected 'embedded' or 'external', got 'kind'");
}

TEST(SiteConfig, RejectsKeysOfTheOtherClusterMode) {
  const ConfigError e =
      error_of(replace(kValid, "  mode: embedded\n", "  mode: embedded\n  url: https://x:6443\n"));
  EXPECT_EQ(e.key, "cluster.url");
}

TEST(SiteConfig, RejectsClientCertificateWithoutKey) {
  const ConfigError e = error_of(replace(kValid, "  mode: embedded\n  listen: 127.0.0.1:7102\n",
                                         "  mode: external\n  url: https://h:6443\n"
                                         "  client_cert_file: c.pem\n"));
  EXPECT_EQ(e.key, "cluster");
}

TEST(SiteConfig, RejectsBadLogLevel) {
  EXPECT_EQ(error_of(replace(kValid, "level: debug", "level: loud")).key, "log.level");
}

TEST(SiteConfig, RejectsWrongShapes) {
  EXPECT_EQ(error_of("site: paris\nlisten: {api: 127.0.0.1:1, peer: 127.0.0.1:2}\npeers: 3\n").key,
            "peers");
  EXPECT_EQ(error_of("- just\n- a list\n").key, "");
  EXPECT_EQ(error_of("site: paris\nlisten: [1]\n").key, "listen");
  EXPECT_EQ(error_of("site: [paris]\n").key, "site");
}

TEST(SiteConfig, RejectsMalformedYamlWithItsLine) {
  const ConfigError e = error_of("site: paris\nlisten: {api: [\n");
  EXPECT_GT(e.line, 0);
  EXPECT_NE(e.message.find("not valid YAML"), std::string::npos) << e.message;
}

TEST(SiteConfig, ReportsUnreadableFile) {
  auto c = load_site_config("/nonexistent/archipel.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().file, "/nonexistent/archipel.yaml");
  EXPECT_NE(c.error().message.find("cannot read"), std::string::npos);
}

TEST(SiteConfig, ReadsIdentityAndPinnedPublicKeys) {
  std::string yaml =
      replace(kValid, "data: ../var/paris\n", "data: ../var/paris\nidentity: keys/paris.key\n");
  yaml = replace(yaml, "    address: 127.0.0.1:7201\n",
                 "    address: 127.0.0.1:7201\n    public_key: "
                 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n");
  // Every peer's key is pinned once the site has an identity.
  const ConfigError missing = error_of(yaml);
  EXPECT_EQ(missing.key, "peers[1].public_key");
  EXPECT_NE(missing.message.find("required when the site has an identity"), std::string::npos);
  yaml = replace(yaml, "    address: \"[::1]:7301\"\n",
                 "    address: \"[::1]:7301\"\n    public_key: "
                 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n");
  auto c = parse_site_config(yaml, "/etc/archipel/paris.yaml");
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(c->identity, std::filesystem::path("/etc/archipel/keys/paris.key"));
  EXPECT_EQ(c->peers[0].public_key, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
}

TEST(SiteConfig, RejectsAPublicKeyThatIsNot32Bytes) {
  const ConfigError e = error_of(replace(kValid, "    address: 127.0.0.1:7201\n",
                                         "    address: 127.0.0.1:7201\n    public_key: AAAA\n"));
  EXPECT_EQ(e.key, "peers[0].public_key");
  EXPECT_NE(e.message.find("32 bytes"), std::string::npos) << e.message;
}

TEST(SiteConfig, ShippedSiteFilesAreValid) {
  for (const char* name : {"paris", "nantes", "rennes"}) {
    auto c = load_site_config(std::string(ARCHIPEL_SOURCE_DIR) + "/sites/" + name + ".yaml");
    ASSERT_TRUE(c) << c.error().render();
    EXPECT_EQ(c->name, name);
    EXPECT_EQ(c->peers.size(), 2u);
  }
}

TEST(Endpoint, ParsesHostsAndPorts) {
  EXPECT_EQ(*parse_endpoint("localhost:0"), (Endpoint{"localhost", 0}));
  EXPECT_EQ(*parse_endpoint("[::1]:65535"), (Endpoint{"::1", 65535}));
  EXPECT_FALSE(parse_endpoint(":80"));
  EXPECT_FALSE(parse_endpoint("host:"));
  EXPECT_FALSE(parse_endpoint("host:-1"));
  EXPECT_FALSE(parse_endpoint("a b:80"));
  EXPECT_FALSE(parse_endpoint("::1:80"));
  EXPECT_FALSE(parse_endpoint("[::1]80"));
}

}  // namespace
}  // namespace archipel::site
