// Failure detection over real sockets: two sites (heartbeats every 100 ms) linked through the
// user-space link emulator with 20 ms ± 10 ms one-way latency. Each cycle fails the link, times
// how long until both sites see the other Down, restores it, and times how long until both see
// it Reachable again. Two failures, side by side in the same run: a stall (the link silently
// stops forwarding, the connection stays open: a partition) and a cut (connections are reset).
// The simulated-time detector figures are failure_detector_bench's.
// Run: build/release/bench/peer_detection_bench [cycles]

#include "archipel/netem/link_emulator.hpp"
#include "archipel/peer/peer_node.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace archipel;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// Polls every millisecond; the time when `done` first held (or the deadline).
Clock::time_point when(const std::function<bool()>& done, Clock::duration limit = 10s) {
  const auto end = Clock::now() + limit;
  while (!done() && Clock::now() < end) {
    std::this_thread::sleep_for(1ms);
  }
  return Clock::now();
}

peer::PeerState state(const peer::PeerNode& n) {
  return n.status().front().state;
}

void row(const char* name, const std::vector<double>& v) {
  std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", name, pct(v, 0.5), pct(v, 0.9), pct(v, 0.99),
              pct(v, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 30;
  spdlog::set_level(spdlog::level::err);
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard(io.get_executor());
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { io.run(); });
  }
  const auto paris_id = peer::Identity::generate("paris");
  const auto nantes_id = peer::Identity::generate("nantes");
  peer::PeerNode::Options p;
  p.identity = paris_id;
  p.peers = {{"nantes", "127.0.0.1", 1, nantes_id.public_key}};  // nantes dials
  auto paris = std::move(*peer::PeerNode::start(io, p));
  auto link = std::move(*netem::LinkEmulator::start(io, "127.0.0.1", paris->port(),
                                                    {.latency = 20ms, .jitter = 10ms}));
  peer::PeerNode::Options n;
  n.identity = nantes_id;
  n.peers = {{"paris", "127.0.0.1", link->port(), paris_id.public_key}};
  auto nantes = std::move(*peer::PeerNode::start(io, n));

  auto both = [&](peer::PeerState s) { return state(*paris) == s && state(*nantes) == s; };
  when([&] { return both(peer::PeerState::kReachable); });
  std::vector<double> stall_down, stall_back, cut_down, cut_back;
  for (int c = 0; c < cycles; ++c) {
    std::this_thread::sleep_for(1s);  // let the detector see a normal link again
    auto t = Clock::now();
    link->stall();
    stall_down.push_back(ms(when([&] { return both(peer::PeerState::kDown); }) - t));
    t = Clock::now();
    link->resume();
    stall_back.push_back(ms(when([&] { return both(peer::PeerState::kReachable); }) - t));

    std::this_thread::sleep_for(1s);
    t = Clock::now();
    link->cut();
    cut_down.push_back(ms(when([&] { return both(peer::PeerState::kDown); }) - t));
    t = Clock::now();
    link->heal();
    cut_back.push_back(ms(when([&] { return both(peer::PeerState::kReachable); }) - t));
    std::fprintf(stderr, "cycle %d: stall->Down %.0f ms, cut->Down %.0f ms\n", c + 1,
                 stall_down.back(), cut_down.back());
  }
  std::printf(
      "failure detection over loopback sockets, 100 ms heartbeats, link 20 ms ± 10 ms, "
      "%d cycles (ms)\n",
      cycles);
  std::printf("| event | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n");
  row("stall -> both Down", stall_down);
  row("resume -> both Reachable", stall_back);
  row("cut -> both Down", cut_down);
  row("heal -> both Reachable (re-dial)", cut_back);

  nantes.reset();
  link.reset();
  paris.reset();
  guard.reset();
  io.stop();
  for (auto& th : threads) {
    th.join();
  }
  return 0;
}
