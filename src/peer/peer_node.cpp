#include "archipel/peer/peer_node.hpp"

#include "asio/listen.hpp"

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
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <deque>
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
struct StreamState;

// Frames are sealed when written, not when queued, so that heartbeats and credits can go ahead
// of bulk data already waiting; one write carries at most this much.
constexpr std::size_t kWriteBatch = 256 * 1024;
// What a message costs in flow-control credit: its bytes and a fixed overhead, so that empty
// messages are not free.
constexpr std::int64_t kMessageOverhead = 64;

std::int64_t cost(std::size_t bytes) {
  return static_cast<std::int64_t>(bytes) + kMessageOverhead;
}

// One authenticated connection to one peer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::unique_ptr<SecureChannel> channel)
      : socket_(std::move(socket)), channel_(std::move(channel)) {
    // Frames are batched by the writer already; Nagle would hold heartbeats and credits back.
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
  }
  tcp::socket socket_;
  std::unique_ptr<SecureChannel> channel_;
  bool closed_ = false;
  bool writing_ = false;  // a flush() is under way
  Bytes out_;  // what the writer writes (swapped with the channel buffer, so both are reused)
  std::deque<std::string> urgent_;  // serialised frames: heartbeats, credits, resets
  std::deque<std::string> bulk_;    // serialised frames: stream opens and data
  std::map<std::uint64_t, std::shared_ptr<StreamState>> opened_;    // by this site
  std::map<std::uint64_t, std::shared_ptr<StreamState>> accepted_;  // by the peer
  std::uint64_t next_stream_ = 1;

  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
};

// One end of a stream; lives on the node's strand.
struct StreamState {
  template <class Executor>
  explicit StreamState(const Executor& ex) : recv_wake(ex), send_wake(ex), deadline(ex) {
    recv_wake.expires_at(asio::steady_timer::time_point::max());
    send_wake.expires_at(asio::steady_timer::time_point::max());
  }
  std::uint64_t id = 0;
  bool opener = false;  // this site opened it
  std::string peer;
  std::weak_ptr<Connection> connection;
  std::int64_t window = 0;  // what this side grants the other
  std::deque<Bytes> inbox;
  std::int64_t inbox_cost = 0;     // received and not yet consumed
  std::int64_t pending_grant = 0;  // consumed and not yet granted back
  std::int64_t credit = 0;         // what this side may still send
  bool local_done = false;         // this side's half ended
  bool remote_done = false;        // the other side's half ended
  std::optional<RpcError> error;
  // Condition variables of a strand: waiters wait on a timer that never expires; notify
  // cancels the wait, and each waiter checks its condition again.
  asio::steady_timer recv_wake;
  asio::steady_timer send_wake;
  asio::steady_timer deadline;

  [[nodiscard]] bool ended() const { return error.has_value() || (local_done && remote_done); }
  void wake() {
    recv_wake.cancel();
    send_wake.cancel();
  }
};

struct PeerSlot {
  PeerAddress address;
  PeerHealth health;
  std::weak_ptr<Connection> connection;
  std::uint64_t last_received_ns = 0;  // the peer's latest sent_ns, echoed back for its RTT
  TimePoint last_received_at{};        // when it arrived here (the echo's holding time)
  LinkCounters counters;
};

bool cancelled(const asio::cancellation_state& cs) {
  return cs.cancelled() != asio::cancellation_type::none;
}

class PeerNodeImpl final : public std::enable_shared_from_this<PeerNodeImpl> {
 public:
  using Strand = asio::strand<asio::io_context::executor_type>;

  PeerNodeImpl(asio::io_context& io, PeerNode::Options options)
      : io_(io), strand_(asio::make_strand(io)), acceptor_(strand_), options_(std::move(options)) {
    for (const PeerAddress& p : options_.peers) {
      slots_.emplace(p.name, PeerSlot{p, PeerHealth(options_.detector), {}, 0, {}});
    }
  }

