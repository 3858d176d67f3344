// The link emulator between a client and an echo server on loopback: it delays by at least the
// latency, throttles to the bandwidth, keeps byte order under jitter, holds bytes while stalled,
// and cuts and heals. Timing is asserted only as lower bounds (the emulator can never deliver
// early); how much later a loaded machine delivers is not a property of the emulator.

#include "archipel/netem/link_emulator.hpp"

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <numeric>
#include <thread>

namespace archipel::netem {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// An echo server on its own thread, the emulator on another io_context and thread.
class Link : public ::testing::Test {
 protected:
  void SetUp() override {
    echo_thread_ = std::thread([this] {
      try {
        for (;;) {
          tcp::socket s = acceptor_.accept();
          std::vector<char> buf(64 * 1024);
          boost::system::error_code ec;
          for (;;) {
            const std::size_t n = s.read_some(asio::buffer(buf), ec);
            if (ec || n == 0) {
              break;
            }
            asio::write(s, asio::buffer(buf.data(), n), ec);
          }
        }
      } catch (const std::exception&) {  // the acceptor was closed: the test is over
      }
    });
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    link_.reset();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    // Closing the acceptor does not wake an accept() already blocked on it (the kernel keeps
    // the socket listening until it returns): connect once and hang up, so that the echo
    // thread serves an empty connection and finds the acceptor closed on its next accept().
    {
      tcp::socket poke(client_io_);
      poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), echo_port_), ignored);
    }
    echo_thread_.join();
    guard_.reset();
    io_.stop();
    io_thread_.join();
  }

  void start(LinkProfile profile) {
    auto link = LinkEmulator::start(io_, "127.0.0.1", echo_port_, profile);
    ASSERT_TRUE(link) << link.error();
    link_ = std::move(*link);
  }

  tcp::socket connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), link_->port()));
    return s;
  }

  asio::io_context client_io_;
  tcp::acceptor acceptor_{client_io_, {asio::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t echo_port_ = acceptor_.local_endpoint().port();
  std::thread echo_thread_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::thread io_thread_;
  std::unique_ptr<LinkEmulator> link_;
};

TEST_F(Link, ARoundTripTakesAtLeastTwiceTheLatency) {
  start({.latency = 40ms});
  tcp::socket s = connect();
  char byte = 'x';
  const auto t = Clock::now();
  asio::write(s, asio::buffer(&byte, 1));
  asio::read(s, asio::buffer(&byte, 1));
  EXPECT_GE(Clock::now() - t, 80ms);
  EXPECT_EQ(byte, 'x');
}

TEST_F(Link, ManyChunksInFlightArriveIntactAndInOrder) {
  start({.latency = 50ms});  // 4 MiB: many 64 KiB chunks queued in the link at once
  tcp::socket s = connect();
  std::vector<char> out(4 * 1024 * 1024);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(i * 7 + i / 65536);
  }
  std::vector<char> in(out.size());
  std::thread writer([&] { asio::write(s, asio::buffer(out)); });
  asio::read(s, asio::buffer(in));
  writer.join();
  EXPECT_EQ(in, out);
}

TEST_F(Link, BandwidthThrottlesTheTransfer) {
  start({.bandwidth_bytes_per_second = 4 * 1024 * 1024});  // 4 MiB/s each way
  tcp::socket s = connect();
  const std::vector<char> out(1024 * 1024, 'b');
  std::vector<char> in(out.size());
  std::thread writer([&] { asio::write(s, asio::buffer(out)); });
  const auto t = Clock::now();
  asio::read(s, asio::buffer(in));
  writer.join();
  EXPECT_GE(Clock::now() - t, 250ms);  // 1 MiB at 4 MiB/s
  EXPECT_EQ(in, out);
}

TEST_F(Link, JitterNeverReordersBytes) {
  start({.latency = 5ms, .jitter = 5ms});
  tcp::socket s = connect();
  std::vector<std::uint32_t> out(20000);
  std::iota(out.begin(), out.end(), 0u);
  std::vector<std::uint32_t> in(out.size());
  std::thread writer([&] {
    for (std::size_t i = 0; i < out.size(); i += 500) {  // many small writes, many chunks
      asio::write(s, asio::buffer(&out[i], 500 * sizeof(std::uint32_t)));
    }
  });
  asio::read(s, asio::buffer(in));
  writer.join();
  EXPECT_EQ(in, out);
}

TEST_F(Link, AStallHoldsBytesUntilResumed) {
  start({});
  tcp::socket s = connect();
  link_->stall();
  char byte = 's';
  asio::write(s, asio::buffer(&byte, 1));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(s.available(), 0u);  // nothing came back while stalled
  link_->resume();
  asio::read(s, asio::buffer(&byte, 1));
  EXPECT_EQ(byte, 's');
}

TEST_F(Link, ACutClosesConnectionsAndRefusesNewOnesUntilHealed) {
  start({});
  tcp::socket s = connect();
  link_->cut();
  char byte = 'c';
  boost::system::error_code ec;
  asio::read(s, asio::buffer(&byte, 1), ec);  // the relay closes it
  EXPECT_TRUE(ec);
  tcp::socket refused = connect();
  asio::write(refused, asio::buffer(&byte, 1), ec);
  asio::read(refused, asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec);
  link_->heal();
  tcp::socket again = connect();
  asio::write(again, asio::buffer(&byte, 1));
  asio::read(again, asio::buffer(&byte, 1));
  EXPECT_EQ(byte, 'c');
}

}  // namespace
}  // namespace archipel::netem
