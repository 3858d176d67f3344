#include "emulation/federation.hpp"

#include "archipel/base/ports.hpp"
#include "archipel/base/process.hpp"
#include "archipel/netem/link_emulator.hpp"
#include "archipel/peer/identity.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

extern char** environ;

namespace archipel::sim {

namespace fs = std::filesystem;

struct Federation::Site {
  std::string name;
  std::uint16_t api = 0;
  std::uint16_t peer = 0;
  std::uint16_t cluster = 0;
  fs::path config;
  fs::path log;
  pid_t pid = -1;
};

struct Federation::Link {
  std::unique_ptr<netem::LinkEmulator> emulator;
};

boost::system::result<std::unique_ptr<Federation>, std::string> Federation::start(
    boost::asio::io_context& io, const Scenario& scenario, Options options) {
  std::unique_ptr<Federation> f(new Federation());
  f->options_ = std::move(options);
  std::error_code ec;
  fs::create_directories(f->options_.dir / "keys", ec);
  if (ec) {
    return "cannot create " + (f->options_.dir / "keys").string() + ": " + ec.message();
  }
  std::map<std::string, std::string> public_keys;
  for (const std::string& name : scenario.sites) {
    auto site = std::make_unique<Site>();
    site->name = name;
    for (std::uint16_t* port : {&site->api, &site->peer, &site->cluster}) {
      auto p = base::free_loopback_port();
      if (!p) {
        return p.error();
      }
      *port = *p;
    }
    const peer::Identity id = peer::Identity::generate(name);
    fs::remove(f->options_.dir / "keys" / (name + ".key"), ec);
    fs::remove(f->options_.dir / "keys" / (name + ".pub"), ec);
    if (auto saved = id.save(f->options_.dir / "keys"); !saved) {
      return saved.error();
    }
    public_keys[name] = peer::encode_public_key(id.public_key);
    site->config = f->options_.dir / (name + ".yaml");
    site->log = f->options_.dir / (name + ".log");
    f->sites_[name] = std::move(site);
  }
  // a dials b through link a→b.
  for (const std::string& a : scenario.sites) {
    for (const std::string& b : scenario.sites) {
      if (!linked(scenario, a, b)) {
        continue;
      }
      auto link = std::make_unique<Link>();
      auto emulator = netem::LinkEmulator::start(io, "127.0.0.1", f->sites_[b]->peer,
                                                 link_profile(scenario, a, b));
      if (!emulator) {
        return "the link " + a + "→" + b + ": " + emulator.error();
      }
      link->emulator = std::move(*emulator);
      f->links_[{a, b}] = std::move(link);
    }
  }
  for (const std::string& name : scenario.sites) {
    const Site& s = *f->sites_[name];
    std::ofstream out(s.config);
    out << "# written by archipel sim run (" << scenario.name << ")\n"
        << "site: " << name << "\n"
        << "listen: {api: \"127.0.0.1:" << s.api << "\", peer: \"127.0.0.1:" << s.peer << "\"}\n"
        << "data: " << (f->options_.dir / "data" / name).string() << "\n"
        << "identity: " << (f->options_.dir / "keys" / (name + ".key")).string() << "\n"
        << "peers:\n";
    for (const std::string& other : scenario.sites) {
      if (linked(scenario, name, other)) {
        out << "  - {name: " << other
            << ", address: \"127.0.0.1:" << f->links_[{name, other}]->emulator->port()
            << "\", public_key: \"" << public_keys[other] << "\"}\n";
      }
    }
    out << "cluster: {mode: embedded, listen: \"127.0.0.1:" << s.cluster << "\"}\n"
        << "failure_detector: {heartbeat: " << scenario.heartbeat.count() << "ms}\n"
        << "log: {level: warn}\n";
    if (!out) {
      return "cannot write " + s.config.string();
    }
  }
  for (auto& [name, site] : f->sites_) {
    if (auto launched = f->launch(*site); !launched) {
      return launched.error();
    }
  }
  return f;
}

boost::system::result<void, std::string> Federation::launch(Site& site) {
  base::ProcessSpec spec;
  spec.argv = {options_.archipel.string(), "site", "--config", site.config.string()};
  for (char** e = environ; *e != nullptr; ++e) {
    spec.env.emplace_back(*e);
  }
  spec.log = site.log;
  auto pid = base::start_process(spec);
  if (!pid) {
    return "starting site " + site.name + ": " + pid.error();
  }
  site.pid = *pid;
  return {};
}

void Federation::stop(Site& site) {
  if (site.pid <= 0) {
    return;
  }
  ::kill(site.pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (::waitpid(site.pid, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(site.pid, SIGKILL);
      ::waitpid(site.pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  site.pid = -1;
}

Federation::~Federation() {
  for (auto& [name, site] : sites_) {
    stop(*site);
  }
}

std::string Federation::front_door(const std::string& site) const {
  return "http://127.0.0.1:" + std::to_string(sites_.at(site)->api);
}

fs::path Federation::log(const std::string& site) const {
  return sites_.at(site)->log;
}

bool Federation::alive(const std::string& site) {
  Site& s = *sites_.at(site);
  if (s.pid <= 0) {
    return false;
  }
  if (::waitpid(s.pid, nullptr, WNOHANG) == s.pid) {
    s.pid = -1;
    return false;
  }
  return true;
}

boost::system::result<void, std::string> Federation::crash(const std::string& site) {
  Site& s = *sites_.at(site);
  if (!alive(site)) {
    return site + " is not running";
  }
  ::kill(s.pid, SIGKILL);
  ::waitpid(s.pid, nullptr, 0);
  s.pid = -1;
  return {};
}

boost::system::result<void, std::string> Federation::restart(const std::string& site) {
  if (alive(site)) {
    return site + " is running";
  }
  return launch(*sites_.at(site));
}

void Federation::change(LinkChange::Kind kind, const std::string& a, const std::string& b) {
  for (const auto& key : {std::make_pair(a, b), std::make_pair(b, a)}) {
    netem::LinkEmulator& link = *links_.at(key)->emulator;
    switch (kind) {
      case LinkChange::Kind::kCut: link.cut(); break;
      case LinkChange::Kind::kHeal: link.heal(); break;
      case LinkChange::Kind::kStall: link.stall(); break;
      case LinkChange::Kind::kResume: link.resume(); break;
    }
  }
}

void Federation::shape(const std::string& a, const std::string& b,
                       const netem::LinkProfile& profile) {
  links_.at({a, b})->emulator->set_profile(profile);
  links_.at({b, a})->emulator->set_profile(profile);
}

std::string Federation::link_state(const std::string& a, const std::string& b) const {
  const netem::LinkEmulator& link = *links_.at({a, b})->emulator;
  return link.is_cut() ? "cut" : link.is_stalled() ? "stalled" : "up";
}

std::uint64_t Federation::link_bytes(const std::string& a, const std::string& b) const {
  return links_.at({a, b})->emulator->bytes() + links_.at({b, a})->emulator->bytes();
}

}  // namespace archipel::sim