  boost::system::result<void, std::string> listen() {
    auto port = net::listen(acceptor_, options_.host, options_.port);
    if (!port) {
      return boost::system::result<void, std::string>(boost::system::in_place_error,
                                                      "peer channel: " + port.error());
    }
    port_ = *port;
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
        if (auto c = slot.connection.lock()) {
          self->drop(*c, "the site is stopping");
        }
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
                               !slot.connection.expired(), slot.counters});
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

  void handle(std::string method, StreamHandler handler) {
    std::lock_guard lock(handlers_mu_);
    handlers_[std::move(method)] = std::move(handler);
  }

  // ---- streams (everything below runs on the strand) ----

  // Applies `f` to the site's counters and, once `c` is authenticated, to its peer's.
  template <class F>
  void count(const Connection* c, F f) {
    std::lock_guard lock(mu_);
    f(counters_);
    if (c != nullptr && c->channel_->established()) {
      if (auto it = slots_.find(c->channel_->peer()); it != slots_.end()) {
        f(it->second.counters);
      }
    }
  }

  void changed() {
    if (options_.on_change) {
      options_.on_change();
    }
  }

  awaitable<RpcResult<std::shared_ptr<StreamState>>> open_stream(std::string peer,
                                                                 std::string method, Bytes request,
                                                                 std::chrono::milliseconds deadline,
                                                                 bool last) {
    auto it = slots_.find(peer);
    if (it == slots_.end()) {
      co_return RpcError{RpcCode::kUnreachable, "unknown site '" + peer + "'"};
    }
    auto c = it->second.connection.lock();
    if (!c || c->closed_) {
      co_return RpcError{RpcCode::kUnreachable, "site '" + peer + "' is not connected"};
    }
    if (it->second.health.state() == PeerState::kDown) {
      co_return RpcError{RpcCode::kUnreachable, "site '" + peer + "' is Down"};
    }
    if (request.size() > kMaxStreamMessage) {
      co_return RpcError{RpcCode::kTooLarge, "request of " + std::to_string(request.size()) +
                                                 " bytes over the maximum of " +
                                                 std::to_string(kMaxStreamMessage)};
    }
    auto s = std::make_shared<StreamState>(strand_);
    s->id = c->next_stream_++;
    s->opener = true;
    s->peer = peer;
    s->connection = c;
    s->window = options_.stream_window;
    s->local_done = last;
    c->opened_.emplace(s->id, s);
    count(c.get(), [](LinkCounters& k) { ++k.streams_opened; });
    wire::Frame frame;
    auto* open = frame.mutable_open();
    open->set_id(s->id);
    open->set_method(std::move(method));
    open->set_payload(request.data(), request.size());
    open->set_deadline_ms(static_cast<std::uint32_t>(deadline.count()));
    open->set_window(static_cast<std::uint32_t>(s->window));
    open->set_last(last);
    start_deadline(s, deadline);
    enqueue(*c, frame, false);
    if (!co_await flush(*c)) {
      fail(s, {RpcCode::kUnreachable, "connection to '" + peer + "' lost"}, false);
      co_return *s->error;
    }
    co_return s;
  }

  awaitable<RpcResult<void>> stream_send(std::shared_ptr<StreamState> s, Bytes message, bool last) {
    if (message.size() > kMaxStreamMessage) {
      co_return RpcError{RpcCode::kTooLarge, "message of " + std::to_string(message.size()) +
                                                 " bytes over the maximum of " +
                                                 std::to_string(kMaxStreamMessage)};
    }
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (s->error) {
        co_return *s->error;
      }
      if (s->local_done) {
        co_return RpcError{RpcCode::kProtocol, "this side of the stream has already ended"};
      }
      if (s->credit > 0) {
        break;
      }
      co_await s->send_wake.async_wait(use_nothrow);
      if (cancelled(cs) && !s->error) {
        fail(s, {RpcCode::kCancelled, "the sender gave up"}, true);
      }
    }
    auto c = s->connection.lock();
    if (!c || c->closed_) {
      fail(s, {RpcCode::kUnreachable, "connection to '" + s->peer + "' lost"}, false);
      co_return *s->error;
    }
    s->credit -= cost(message.size());
    wire::Frame frame;
    auto* data = frame.mutable_data();
    data->set_id(s->id);
    data->set_from_opener(s->opener);
    data->set_payload(message.data(), message.size());
    data->set_last(last);
    if (last) {
      end_local(s);
    }
    enqueue(*c, frame, false);
    if (!co_await flush(*c)) {
      fail(s, {RpcCode::kUnreachable, "connection to '" + s->peer + "' lost"}, false);
      co_return *s->error;
    }
    co_return RpcResult<void>();
  }

  awaitable<RpcResult<std::optional<Bytes>>> stream_receive(std::shared_ptr<StreamState> s) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (s->error) {
        co_return *s->error;
      }
      if (!s->inbox.empty()) {
        Bytes message = std::move(s->inbox.front());
        s->inbox.pop_front();
        grant(s, cost(message.size()));
        co_return std::optional<Bytes>(std::move(message));
      }
      if (s->remote_done) {
        co_return std::optional<Bytes>();
      }
      co_await s->recv_wake.async_wait(use_nothrow);
      if (cancelled(cs) && !s->error && s->inbox.empty()) {
        fail(s, {RpcCode::kCancelled, "the receiver gave up"}, true);
      }
    }
  }

  awaitable<std::optional<RpcError>> stream_closed(std::shared_ptr<StreamState> s) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (s->error) {
        co_return *s->error;
      }
      if (s->ended()) {
        co_return std::nullopt;
      }
      co_await s->recv_wake.async_wait(use_nothrow);
      if (cancelled(cs) && !s->ended()) {
        co_return RpcError{RpcCode::kCancelled, "the waiter gave up"};
      }
    }
  }

  // Ends a stream with an error: wakes its waiters, forgets it, and tells the peer when
  // `notify` (not when the peer told us, nor when the connection is gone).
  void fail(const std::shared_ptr<StreamState>& s, RpcError why, bool notify) {
    if (s->ended()) {
      return;
    }
    spdlog::debug("peer {}: stream {} ({}) reset: {}: {}", s->peer, s->id,
                  s->opener ? "opened here" : "accepted", to_string(why.code), why.message);
    s->error = std::move(why);
    s->wake();
    s->deadline.cancel();
    auto c = s->connection.lock();
    count(c.get(), [](LinkCounters& k) { ++k.streams_reset; });
    if (!c) {
      return;
    }
    (s->opener ? c->opened_ : c->accepted_).erase(s->id);
    if (notify && !c->closed_) {
      wire::Frame frame;
      auto* reset = frame.mutable_reset();
      reset->set_id(s->id);
      reset->set_from_opener(s->opener);
      reset->set_code(static_cast<std::uint32_t>(s->error->code));
      reset->set_message(s->error->message);
      enqueue(*c, frame, true);
      spawn_flush(c);
    }
  }

  // The handler of an accepted stream returned: its half ends if it has not.
  void finish_accepted(const std::shared_ptr<StreamState>& s) {
    if (s->ended() || s->local_done) {
      return;
    }
    auto c = s->connection.lock();
    if (!c || c->closed_) {
      return;
    }
    wire::Frame frame;
    auto* data = frame.mutable_data();
    data->set_id(s->id);
    data->set_from_opener(false);
    data->set_last(true);
    data->set_end_only(true);
    end_local(s);
    enqueue(*c, frame, false);
    spawn_flush(c);
  }

  Strand& strand() { return strand_; }

 private:
  KeyLookup keys() {
    return [self = shared_from_this()](std::string_view site) -> std::optional<PublicKey> {
      auto it = self->slots_.find(std::string(site));
      return it == self->slots_.end() ? std::nullopt
                                      : std::optional<PublicKey>(it->second.address.public_key);
    };
  }

  void end_local(const std::shared_ptr<StreamState>& s) {
    s->local_done = true;
    forget_if_ended(s);
  }

  void forget_if_ended(const std::shared_ptr<StreamState>& s) {
    if (s->local_done && s->remote_done) {
      s->deadline.cancel();
      s->recv_wake.cancel();  // closed() waits on it
      if (auto c = s->connection.lock()) {
        (s->opener ? c->opened_ : c->accepted_).erase(s->id);
      }
    }
  }

  // The application consumed `amount` of credit: grant it back in batches of a quarter window.
  void grant(const std::shared_ptr<StreamState>& s, std::int64_t amount) {
    s->inbox_cost -= amount;
    s->pending_grant += amount;
    if (s->remote_done || s->pending_grant < s->window / 4) {
      return;
    }
    auto c = s->connection.lock();
    if (!c || c->closed_) {
      return;
    }
    wire::Frame frame;
    auto* credit = frame.mutable_credit();
    credit->set_id(s->id);
    credit->set_from_opener(s->opener);
    credit->set_bytes(static_cast<std::uint32_t>(s->pending_grant));
    s->pending_grant = 0;
    enqueue(*c, frame, true);
    spawn_flush(c);
  }

  void start_deadline(const std::shared_ptr<StreamState>& s, std::chrono::milliseconds deadline) {
    if (deadline.count() <= 0) {
      return;
    }
    s->deadline.expires_after(deadline);
    s->deadline.async_wait([self = shared_from_this(), s, deadline](boost::system::error_code ec) {
      if (!ec) {
        self->fail(s,
                   {RpcCode::kDeadlineExceeded,
                    "deadline of " + std::to_string(deadline.count()) + " ms exceeded"},
                   true);
      }
    });
  }

  void enqueue(Connection& c, const wire::Frame& frame, bool urgent) {
    (urgent ? c.urgent_ : c.bulk_).push_back(frame.SerializeAsString());
  }

  void spawn_flush(const std::shared_ptr<Connection>& c) {
    if (c->writing_) {
      return;
    }
    asio::co_spawn(
        strand_,
        [](std::shared_ptr<PeerNodeImpl> self,
           std::shared_ptr<Connection> conn) -> awaitable<void> {
          if (!co_await self->flush(*conn)) {
            self->drop(*conn, "write failed");
          }
        }(shared_from_this(), c),
        asio::detached);
  }

  // Closes a connection and fails the streams it carried.
  void drop(Connection& c, std::string_view why) {
    if (!c.closed_) {
      c.close();
    }
    const std::string peer = c.channel_->peer();
    bool was_current = false;
    if (c.channel_->established()) {
      std::lock_guard lock(mu_);
      if (auto it = slots_.find(peer);
          it != slots_.end() && it->second.connection.lock().get() == &c) {
        it->second.connection.reset();
        was_current = true;
      }
    }
    if (was_current) {
      spdlog::info("peer: connection to {} closed: {}", peer, why);
      changed();
    }
    for (auto* streams : {&c.opened_, &c.accepted_}) {
      auto copy = std::move(*streams);
      streams->clear();
      for (auto& [id, s] : copy) {
        fail(s, {RpcCode::kUnreachable, "connection to '" + peer + "' lost: " + std::string(why)},
             false);
      }
    }
  }

  static awaitable<void> accept_loop(std::shared_ptr<PeerNodeImpl> self) {
    for (;;) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(use_nothrow);
      if (ec) {
        if (self->stopping_ || !self->acceptor_.is_open()) {
          co_return;
        }
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
      if (self->stopping_) {
        break;
      }
      // Jittered exponential backoff: 50 ms doubling to 2 s, each wait uniform in [½, 1]×.
      const auto wait = std::chrono::milliseconds(
          std::uniform_int_distribution<long long>(backoff.count() / 2, backoff.count())(rng));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      timer.expires_after(wait);
      co_await timer.async_wait(use_nothrow);
    }
  }

  // Seals and writes whatever is queued, urgent frames first. One writer at a time per
  // connection (all on the node's strand): a caller finding a write under way leaves its frames
  // to that writer, which loops until nothing is left.
  awaitable<bool> flush(Connection& c) {
    if (c.writing_) {
      co_return !c.closed_;
    }
    c.writing_ = true;
    bool ok = true;
    while (ok && !c.closed_) {
      std::size_t batch = 0;
      std::uint64_t frames = 0;
      while (batch < kWriteBatch && (!c.urgent_.empty() || !c.bulk_.empty())) {
        auto& queue = c.urgent_.empty() ? c.bulk_ : c.urgent_;
        const std::string frame = std::move(queue.front());
        queue.pop_front();
        if (!c.channel_->send(
                std::span(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()))) {
          ok = false;
          break;
        }
        batch += frame.size();
        ++frames;
      }
      c.channel_->take_output(c.out_);
      if (c.out_.empty()) {
        break;
      }
      auto [ec, n] = co_await asio::async_write(c.socket_, asio::buffer(c.out_), use_nothrow);
      if (ec) {
        ok = false;
        break;
      }
      count(&c, [&](LinkCounters& k) {
        k.bytes_sent += n;
        k.frames_sent += frames;
      });
    }
    c.writing_ = false;
    co_return ok && !c.closed_;
  }

  awaitable<void> serve(std::shared_ptr<PeerNodeImpl> self, std::shared_ptr<Connection> c) {
    std::vector<std::uint8_t> buffer(64 * 1024);
    bool registered = false;
    std::string why = "closed by the peer";
    if (!co_await flush(*c)) {
      drop(*c, "handshake write failed");
      co_return;
    }
    while (!c->closed_ && !stopping_) {
      auto [ec, n] = co_await c->socket_.async_read_some(asio::buffer(buffer), use_nothrow);
      if (ec) {
        why = ec.message();
        break;
      }
      count(c.get(), [&](LinkCounters& k) { k.bytes_received += n; });
      auto frames = c->channel_->feed(std::span(buffer.data(), n));
      if (!frames) {
        spdlog::warn("peer: connection closed: {} ({})", frames.error().message,
                     to_string(frames.error().fault));
        why = frames.error().message;
        count(c.get(), [](LinkCounters& k) { ++k.rejected; });
        break;
      }
      if (c->channel_->established() && !registered) {
        registered = true;
        std::shared_ptr<Connection> old;
        {
          std::lock_guard lock(mu_);
          auto& slot = slots_.at(c->channel_->peer());
          old = slot.connection.lock();
          slot.connection = c;
        }
        if (old && old != c) {
          drop(*old, "replaced by a newer connection");  // one connection per pair
        }
        spdlog::info("peer: connected to {}", c->channel_->peer());
        asio::co_spawn(strand_, heartbeat_loop(self, c), asio::detached);
        changed();
      }
      bool valid = true;
      for (const Bytes& f : *frames) {
        valid = valid && on_frame(c, f);
      }
      if (!valid) {
        why = "undecodable frame";
        break;
      }
      if (!co_await flush(*c)) {
        why = "write failed";
        break;
      }
    }
    drop(*c, why);
  }

  // Handles one decrypted frame; false when the peer broke the protocol (the connection closes).
  bool on_frame(const std::shared_ptr<Connection>& c, const Bytes& bytes) {
    wire::Frame frame;
    if (!frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      spdlog::warn("peer: undecodable frame from {}", c->channel_->peer());
      return false;
    }
    count(c.get(), [](LinkCounters& k) { ++k.frames_received; });
    switch (frame.body_case()) {
      case wire::Frame::kHeartbeat: on_heartbeat(*c, frame.heartbeat()); return true;
      case wire::Frame::kOpen: on_open(c, frame.open()); return true;
      case wire::Frame::kData: on_data(*c, frame.data()); return true;
      case wire::Frame::kCredit: on_credit(*c, frame.credit()); return true;
      case wire::Frame::kReset: on_reset(*c, frame.reset()); return true;
      case wire::Frame::BODY_NOT_SET: break;
    }
    return true;  // a frame kind from a newer version: ignored
  }

  void on_heartbeat(Connection& c, const wire::Heartbeat& hb) {
    std::lock_guard lock(mu_);
    auto& slot = slots_.at(c.channel_->peer());
    const TimePoint t = now();
    std::optional<Duration> rtt;
    if (hb.echo_ns() != 0) {
      // Time since our heartbeat left, less the time the peer held it before echoing it.
      const auto elapsed = static_cast<std::int64_t>(
          static_cast<std::uint64_t>(t.time_since_epoch().count()) - hb.echo_ns());
      rtt = Duration(std::max<std::int64_t>(
          0, elapsed - static_cast<std::int64_t>(std::min<std::uint64_t>(
                           hb.echo_delay_ns(), static_cast<std::uint64_t>(elapsed)))));
    }
    slot.health.on_heartbeat(t, rtt);
    slot.last_received_ns = hb.sent_ns();
    slot.last_received_at = t;
  }

  // A stream the peer opened: found by the frames that come from its opener.
  static std::shared_ptr<StreamState> find(Connection& c, std::uint64_t id, bool from_opener) {
    auto& streams = from_opener ? c.accepted_ : c.opened_;
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second;
  }

  void refuse(Connection& c, std::uint64_t id, RpcCode code, std::string message) {
    wire::Frame frame;
    auto* reset = frame.mutable_reset();
    reset->set_id(id);
    reset->set_from_opener(false);
    reset->set_code(static_cast<std::uint32_t>(code));
    reset->set_message(std::move(message));
    enqueue(c, frame, true);
  }

  void on_open(const std::shared_ptr<Connection>& c, const wire::StreamOpen& open) {
    const std::string& peer = c->channel_->peer();
    if (c->accepted_.contains(open.id())) {
      return refuse(*c, open.id(), RpcCode::kProtocol, "stream id already in use");
    }
    if (c->accepted_.size() >= options_.max_incoming_streams) {
      return refuse(*c, open.id(), RpcCode::kOverloaded,
                    "site '" + options_.identity.site + "' has " +
                        std::to_string(c->accepted_.size()) + " streams open from '" + peer + "'");
    }
    StreamHandler handler;
    {
      std::lock_guard lock(handlers_mu_);
      if (auto it = handlers_.find(open.method()); it != handlers_.end()) {
        handler = it->second;
      }
    }
    if (!handler) {
      return refuse(
          *c, open.id(), RpcCode::kUnknownMethod,
          "site '" + options_.identity.site + "' serves no method '" + open.method() + "'");
    }
    auto s = std::make_shared<StreamState>(strand_);
    s->id = open.id();
    s->opener = false;
    s->peer = peer;
    s->connection = c;
    s->window = options_.stream_window;
    s->credit = open.window();
    s->remote_done = open.last();
    c->accepted_.emplace(s->id, s);
    count(c.get(), [](LinkCounters& k) { ++k.streams_accepted; });
    start_deadline(s, std::chrono::milliseconds(open.deadline_ms()));
    if (!s->remote_done) {  // the opener may send more: grant it this side's window
      wire::Frame frame;
      auto* credit = frame.mutable_credit();
      credit->set_id(s->id);
      credit->set_from_opener(false);
      credit->set_bytes(static_cast<std::uint32_t>(s->window));
      enqueue(*c, frame, true);
    }
    Bytes request(open.payload().begin(), open.payload().end());
    asio::co_spawn(io_, run_handler(shared_from_this(), std::move(handler), s, std::move(request)),
                   asio::detached);
  }

  void on_data(Connection& c, const wire::StreamData& data) {
    auto s = find(c, data.id(), data.from_opener());
    if (!s) {
      return;  // the stream ended here already (reset, deadline): late frames are dropped
    }
    if (s->remote_done) {
      return fail(s, {RpcCode::kProtocol, "data after the end of the stream"}, true);
    }
    if (!data.end_only()) {
      s->inbox_cost += cost(data.payload().size());
      if (s->inbox_cost > s->window + cost(kMaxStreamMessage)) {
        return fail(s, {RpcCode::kProtocol, "the peer sent beyond its credit"}, true);
      }
      s->inbox.emplace_back(data.payload().begin(), data.payload().end());
    }
    s->remote_done = data.last();
    s->recv_wake.cancel();
    forget_if_ended(s);
  }

  void on_credit(Connection& c, const wire::StreamCredit& credit) {
    if (auto s = find(c, credit.id(), credit.from_opener())) {
      // Bounded, so that a peer granting credit forever cannot overflow it.
      s->credit = std::min<std::int64_t>(s->credit + credit.bytes(), std::int64_t{1} << 40);
      s->send_wake.cancel();
    }
  }

  void on_reset(Connection& c, const wire::StreamReset& reset) {
    auto s = find(c, reset.id(), reset.from_opener());
    if (!s) {
      return;
    }
    auto code = static_cast<RpcCode>(reset.code());
    if (reset.code() < 1 || reset.code() > static_cast<std::uint32_t>(RpcCode::kProtocol)) {
      code = RpcCode::kFailed;
    }
    fail(s, {code, "site '" + s->peer + "': " + reset.message()}, false);
  }

  static awaitable<void> run_handler(std::shared_ptr<PeerNodeImpl> self, StreamHandler handler,
                                     std::shared_ptr<StreamState> s, Bytes request);

  static awaitable<void> heartbeat_loop(std::shared_ptr<PeerNodeImpl> self,
                                        std::shared_ptr<Connection> c) {
    asio::steady_timer timer(self->strand_);
    const std::string peer = c->channel_->peer();
    while (!c->closed_ && !self->stopping_) {
      wire::Frame frame;
      const TimePoint sent = now();
      frame.mutable_heartbeat()->set_sent_ns(
          static_cast<std::uint64_t>(sent.time_since_epoch().count()));
      {
        std::lock_guard lock(self->mu_);
        const PeerSlot& slot = self->slots_.at(peer);
        frame.mutable_heartbeat()->set_echo_ns(slot.last_received_ns);
        if (slot.last_received_ns != 0) {
          frame.mutable_heartbeat()->set_echo_delay_ns(
              static_cast<std::uint64_t>((sent - slot.last_received_at).count()));
        }
      }
      self->enqueue(*c, frame, true);
      if (!co_await self->flush(*c)) {
        self->drop(*c, "heartbeat write failed");
        break;
      }
      timer.expires_after(self->options_.heartbeat);
      co_await timer.async_wait(use_nothrow);
    }
  }

  static awaitable<void> evaluate_loop(std::shared_ptr<PeerNodeImpl> self) {
    asio::steady_timer timer(self->strand_);
    while (!self->stopping_) {
      std::vector<std::shared_ptr<Connection>> lost;  // peers that just went Down
      bool any_change = false;
      {
        std::lock_guard lock(self->mu_);
        std::vector<PeerState> states;
        const TimePoint t = now();
        for (auto& [name, slot] : self->slots_) {
          const PeerState before = slot.health.state();
          const PeerState after = slot.health.evaluate(t);
          if (before != after) {
            any_change = true;
            spdlog::info("peer {}: {} -> {} (phi {:.1f})", name, to_string(before),
                         to_string(after), slot.health.phi(t));
            if (after == PeerState::kDown) {
              if (auto c = slot.connection.lock()) {
                lost.push_back(std::move(c));
              }
            }
          }
          states.push_back(after);
        }
        const bool was = self->isolation_.isolated();
        if (self->isolation_.update(states) != was) {
          any_change = true;
          spdlog::warn("site {}", self->isolation_.isolated() ? "is Isolated: every peer is Down"
                                                              : "is no longer isolated");
        }
      }
      if (any_change) {
        self->changed();
      }
      // Streams to a Down peer fail now rather than at their deadlines; the connection stays
      // (a healed link resumes on it).
      for (const auto& c : lost) {
        for (auto* streams : {&c->opened_, &c->accepted_}) {
          auto copy = *streams;
          for (auto& [id, s] : copy) {
            self->fail(s, {RpcCode::kUnreachable, "site '" + s->peer + "' is Down"}, true);
          }
        }
      }
      timer.expires_after(self->options_.heartbeat / 4);
      co_await timer.async_wait(use_nothrow);
    }
  }

  asio::io_context& io_;
  Strand strand_;
  tcp::acceptor acceptor_;
  PeerNode::Options options_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
  mutable std::mutex mu_;  // guards slots_' health and counters_, for status() from other threads
  std::map<std::string, PeerSlot> slots_;
  IsolationTracker isolation_;
  LinkCounters counters_;
  std::mutex handlers_mu_;
  std::map<std::string, StreamHandler> handlers_;
};

