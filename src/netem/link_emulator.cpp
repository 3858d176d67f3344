#include "archipel/netem/link_emulator.hpp"

#include "asio/listen.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <deque>
#include <list>
#include <mutex>
#include <random>

namespace archipel::netem {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Relay {
  tcp::socket client;
  tcp::socket server;
  explicit Relay(tcp::socket c) : client(std::move(c)), server(client.get_executor()) {}
  bool closed = false;  // on the relay's strand, like the sockets
  void close() {
    closed = true;
    boost::system::error_code ignored;
    client.close(ignored);
    server.close(ignored);
  }
};

class LinkEmulatorImpl final : public LinkEmulator,
                               public std::enable_shared_from_this<LinkEmulatorImpl> {
 public:
  LinkEmulatorImpl(asio::io_context& io, std::string host, std::uint16_t port, LinkProfile profile)
      : io_(io),
        acceptor_(asio::make_strand(io)),
        host_(std::move(host)),
        port_(port),
        profile_(profile) {}

  boost::system::result<void, std::string> listen(const std::string& host, std::uint16_t port) {
    auto bound = net::listen(acceptor_, host, port);
    if (!bound) {
      return boost::system::result<void, std::string>(boost::system::in_place_error,
                                                      "link emulator: " + bound.error());
    }
    listen_port_ = *bound;
    return {};
  }

  void run() {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(shared_from_this()), asio::detached);
  }

  ~LinkEmulatorImpl() override {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    close_all();
  }

  std::uint16_t port() const override { return listen_port_; }
  asio::any_io_executor executor() { return acceptor_.get_executor(); }
  void close_acceptor() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

  void set_profile(LinkProfile profile) override {
    std::lock_guard lock(mu_);
    profile_ = profile;
  }
  void cut() override {
    cut_ = true;
    close_all();
  }
  void heal() override { cut_ = false; }
  void stall() override { stalled_ = true; }
  void resume() override { stalled_ = false; }
  std::uint64_t bytes() const override { return bytes_; }
  LinkProfile profile() const override {
    std::lock_guard lock(mu_);
    return profile_;
  }
  bool is_cut() const override { return cut_; }
  bool is_stalled() const override { return stalled_; }

 private:
  void close_all() {
    std::lock_guard lock(mu_);
    for (auto& weak : relays_) {
      if (auto r = weak.lock()) {
        asio::post(r->client.get_executor(), [r] { r->close(); });
      }
    }
    relays_.clear();
  }

  static awaitable<void> accept_loop(std::shared_ptr<LinkEmulatorImpl> self) {
    for (;;) {
      auto [ec, socket] =
          co_await self->acceptor_.async_accept(asio::make_strand(self->io_), use_nothrow);
      if (ec) {
        if (!self->acceptor_.is_open())
          co_return;
        continue;
      }
      if (self->cut_) {
        boost::system::error_code ignored;
        socket.close(ignored);  // a cut link refuses new connections
        continue;
      }
      auto relay = std::make_shared<Relay>(std::move(socket));
      {
        std::lock_guard lock(self->mu_);
        self->relays_.push_back(relay);
      }
      asio::co_spawn(relay->client.get_executor(), connect_and_pump(self, relay), asio::detached);
    }
  }

  static awaitable<void> connect_and_pump(std::shared_ptr<LinkEmulatorImpl> self,
                                          std::shared_ptr<Relay> relay) {
    boost::system::error_code ec;
    const tcp::endpoint target(asio::ip::make_address(self->host_, ec), self->port_);
    if (ec) {
      relay->close();
      co_return;
    }
    auto [cec] = co_await relay->server.async_connect(target, use_nothrow);
    // A cut while connecting closed a socket not yet open: the connect opened it again.
    if (cec || relay->closed || self->cut_) {
      relay->close();
      co_return;
    }
    // The link adds only what it is told to: Nagle's algorithm on the relay's own sockets would
    // hold a small write back until the previous one is acknowledged (a delayed ACK: 40 ms).
    boost::system::error_code ignored;
    relay->client.set_option(tcp::no_delay(true), ignored);
    relay->server.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(relay->client.get_executor(), pump(self, relay, relay->client, relay->server),
                   asio::detached);
    co_await pump(self, relay, relay->server, relay->client);
  }

  // One direction of a relay: a reader stamps each chunk with the time the profile says it
  // arrives and queues it; a writer delivers the queue in order when each chunk is due. The two
  // are decoupled, so latency does not limit throughput (a chunk in flight does not hold back
  // the next read), while bandwidth does: a chunk starts on the wire once the previous one has
  // been sent. The queue is bounded (a link's buffers): a full queue stops reading, and TCP's
  // flow control pushes back on the sender.
  struct Direction {
    explicit Direction(const asio::any_io_executor& ex) : wake(ex) {
      wake.expires_at(asio::steady_timer::time_point::max());
    }
    struct Chunk {
      std::vector<char> bytes;
      std::chrono::steady_clock::time_point due;
    };
    std::deque<Chunk> queue;
    std::size_t queued_bytes = 0;
    bool reading_done = false;
    bool writing_done = false;
    asio::steady_timer wake;  // cancelled when the other side of the queue moved
  };
  static constexpr std::size_t kQueueLimit = 4 * 1024 * 1024;

