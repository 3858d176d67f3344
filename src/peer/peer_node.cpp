#include "archipel/peer/peer_node.hpp"

#include "archipel/peer/secure_channel.hpp"
#include "peer.pb.h"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <map>
#include <mutex>
#include <random>

namespace archipel::peer {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Steady = std::chrono::steady_clock;

TimePoint now() {
  return TimePoint(Steady::now().time_since_epoch());
}

class PeerNodeImpl;

// One authenticated connection to one peer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::unique_ptr<SecureChannel> channel)
      : socket_(std::move(socket)), channel_(std::move(channel)) {}
  tcp::socket socket_;
  std::unique_ptr<SecureChannel> channel_;
  bool closed_ = false;
  bool writing_ = false;  // a flush() is under way

  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
};

struct PeerSlot {
  PeerAddress address;
  PeerHealth health;
  std::weak_ptr<Connection> connection;
  std::uint64_t last_received_ns = 0;  // echoed back for the peer's RTT
};

class PeerNodeImpl final : public std::enable_shared_from_this<PeerNodeImpl> {
 public:
  PeerNodeImpl(asio::io_context& io, PeerNode::Options options)
      : strand_(asio::make_strand(io)), acceptor_(strand_), options_(std::move(options)) {
    for (const PeerAddress& p : options_.peers) {
      slots_.emplace(p.name, PeerSlot{p, PeerHealth(options_.detector), {}, 0});
    }
  }