// The application's handle on one end of a stream; its methods hop to the node's strand.
class StreamHandle final : public PeerStream {
 public:
  StreamHandle(std::shared_ptr<PeerNodeImpl> node, std::shared_ptr<StreamState> state)
      : node_(std::move(node)), state_(std::move(state)) {}

  ~StreamHandle() override {
    asio::post(node_->strand(), [node = node_, s = state_] {
      if (!s->ended()) {
        node->fail(s, {RpcCode::kCancelled, "the other side let go of the stream"}, true);
      }
    });
  }

  const std::string& peer() const noexcept override { return state_->peer; }

  awaitable<RpcResult<void>> send(Bytes message, bool last) override {
    co_return co_await asio::co_spawn(
        node_->strand(), node_->stream_send(state_, std::move(message), last), asio::use_awaitable);
  }

  awaitable<RpcResult<std::optional<Bytes>>> receive() override {
    co_return co_await asio::co_spawn(node_->strand(), node_->stream_receive(state_),
                                      asio::use_awaitable);
  }

  awaitable<std::optional<RpcError>> closed() override {
    co_return co_await asio::co_spawn(node_->strand(), node_->stream_closed(state_),
                                      asio::use_awaitable);
  }

  void reset(RpcError why) override {
    asio::post(node_->strand(), [node = node_, s = state_, why = std::move(why)]() mutable {
      node->fail(s, std::move(why), true);
    });
  }

