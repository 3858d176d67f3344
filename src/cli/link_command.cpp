// `archipel link`: the user-space link emulator as a process, between any two endpoints (a site
// and the peer it dials, kubectl and a front door). Commands on stdin change it while it runs,
// so that a person or a scenario script can cut, heal and reshape the link.

#include "archipel/netem/link_emulator.hpp"
#include "archipel/netem/units.hpp"
#include "cli/commands.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

namespace archipel::cli {

namespace {

std::string describe(const netem::LinkEmulator& link) {
  const netem::LinkProfile p = link.profile();
  std::ostringstream out;
  out << "latency " << p.latency.count() / 1000.0 << "ms, jitter " << p.jitter.count() / 1000.0
      << "ms, bandwidth "
      << (p.bandwidth_bytes_per_second == 0 ? std::string("unlimited")
                                            : std::to_string(p.bandwidth_bytes_per_second) + "B/s")
      << ", "
      << (link.is_cut()       ? "cut"
          : link.is_stalled() ? "stalled"
                              : "up")
      << ", " << link.bytes() << " bytes relayed";
  return out.str();
}

constexpr const char* kCommands =
    "commands: cut | heal | stall | resume | latency D | jitter D | bandwidth B | status | quit";

}  // namespace

int link(const LinkOptions& o) {
  auto listen = site::parse_endpoint(o.listen);
  auto to = site::parse_endpoint(o.to);
  if (!listen || !to) {
    std::cerr << "archipel link: "
              << (!listen ? "--listen: " + listen.error() : "--to: " + to.error()) << "\n";
    return kExitUsage;
  }
  netem::LinkProfile profile;
  auto latency = netem::parse_duration(o.latency);
  auto jitter = netem::parse_duration(o.jitter);
  auto bandwidth = netem::parse_bandwidth(o.bandwidth);
  std::string invalid;
  if (!latency) {
    invalid = latency.error();
  } else if (!jitter) {
    invalid = jitter.error();
  } else if (!bandwidth) {
    invalid = bandwidth.error();
  }
  if (!invalid.empty()) {
    std::cerr << "archipel link: " << invalid << "\n";
    return kExitUsage;
  }
  profile.latency = *latency;
  profile.jitter = *jitter;
  profile.bandwidth_bytes_per_second = *bandwidth;

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  auto started =
      netem::LinkEmulator::start(io, to->host, to->port, profile, listen->host, listen->port);
  if (!started) {
    std::cerr << "archipel link: " << started.error() << "\n";
    return kExitFailed;
  }
  std::unique_ptr<netem::LinkEmulator> emulator = std::move(*started);
  std::thread runner([&io] { io.run(); });
  std::cout << "listening on " << listen->host << ":" << emulator->port() << ", relaying to "
            << to->to_string() << "\n"
            << describe(*emulator) << "\n"
            << kCommands << std::endl;

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command;
    std::string argument;
    words >> command >> argument;
    if (command.empty() || command[0] == '#') {
      continue;
    }
    netem::LinkProfile p = emulator->profile();
    std::string error;
    if (command == "cut") {
      emulator->cut();
    } else if (command == "heal") {
      emulator->heal();
    } else if (command == "stall") {
      emulator->stall();
    } else if (command == "resume") {
      emulator->resume();
    } else if (command == "latency" || command == "jitter") {
      auto d = netem::parse_duration(argument);
      if (d) {
        (command == "latency" ? p.latency : p.jitter) = *d;
        emulator->set_profile(p);
      } else {
        error = d.error();
      }
    } else if (command == "bandwidth") {
      auto b = netem::parse_bandwidth(argument);
      if (b) {
        p.bandwidth_bytes_per_second = *b;
        emulator->set_profile(p);
      } else {
        error = b.error();
      }
    } else if (command == "quit" || command == "exit") {
      break;
    } else if (command != "status") {
      error = "unknown command '" + command + "'; " + kCommands;
    }
    std::cout << (error.empty() ? describe(*emulator) : "error: " + error) << std::endl;
  }
  emulator.reset();
  guard.reset();
  io.stop();
  runner.join();
  return kExitOk;
}

}  // namespace archipel::cli