  boost::system::result<void, std::string> listen() {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) {
      return boost::system::result<void, std::string>(
          boost::system::in_place_error, "invalid peer listen address " + options_.host);
    }
    const tcp::endpoint ep(address, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(ep, ec);
    if (!ec)
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return boost::system::result<void, std::string>(
          boost::system::in_place_error, "cannot listen for peers on " + options_.host + ":" +
                                             std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return {};
  }

  void run() {
    auto self = shared_from_this();
    asio::co_spawn(strand_, accept_loop(self), asio::detached);
    asio::co_spawn(strand_, evaluate_loop(self), asio::detached);
    for (auto& [name, slot] : slots_) {
      if (options_.identity.site < name) {  // the name that sorts first dials
        asio::co_spawn(strand_, dial_loop(self, name), asio::detached);
      }
    }
  }

  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      boost::system::error_code ignored;
      self->acceptor_.close(ignored);
      for (auto& [name, slot] : self->slots_) {
        if (auto c = slot.connection.lock())
          c->close();
      }
    });
  }

  std::uint16_t port() const { return port_; }

  std::vector<PeerStatus> status() const {
    std::lock_guard lock(mu_);
    std::vector<PeerStatus> out;
    const TimePoint t = now();
    for (const auto& [name, slot] : slots_) {
      out.push_back(PeerStatus{name, slot.health.state(), slot.health.phi(t), slot.health.rtt(),
                               !slot.connection.expired()});
    }
    return out;
  }

  bool isolated() const {
    std::lock_guard lock(mu_);
    return isolation_.isolated();
  }

  LinkCounters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }

 private:
  KeyLookup keys() {
    return [self = shared_from_this()](std::string_view site) -> std::optional<PublicKey> {
      auto it = self->slots_.find(std::string(site));
      return it == self->slots_.end() ? std::nullopt
                                      : std::optional<PublicKey>(it->second.address.public_key);
    };
  }

  static awaitable<void> accept_loop(std::shared_ptr<PeerNodeImpl> self) {
    for (;;) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(use_nothrow);
      if (ec) {
        if (self->stopping_ || !self->acceptor_.is_open())
          co_return;
        continue;
      }
      auto conn = std::make_shared<Connection>(
          std::move(socket), SecureChannel::responder(self->options_.identity, self->keys()));
      asio::co_spawn(self->strand_, self->serve(self, conn), asio::detached);
    }
  }

  static awaitable<void> dial_loop(std::shared_ptr<PeerNodeImpl> self, std::string name) {
    std::mt19937_64 rng(std::random_device{}());
    auto backoff = std::chrono::milliseconds(50);
    asio::steady_timer timer(self->strand_);
    while (!self->stopping_) {
      const PeerAddress& a = self->slots_.at(name).address;
      boost::system::error_code ec;
      const tcp::endpoint ep(asio::ip::make_address(a.host, ec), a.port);
      tcp::socket socket(self->strand_);
      if (!ec) {
        std::tie(ec) = co_await socket.async_connect(ep, use_nothrow);
      }
      if (!ec) {
        backoff = std::chrono::milliseconds(50);
        auto conn = std::make_shared<Connection>(
            std::move(socket),
            SecureChannel::initiator(self->options_.identity, name, self->keys()));
        co_await self->serve(self, conn);  // returns when the connection ends
      }
      if (self->stopping_)
        break;
      // Jittered exponential backoff: 50 ms doubling to 2 s, each wait uniform in [½, 1]×.
      const auto wait = std::chrono::milliseconds(
          std::uniform_int_distribution<long long>(backoff.count() / 2, backoff.count())(rng));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      timer.expires_after(wait);
      co_await timer.async_wait(use_nothrow);
    }
  }

  // Writes whatever the channel has to send. One writer at a time per connection (all on the
  // node's strand): a caller finding a write under way leaves its bytes to that writer, which
  // loops until the channel has nothing left.
  awaitable<bool> flush(Connection& c) {
    if (c.writing_) {
      co_return true;
    }
    c.writing_ = true;
    bool ok = true;
    for (;;) {
      Bytes out = c.channel_->take_output();
      if (out.empty()) {
        break;
      }
      auto [ec, n] = co_await asio::async_write(c.socket_, asio::buffer(out), use_nothrow);
      spdlog::debug("peer: wrote {} of {} bytes: {}", n, out.size(), ec.message());
      if (ec) {
        ok = false;
        break;
      }
      std::lock_guard lock(mu_);
      counters_.bytes_sent += n;
    }
    c.writing_ = false;
    co_return ok;
  }

  awaitable<void> serve(std::shared_ptr<PeerNodeImpl> self, std::shared_ptr<Connection> c) {
    std::vector<std::uint8_t> buffer(64 * 1024);
    bool registered = false;
    if (!co_await flush(*c)) {
      c->close();
      co_return;
    }
    while (!c->closed_ && !stopping_) {
      auto [ec, n] = co_await c->socket_.async_read_some(asio::buffer(buffer), use_nothrow);
      if (ec)
        break;
      {
        std::lock_guard lock(mu_);
        counters_.bytes_received += n;
      }
      auto frames = c->channel_->feed(std::span(buffer.data(), n));
      spdlog::debug("peer: read {} bytes; established {}; {}", n, c->channel_->established(),
                    frames ? std::to_string(frames->size()) + " frames" : frames.error().message);
      if (!frames) {
        spdlog::warn("peer: connection closed: {} ({})", frames.error().message,
                     to_string(frames.error().fault));
        std::lock_guard lock(mu_);
        ++counters_.rejected;
        break;
      }
      if (c->channel_->established() && !registered) {
        registered = true;
        {
          std::lock_guard lock(mu_);
          auto& slot = slots_.at(c->channel_->peer());
          if (auto old = slot.connection.lock(); old && old != c) {
            old->close();  // one connection per pair: the newest wins
          }
          slot.connection = c;
        }
        spdlog::info("peer: connected to {}", c->channel_->peer());
        // Outside the lock: co_spawn may start the loop at once, and the loop takes the lock.
        asio::co_spawn(strand_, heartbeat_loop(self, c), asio::detached);
      }
      for (const Bytes& f : *frames) {
        on_frame(*c, f);
      }
      if (!co_await flush(*c))
        break;
    }
    c->close();
    (void)self;
  }

  void on_frame(Connection& c, const Bytes& bytes) {
    wire::Frame frame;
    if (!frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      spdlog::warn("peer: undecodable frame from {}", c.channel_->peer());
      return;
    }
    std::lock_guard lock(mu_);
    ++counters_.frames_received;
    if (frame.has_heartbeat()) {
      auto& slot = slots_.at(c.channel_->peer());
      const TimePoint t = now();
      std::optional<Duration> rtt;
      if (frame.heartbeat().echo_ns() != 0) {
        rtt = Duration(
            static_cast<std::int64_t>(static_cast<std::uint64_t>(t.time_since_epoch().count()) -
                                      frame.heartbeat().echo_ns()));
      }
      slot.health.on_heartbeat(t, rtt);
      slot.last_received_ns = frame.heartbeat().sent_ns();
    }
  }

  static awaitable<void> heartbeat_loop(std::shared_ptr<PeerNodeImpl> self,
                                        std::shared_ptr<Connection> c) {
    asio::steady_timer timer(self->strand_);
    const std::string peer = c->channel_->peer();
    while (!c->closed_ && !self->stopping_) {
      wire::Frame frame;
      frame.mutable_heartbeat()->set_sent_ns(
          static_cast<std::uint64_t>(now().time_since_epoch().count()));
      {
        std::lock_guard lock(self->mu_);
        frame.mutable_heartbeat()->set_echo_ns(self->slots_.at(peer).last_received_ns);
        ++self->counters_.frames_sent;
      }
      const std::string bytes = frame.SerializeAsString();
      const bool queued = static_cast<bool>(c->channel_->send(
          std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size())));
      // (co_await kept out of compound conditions: GCC 12 miscompiles those.)
      bool written = false;
      if (queued) {
        written = co_await self->flush(*c);
      }
      if (!written) {
        c->close();
        break;
      }
      timer.expires_after(self->options_.heartbeat);
      co_await timer.async_wait(use_nothrow);
    }
  }

  static awaitable<void> evaluate_loop(std::shared_ptr<PeerNodeImpl> self) {
    asio::steady_timer timer(self->strand_);
    while (!self->stopping_) {
      {
        std::lock_guard lock(self->mu_);
        std::vector<PeerState> states;
        const TimePoint t = now();
        for (auto& [name, slot] : self->slots_) {
          const PeerState before = slot.health.state();
          const PeerState after = slot.health.evaluate(t);
          if (before != after) {
            spdlog::info("peer {}: {} -> {} (phi {:.1f})", name, to_string(before),
                         to_string(after), slot.health.phi(t));
          }
          states.push_back(after);
        }
        const bool was = self->isolation_.isolated();
        if (self->isolation_.update(states) != was) {
          spdlog::warn("site {}", self->isolation_.isolated() ? "is Isolated: every peer is Down"
                                                              : "is no longer isolated");
        }
      }
      timer.expires_after(self->options_.heartbeat / 4);
      co_await timer.async_wait(use_nothrow);
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  tcp::acceptor acceptor_;
  PeerNode::Options options_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
  mutable std::mutex mu_;  // guards slots_' health and counters_, for status() from other threads
  std::map<std::string, PeerSlot> slots_;
  IsolationTracker isolation_;
  LinkCounters counters_;
};

class PeerNodeHandle final : public PeerNode {
 public:
  explicit PeerNodeHandle(std::shared_ptr<PeerNodeImpl> impl) : impl_(std::move(impl)) {}
  ~PeerNodeHandle() override { impl_->stop(); }
  std::uint16_t port() const override { return impl_->port(); }
  std::vector<PeerStatus> status() const override { return impl_->status(); }
  bool isolated() const override { return impl_->isolated(); }
  LinkCounters counters() const override { return impl_->counters(); }

 private:
  std::shared_ptr<PeerNodeImpl> impl_;
};

}  // namespace

boost::system::result<std::unique_ptr<PeerNode>, std::string> PeerNode::start(
    boost::asio::io_context& io, Options options) {
  if (!sodium_ready()) {
    return boost::system::result<std::unique_ptr<PeerNode>, std::string>(
        boost::system::in_place_error, "libsodium cannot be initialised");
  }
  auto impl = std::make_shared<PeerNodeImpl>(io, std::move(options));
  auto listening = impl->listen();
  if (!listening) {
    return boost::system::result<std::unique_ptr<PeerNode>, std::string>(
        boost::system::in_place_error, listening.error());
  }
  impl->run();
  return std::unique_ptr<PeerNode>(new PeerNodeHandle(std::move(impl)));
}

}  // namespace archipel::peer