 private:
  std::shared_ptr<PeerNodeImpl> node_;
  std::shared_ptr<StreamState> state_;
};

awaitable<void> PeerNodeImpl::run_handler(std::shared_ptr<PeerNodeImpl> self, StreamHandler handler,
                                          std::shared_ptr<StreamState> s, Bytes request) {
  // This reference outlives the handler's, so the stream ends as the handler left it before
  // the last handle goes (which would reset it as abandoned).
  auto stream = std::make_shared<StreamHandle>(self, s);
  std::optional<std::string> failure;
  try {
    co_await handler(stream, std::move(request));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  asio::post(self->strand_, [self, s, failure = std::move(failure)] {
    if (failure) {
      spdlog::warn("peer {}: handler of stream {} failed: {}", s->peer, s->id, *failure);
      self->fail(s, {RpcCode::kFailed, *failure}, true);
    } else {
      self->finish_accepted(s);
    }
  });
}

class PeerNodeHandle final : public PeerNode {
 public:
  explicit PeerNodeHandle(std::shared_ptr<PeerNodeImpl> impl) : impl_(std::move(impl)) {}
  ~PeerNodeHandle() override { impl_->stop(); }
  std::uint16_t port() const override { return impl_->port(); }
  std::vector<PeerStatus> status() const override { return impl_->status(); }
  bool isolated() const override { return impl_->isolated(); }
  LinkCounters counters() const override { return impl_->counters(); }
  void handle(std::string method, StreamHandler handler) override {
    impl_->handle(std::move(method), std::move(handler));
  }

  awaitable<RpcResult<std::shared_ptr<PeerStream>>> open(std::string peer, std::string method,
                                                         Bytes request,
                                                         std::chrono::milliseconds deadline,
                                                         bool last) override {
    auto s = co_await asio::co_spawn(
        impl_->strand(),
        impl_->open_stream(std::move(peer), std::move(method), std::move(request), deadline, last),
        asio::use_awaitable);
    if (!s) {
      co_return s.error();
    }
    co_return std::shared_ptr<PeerStream>(std::make_shared<StreamHandle>(impl_, std::move(*s)));
  }

 private:
  std::shared_ptr<PeerNodeImpl> impl_;
};

}  // namespace

const char* to_string(RpcCode code) noexcept {
  switch (code) {
    case RpcCode::kUnreachable: return "Unreachable";
    case RpcCode::kDeadlineExceeded: return "DeadlineExceeded";
    case RpcCode::kCancelled: return "Cancelled";
    case RpcCode::kUnknownMethod: return "UnknownMethod";
    case RpcCode::kFailed: return "Failed";
    case RpcCode::kTooLarge: return "TooLarge";
    case RpcCode::kOverloaded: return "Overloaded";
    case RpcCode::kProtocol: return "Protocol";
  }
  return "Unknown";
}

awaitable<RpcResult<Bytes>> PeerNode::call(std::string peer, std::string method, Bytes request,
                                           std::chrono::milliseconds deadline) {
  auto stream = co_await open(peer, std::move(method), std::move(request), deadline, true);
  if (!stream) {
    co_return stream.error();
  }
  auto answer = co_await (*stream)->receive();
  if (!answer) {
    co_return answer.error();
  }
  if (!*answer) {
    co_return RpcError{RpcCode::kFailed, "site '" + peer + "' ended the stream without an answer"};
  }
  co_return std::move(**answer);
}

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