  static awaitable<void> pump(std::shared_ptr<LinkEmulatorImpl> self, std::shared_ptr<Relay> relay,
                              tcp::socket& from, tcp::socket& to) {
    auto d = std::make_shared<Direction>(from.get_executor());
    asio::co_spawn(from.get_executor(), deliver(self, relay, d, to), asio::detached);
    std::mt19937_64 rng(std::random_device{}());
    auto wire_free = std::chrono::steady_clock::now();  // when the link finishes sending
    auto last_due = wire_free;
    for (;;) {
      while (d->queued_bytes >= kQueueLimit && !d->writing_done) {
        co_await d->wake.async_wait(use_nothrow);
      }
      if (d->writing_done) {
        break;
      }
      std::vector<char> buffer(64 * 1024);
      auto [rec, n] = co_await from.async_read_some(asio::buffer(buffer), use_nothrow);
      if (rec) {
        break;
      }
      buffer.resize(n);
      LinkProfile p;
      {
        std::lock_guard lock(self->mu_);
        p = self->profile_;
      }
      const auto now = std::chrono::steady_clock::now();
      auto sent = std::max(now, wire_free);
      if (p.bandwidth_bytes_per_second > 0) {
        sent += std::chrono::microseconds(n * 1000000 / p.bandwidth_bytes_per_second);
      }
      wire_free = sent;
      auto delay = p.latency;
      if (p.jitter.count() > 0) {
        delay += std::chrono::microseconds(
            std::uniform_int_distribution<long long>(-p.jitter.count(), p.jitter.count())(rng));
      }
      // A link keeps byte order: a chunk never overtakes the one before it.
      const auto due = std::max(sent + std::max(delay, std::chrono::microseconds(0)), last_due);
      last_due = due;
      d->queued_bytes += n;
      d->queue.push_back({std::move(buffer), due});
      d->wake.cancel();
    }
    d->reading_done = true;
    d->wake.cancel();
  }

  static awaitable<void> deliver(std::shared_ptr<LinkEmulatorImpl> self,
                                 std::shared_ptr<Relay> relay, std::shared_ptr<Direction> d,
                                 tcp::socket& to) {
    asio::steady_timer timer(to.get_executor());
    for (;;) {
      if (d->queue.empty()) {
        if (d->reading_done) {
          break;
        }
        co_await d->wake.async_wait(use_nothrow);
        continue;
      }
      timer.expires_at(d->queue.front().due);
      co_await timer.async_wait(use_nothrow);
      while (self->stalled_ && !self->cut_) {
        timer.expires_after(std::chrono::milliseconds(5));
        co_await timer.async_wait(use_nothrow);
      }
      if (self->cut_) {
        break;
      }
      Direction::Chunk chunk = std::move(d->queue.front());
      d->queue.pop_front();
      d->queued_bytes -= chunk.bytes.size();
      d->wake.cancel();
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(chunk.bytes), use_nothrow);
      if (wec) {
        break;
      }
      self->bytes_ += wn;
    }
    d->writing_done = true;
    d->wake.cancel();
    relay->close();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::string host_;
  std::uint16_t port_;
  std::uint16_t listen_port_ = 0;
  mutable std::mutex mu_;  // guards profile_ and relays_
  LinkProfile profile_;
  std::list<std::weak_ptr<Relay>> relays_;
  std::atomic<bool> cut_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<std::uint64_t> bytes_{0};
};

// The emulator's coroutines hold it through shared_ptr; the unique_ptr handed out owns a
// reference and, on destruction, closes everything.
class Handle final : public LinkEmulator {
 public:
  explicit Handle(std::shared_ptr<LinkEmulatorImpl> impl) : impl_(std::move(impl)) {}
  ~Handle() override {
    impl_->cut();
    auto impl = impl_;
    asio::post(impl->executor(), [impl] { impl->close_acceptor(); });
  }
  std::uint16_t port() const override { return impl_->port(); }
  void set_profile(LinkProfile p) override { impl_->set_profile(p); }
  void cut() override { impl_->cut(); }
  void heal() override { impl_->heal(); }
  void stall() override { impl_->stall(); }
  void resume() override { impl_->resume(); }
  std::uint64_t bytes() const override { return impl_->bytes(); }
  LinkProfile profile() const override { return impl_->profile(); }
  bool is_cut() const override { return impl_->is_cut(); }
  bool is_stalled() const override { return impl_->is_stalled(); }

 private:
  std::shared_ptr<LinkEmulatorImpl> impl_;
};

}  // namespace

boost::system::result<std::unique_ptr<LinkEmulator>, std::string> LinkEmulator::start(
    boost::asio::io_context& io, std::string target_host, std::uint16_t target_port,
    LinkProfile profile, const std::string& listen_host, std::uint16_t listen_port) {
  auto impl = std::make_shared<LinkEmulatorImpl>(io, std::move(target_host), target_port, profile);
  auto listening = impl->listen(listen_host, listen_port);
  if (!listening) {
    return boost::system::result<std::unique_ptr<LinkEmulator>, std::string>(
        boost::system::in_place_error, listening.error());
  }
  impl->run();
  return std::unique_ptr<LinkEmulator>(new Handle(std::move(impl)));
}

}  // namespace archipel::netem
