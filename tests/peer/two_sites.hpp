#pragma once

// Two sites over real loopback sockets, the link between them through the user-space link
// emulator (nantes dials paris through it). Shared by the peer channel's integration tests.

#include "archipel/netem/link_emulator.hpp"
#include "archipel/peer/peer_node.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

namespace archipel::peer {

using namespace std::chrono_literals;

// Polls `done` until it holds or the deadline passes (no sleeping for a fixed time).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds deadline = 10s) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (done())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

inline PeerState state_of(const PeerNode& node, const std::string& peer) {
  for (const PeerStatus& s : node.status()) {
    if (s.name == peer)
      return s.state;
  }
  return PeerState::kDown;
}

class TwoSites : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("ARCHIPEL_TEST_DEBUG") != nullptr) {
      spdlog::set_level(spdlog::level::debug);
    }
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    PeerNode::Options p;
    p.identity = paris_id_;
    p.peers = {PeerAddress{"nantes", "127.0.0.1", 1, nantes_id_.public_key}};  // nantes dials
    auto paris = PeerNode::start(io_, p);
    ASSERT_TRUE(paris) << paris.error();
    paris_ = std::move(*paris);
    auto link = netem::LinkEmulator::start(io_, "127.0.0.1", paris_->port(), {});
    ASSERT_TRUE(link) << link.error();
    link_ = std::move(*link);
    PeerNode::Options n;
    n.identity = nantes_id_;
    n.peers = {PeerAddress{"paris", "127.0.0.1", link_->port(), paris_id_.public_key}};
    auto nantes = PeerNode::start(io_, n);
    ASSERT_TRUE(nantes) << nantes.error();
    nantes_ = std::move(*nantes);
  }

  void TearDown() override {
    nantes_.reset();
    paris_.reset();
    link_.reset();
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      t.join();
  }

  bool both(PeerState s) {
    return state_of(*paris_, "nantes") == s && state_of(*nantes_, "paris") == s;
  }

  Identity paris_id_ = Identity::generate("paris");
  Identity nantes_id_ = Identity::generate("nantes");
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  std::unique_ptr<PeerNode> paris_;
  std::unique_ptr<PeerNode> nantes_;
  std::unique_ptr<netem::LinkEmulator> link_;
};

/// Runs `a` on `io` (driven by other threads) and waits for its result, at most `limit`.
template <class T>
std::optional<T> run_on(boost::asio::io_context& io, boost::asio::awaitable<T> a,
                        std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  boost::asio::co_spawn(io, std::move(a), [promise](std::exception_ptr e, T value) {
    if (e) {
      promise->set_exception(e);
    } else {
      promise->set_value(std::move(value));
    }
  });
  if (future.wait_for(limit) != std::future_status::ready) {
    return std::nullopt;
  }
  return future.get();
}

}  // namespace archipel::peer
