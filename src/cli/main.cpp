// archipel: one binary, one subcommand per job. Parsing only; the work is in *_command.cpp.

#include "archipel/dsl/scope.hpp"
#include "cli/commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

void add_view_options(CLI::App* cmd, archipel::cli::SiteViewOptions& v) {
  cmd->add_option("--sites", v.sites,
                  "known sites, comma-separated; the first is the receiving site")
      ->delimiter(',');
  cmd->add_option("--local", v.local, "the receiving site (default: first of --sites)");
  cmd->add_option("--down", v.down, "sites to treat as unreachable, comma-separated")
      ->delimiter(',');
  cmd->add_option("--config", v.config, "take the sites from this site's configuration file")
      ->check(CLI::ExistingFile);
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = archipel::cli;
  CLI::App app{"archipel: location-scoped federation of edge Kubernetes sites"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "archipel 0.1.0");

  CLI::App* scope =
      app.add_subcommand("scope", "the scope language: explain and check expressions");
  scope->require_subcommand(1);

  cli::ScopeExplainOptions explain;
  CLI::App* explain_cmd = scope->add_subcommand(
      "explain", "print an expression's canonical form and the plan it gives");
  explain_cmd->add_option("expression", explain.expression, "e.g. 'paris & (nantes | rennes)'")
      ->required();
  explain_cmd->add_option("--resource", explain.resource,
                          "plan for this resource (plural, e.g. pods or deployments.apps)");
  add_view_options(explain_cmd, explain.view);

  cli::ScopeCheckOptions check;
  CLI::App* check_cmd = scope->add_subcommand(
      "check", "read expressions from stdin, one per line; fail on the first bad one");
  add_view_options(check_cmd, check.view);

  cli::SiteOptions site;
  CLI::App* site_cmd = app.add_subcommand("site", "run one site from its configuration file");
  site_cmd->add_option("--config", site.config, "the site's YAML file (see sites/)")->required();
  site_cmd->add_flag("--check", site.check_only, "validate the configuration and exit");

  cli::KeygenOptions keygen;
  CLI::App* keygen_cmd =
      app.add_subcommand("keygen", "write a site's Ed25519 identity (SITE.key and SITE.pub)");
  keygen_cmd->add_option("--site", keygen.site, "the site's name (a DNS-1123 label)")
      ->required()
      ->check([](const std::string& s) {
        return archipel::dsl::is_dns1123_label(s)
                   ? std::string()
                   : "must be a DNS-1123 label (lowercase letters, digits, '-')";
      });
  keygen_cmd->add_option("--out", keygen.out, "directory for the key files")->capture_default_str();

  cli::ClusterOptions cluster;
  CLI::App* cluster_cmd = app.add_subcommand(
      "cluster", "serve the embedded Kubernetes-compatible cluster alone (for tests and tools)");
  cluster_cmd->add_option("--listen", cluster.listen, "HOST:PORT; port 0 picks a free port")
      ->capture_default_str();
  cluster_cmd->add_option("--data", cluster.data, "data directory (created if needed)")->required();
  cluster_cmd
      ->add_option("--max-body-bytes", cluster.max_body_bytes,
                   "largest request body accepted (413 beyond)")
      ->capture_default_str();
  cluster_cmd->add_option("--tls-cert", cluster.tls_cert, "serve HTTPS with this PEM certificate")
      ->check(CLI::ExistingFile);
  cluster_cmd->add_option("--tls-key", cluster.tls_key, "the certificate's PEM private key")
      ->check(CLI::ExistingFile);
  cluster_cmd
      ->add_option("--bookmark-seconds", cluster.bookmark_seconds,
                   "interval of BOOKMARK events on watches that allow them")
      ->capture_default_str();
  cluster_cmd->add_option("--log-level", cluster.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  cli::LinkOptions link;
  CLI::App* link_cmd = app.add_subcommand(
      "link",
      "emulate a network link: relay TCP from --listen to --to with latency, jitter and a "
      "bandwidth limit; commands on stdin cut, heal, stall, resume and reshape it");
  link_cmd->add_option("--listen", link.listen, "HOST:PORT to accept on; port 0 picks a free one")
      ->capture_default_str();
  link_cmd->add_option("--to", link.to, "HOST:PORT to relay to")->required();
  link_cmd->add_option("--latency", link.latency, "one-way delay (20ms, 500us, 1s)")
      ->capture_default_str();
  link_cmd->add_option("--jitter", link.jitter, "uniform +- variation of the delay (order is kept)")
      ->capture_default_str();
  link_cmd
      ->add_option("--bandwidth", link.bandwidth, "per direction (10MB/s, 100Mbit/s; 0: unlimited)")
      ->capture_default_str();

  const auto add_server_options = [](CLI::App* cmd, cli::ServerOptions& o,
                                     const std::string& what) {
    cmd->add_option("--server", o.server, what + " (default: $ARCHIPEL_SERVER)");
    cmd->add_option("--token-file", o.token_file, "a file holding a bearer token")
        ->check(CLI::ExistingFile);
    cmd->add_option("--certificate-authority", o.ca_file,
                    "verify the front door's certificate against this CA")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--insecure-skip-tls-verify", o.insecure,
                  "do not verify the front door's certificate");
  };
  cli::ShareOptions share;
  auto add_share_options = [&](CLI::App* cmd) {
    cmd->add_option("what", share.what,
                    "namespace NAME, or RESOURCE/NAME (configmap/app) with -n NAMESPACE")
        ->required()
        ->expected(1, 2);
    cmd->add_option("-n,--namespace", share.namespace_name, "the object's namespace");
    add_server_options(cmd, share.front_door, "the front door of a site sharing it");
  };
  CLI::App* share_cmd = app.add_subcommand(
      "share", "share a namespace (its objects of the shared kinds) or one object with sites");
  add_share_options(share_cmd);
  share_cmd->add_option("--with", share.with, "the sites to share with: 'nantes & rennes'")
      ->required();
  CLI::App* unshare_cmd =
      app.add_subcommand("unshare", "stop sharing a namespace or an object (the copies stay)");
  add_share_options(unshare_cmd);
  unshare_cmd->add_option("--from", share.from,
                          "only with these sites: 'nantes & rennes' (default: every other)");
  unshare_cmd->add_flag("--delete-copies", share.delete_copies,
                        "the sites removed delete their copies (default: they keep them)");

  cli::MigrateOptions migrate;
  CLI::App* migrate_cmd = app.add_subcommand(
      "migrate", "move a running pod to another site with its memory (CRIU) or its state (app)");
  migrate_cmd->add_option("what", migrate.what, "pod/NAME")->required();
  migrate_cmd->add_option("-n,--namespace", migrate.namespace_name, "the pod's namespace");
  migrate_cmd->add_option("--to", migrate.to, "the site to move it to")->required();
  migrate_cmd
      ->add_option("--mode", migrate.mode,
                   "cold (stop, copy, restore), warm (copy first, then what changed), live "
                   "(post-copy or pre-copy), app (the application's own state)")
      ->check(CLI::IsMember({"cold", "warm", "live", "app"}))
      ->capture_default_str();
  migrate_cmd->add_option("--name", migrate.name, "the Migration's name (default: POD-xxxxx)");
  migrate_cmd->add_flag("!--no-wait", migrate.wait, "return once the migration is created");
  add_server_options(migrate_cmd, migrate.front_door, "the front door of the site running the pod");

  cli::CriuCheckOptions criu_check;
  CLI::App* criu_cmd = app.add_subcommand("criu", "CRIU, which migrates pods between sites");
  criu_cmd->require_subcommand(1);
  CLI::App* criu_check_cmd = criu_cmd->add_subcommand(
      "check", "what this machine's CRIU can do (cold, pre-copy, post-copy)");
  criu_check_cmd->add_option(
      "--criu", criu_check.criu,
      "the criu binary (default: $ARCHIPEL_CRIU, /opt/archipel/criu/bin/criu, "
      "then the PATH)");

  cli::SimRunOptions sim;
  CLI::App* sim_cmd = app.add_subcommand("sim", "simulation runs: a federation on this machine");
  sim_cmd->require_subcommand(1);
  CLI::App* sim_run_cmd = sim_cmd->add_subcommand(
      "run", "play a scenario on real sites over emulated links, check it, write its report");
  sim_run_cmd->add_option("scenario", sim.scenario, "sim/scenarios/NAME.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  sim_run_cmd->add_option("--out", sim.out,
                          "where the report and the sites' files go (default: var/sim/NAME)");
  sim_run_cmd->add_option(
      "--workloads", sim.workloads,
      "the directory of the test workloads (default: tests/workloads beside archipel)");
  sim_run_cmd->add_flag("--short", sim.short_run, "skip the steps marked long: true (for CI)");
  cli::SimStudyOptions study;
  CLI::App* sim_study_cmd = sim_cmd->add_subcommand(
      "study", "simulate hundreds to thousands of sites with SimGrid, check it, write its report");
  sim_study_cmd->add_option("study", study.study, "sim/studies/NAME.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  sim_study_cmd->add_option("--out", study.out, "where the report goes (default: var/sim/NAME)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  if (*explain_cmd) {
    return cli::scope_explain(explain);
  }
  if (*check_cmd) {
    return cli::scope_check(check);
  }
  if (*site_cmd) {
    return cli::site(site);
  }
  if (*keygen_cmd) {
    return cli::keygen(keygen);
  }
  if (*cluster_cmd) {
    return cli::cluster(cluster);
  }
  if (*link_cmd) {
    return cli::link(link);
  }
  if (*share_cmd) {
    return cli::share(share);
  }
  if (*unshare_cmd) {
    return cli::unshare(share);
  }
  if (*migrate_cmd) {
    return cli::migrate(migrate);
  }
  if (*criu_check_cmd) {
    return cli::criu_check(criu_check);
  }
  if (*sim_run_cmd) {
    return cli::sim_run(sim);
  }
  if (*sim_study_cmd) {
    return cli::sim_study(study);
  }
  return cli::kExitUsage;
}
