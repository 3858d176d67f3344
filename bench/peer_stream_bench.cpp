// The peer channel over loopback sockets, side by side with plain TCP in the same run:
//   - throughput of one stream carrying 64 KiB messages (handshake done, encryption, framing,
//     flow control), against the same bytes written in 64 KiB chunks to a plain TCP socket;
//   - round trip of a small request and its answer (a unary call), against a plain TCP
//     ping-pong of the same size.
// Each site runs on its own io_context and thread, as in a site process. Prints the median of
// each figure over the rounds and the ratio to plain TCP.
// Run: build/release/bench/peer_stream_bench [rounds] [MiB per round]

#include "archipel/peer/peer_node.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using archipel::peer::Bytes;
using archipel::peer::Identity;
using archipel::peer::PeerNode;
using archipel::peer::PeerStream;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kChunk = 64 * 1024;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> a) {
  std::promise<T> promise;
  auto future = promise.get_future();
  asio::co_spawn(io, std::move(a), [&promise](std::exception_ptr e, T value) {
    if (e) {
      promise.set_exception(e);
    } else {
      promise.set_value(std::move(value));
    }
  });
  return future.get();
}

struct Site {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  std::unique_ptr<PeerNode> node;
  ~Site() {
    node.reset();
    guard.reset();
    io.stop();
    thread.join();
  }
};

// Plain TCP over loopback: `bytes` written in 64 KiB chunks, read on another thread.
double plain_tcp_throughput(std::size_t bytes) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket writer(io);
  writer.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket reader = acceptor.accept();
  std::thread t([&] {
    std::vector<std::uint8_t> buf(kChunk);
    std::size_t got = 0;
    boost::system::error_code ec;
    while (got < bytes && !ec) {
      got += reader.read_some(asio::buffer(buf), ec);
    }
  });
  const Bytes chunk(kChunk, 0x5a);
  const auto start = Clock::now();
  for (std::size_t sent = 0; sent < bytes; sent += kChunk) {
    asio::write(writer, asio::buffer(chunk));
  }
  t.join();
  return static_cast<double>(bytes) / seconds_since(start) / 1e6;
}

// Plain TCP ping-pong of `size` bytes, `n` times; returns each round trip in microseconds.
std::vector<double> plain_tcp_round_trips(std::size_t size, int n) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  client.set_option(asio::ip::tcp::no_delay(true));
  asio::ip::tcp::socket server = acceptor.accept();
  server.set_option(asio::ip::tcp::no_delay(true));
  std::thread t([&] {
    std::vector<std::uint8_t> buf(size);
    for (int i = 0; i < n; ++i) {
      asio::read(server, asio::buffer(buf));
      asio::write(server, asio::buffer(buf));
    }
  });
  std::vector<std::uint8_t> buf(size, 1);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const auto start = Clock::now();
    asio::write(client, asio::buffer(buf));
    asio::read(client, asio::buffer(buf));
    out.push_back(seconds_since(start) * 1e6);
  }
  t.join();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::size_t mib = argc > 2 ? static_cast<std::size_t>(std::atoi(argv[2])) : 512;
  const std::size_t bytes = mib * 1024 * 1024;
  spdlog::set_level(spdlog::level::warn);

  const Identity paris_id = Identity::generate("paris");
  const Identity nantes_id = Identity::generate("nantes");
  Site paris;
  Site nantes;
  PeerNode::Options p;
  p.identity = paris_id;
  p.peers = {{"nantes", "127.0.0.1", 1, nantes_id.public_key}};  // nantes dials
  paris.node = std::move(*PeerNode::start(paris.io, p));
  PeerNode::Options n;
  n.identity = nantes_id;
  n.peers = {{"paris", "127.0.0.1", paris.node->port(), paris_id.public_key}};
  nantes.node = std::move(*PeerNode::start(nantes.io, n));
  while (nantes.node->status()[0].state != archipel::peer::PeerState::kReachable) {
    std::this_thread::sleep_for(5ms);
  }

  paris.node->handle("sink", [](std::shared_ptr<PeerStream> s, Bytes) -> asio::awaitable<void> {
    std::size_t received = 0;
    for (;;) {
      auto m = co_await s->receive();
      if (!m || !*m) {
        break;
      }
      received += (*m)->size();
    }
    co_await s->send(Bytes(8, static_cast<std::uint8_t>(received & 0xff)), true);
  });
  paris.node->handle("echo", [](std::shared_ptr<PeerStream> s, Bytes r) -> asio::awaitable<void> {
    co_await s->send(std::move(r), true);
  });

  std::vector<double> stream_mbps;
  std::vector<double> tcp_mbps;
  std::vector<double> call_us;
  std::vector<double> tcp_rtt_us;
  constexpr int kCalls = 2000;
  constexpr std::size_t kSmall = 200;
  for (int r = 0; r < rounds; ++r) {
    tcp_mbps.push_back(plain_tcp_throughput(bytes));

    const auto start = Clock::now();
    const bool ok = run_on(nantes.io, [&]() -> asio::awaitable<bool> {
      auto s = co_await nantes.node->open("paris", "sink", {}, 0ms, false);
      if (!s) {
        co_return false;
      }
      for (std::size_t sent = 0; sent < bytes; sent += kChunk) {
        if (!co_await (*s)->send(Bytes(kChunk, 0x5a), sent + kChunk >= bytes)) {
          co_return false;
        }
      }
      auto done = co_await (*s)->receive();  // the sink answers once it has read everything
      co_return done&&* done;
    }());
    if (!ok) {
      std::fprintf(stderr, "stream failed\n");
      return 1;
    }
    stream_mbps.push_back(static_cast<double>(bytes) / seconds_since(start) / 1e6);

    const auto tcp = plain_tcp_round_trips(kSmall, kCalls);
    tcp_rtt_us.insert(tcp_rtt_us.end(), tcp.begin(), tcp.end());
    run_on(nantes.io, [&]() -> asio::awaitable<bool> {
      for (int i = 0; i < kCalls; ++i) {
        const auto t = Clock::now();
        auto answer = co_await nantes.node->call("paris", "echo", Bytes(kSmall, 1), 5s);
        if (!answer) {
          co_return false;
        }
        call_us.push_back(seconds_since(t) * 1e6);
      }
      co_return true;
    }());
    std::fprintf(stderr, "round %d: stream %.0f MB/s, tcp %.0f MB/s\n", r + 1, stream_mbps.back(),
                 tcp_mbps.back());
  }

  std::printf("peer channel over loopback, %d rounds of %zu MiB (medians)\n", rounds, mib);
  std::printf("| case | peer stream | plain TCP | ratio |\n|---|---|---|---|\n");
  std::printf("| throughput, 64 KiB messages | %.0f MB/s | %.0f MB/s | %.2f |\n",
              median(stream_mbps), median(tcp_mbps), median(stream_mbps) / median(tcp_mbps));
  std::printf("| round trip %zu B, p50 | %.1f us | %.1f us | %.2f |\n", kSmall, median(call_us),
              median(tcp_rtt_us), median(call_us) / median(tcp_rtt_us));
  std::printf("| round trip %zu B, p99 | %.1f us | %.1f us | %.2f |\n", kSmall,
              percentile(call_us, 0.99), percentile(tcp_rtt_us, 0.99),
              percentile(call_us, 0.99) / percentile(tcp_rtt_us, 0.99));
  return 0;
}
