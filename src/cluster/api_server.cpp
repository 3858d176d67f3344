#include "archipel/cluster/api_server.hpp"

#include "asio/listen.hpp"
#include "asio/tls.hpp"

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
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <deque>
#include <fstream>
#include <list>
#include <mutex>

namespace archipel::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

template <class Stream>
constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
using asio::awaitable;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// Events a watch has received but not yet written. The store's listener fills it from whatever
// thread wrote; the session drains it on its strand. `wake` is cancelled to end a wait.
struct WatchQueue {
  std::mutex mu;
  std::deque<std::string> lines;
  std::uint64_t last_rv = 0;
  asio::steady_timer wake;

  explicit WatchQueue(asio::any_io_executor ex) : wake(ex) {}
};

class ApiServerImpl;

// What the server needs of a connection, whatever its stream: to close it on stop().
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

// One connection: plain TCP (Stream = beast::tcp_stream) or TLS (beast::ssl_stream over it).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(tcp::socket socket, ApiServerImpl& server) requires(!kTls<Stream>)
      : stream_(std::move(socket)), server_(server) {}
  Session(tcp::socket socket, ssl::context& tls, ApiServerImpl& server) requires kTls<Stream>
      : stream_(std::move(socket), tls), server_(server) {}
  /// `self` keeps the session alive for as long as its coroutine runs.
  awaitable<void> run(std::shared_ptr<Session> self);
  asio::any_io_executor executor() { return stream_.get_executor(); }
  void close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      beast::error_code ignored;
      self->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->lowest().close();
      if (self->watch_) {
        self->watch_->wake.cancel();
      }
    });
  }

 private:
  awaitable<bool> serve_watch(const http::request<http::string_body>& req, const WatchRequest& w);
  awaitable<bool> write_chunk(std::string data);
  /// Writes the header of a chunked 200 response (watches, logs -f); false if the client left.
  awaitable<bool> start_stream(unsigned version, const char* content_type);
  awaitable<bool> serve_log(const http::request<http::string_body>& req, const LogFollow& f);
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  Stream stream_;
  ApiServerImpl& server_;
  std::shared_ptr<WatchQueue> watch_;
  bool closing_ = false;
};

using PlainSession = Session<beast::tcp_stream>;
using TlsSession = Session<beast::ssl_stream<beast::tcp_stream>>;

class ApiServerImpl final : public ApiServer {
 public:
  ApiServerImpl(asio::io_context& io, KubeApi& api, Options options)
      : io_(io), api_(api), options_(std::move(options)), acceptor_(asio::make_strand(io)) {}

  boost::system::result<void, std::string> listen() {
    if (!options_.tls_cert_file.empty()) {
      auto context = net::server_tls_context(options_.tls_cert_file, options_.tls_key_file);
      if (!context) {
        return boost::system::result<void, std::string>(boost::system::in_place_error,
                                                        context.error());
      }
      tls_ = std::move(*context);
    }
    auto port = net::listen(acceptor_, options_.host, options_.port);
    if (!port) {
      return boost::system::result<void, std::string>(boost::system::in_place_error, port.error());
    }
    port_ = *port;
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
    return {};
  }

  std::uint16_t port() const override { return port_; }

  void stop() override {
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      std::lock_guard lock(mu_);
      for (auto& weak : sessions_) {
        if (auto s = weak.lock()) {
          s->close();
        }
      }
    });
  }

  KubeApi& api() { return api_; }
  const Options& options() const { return options_; }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
          co_return;
        }
        spdlog::warn("cluster api: accept failed: {}", ec.message());
        continue;
      }
      // Headers and bodies go out in separate writes: without this, Nagle's algorithm holds
      // the second behind the client's delayed ACK (40 ms).
      beast::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      if (tls_) {
        spawn(std::make_shared<TlsSession>(std::move(socket), *tls_, *this));
      } else {
        spawn(std::make_shared<PlainSession>(std::move(socket), *this));
      }
    }
  }

  template <class S>
  void spawn(std::shared_ptr<S> session) {
    {
      std::lock_guard lock(mu_);
      sessions_.remove_if([](const std::weak_ptr<SessionBase>& w) { return w.expired(); });
      sessions_.push_back(session);
    }
    // The session's own strand; its completion handler is the last-resort catch.
    asio::co_spawn(session->executor(), session->run(session), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("cluster api: session ended by exception: {}", ex.what());
        }
      }
    });
  }

  asio::io_context& io_;
  KubeApi& api_;
  Options options_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::list<std::weak_ptr<SessionBase>> sessions_;
  std::unique_ptr<ssl::context> tls_;

  template <class S>
  friend class Session;
};

http::response<http::string_body> to_http(ApiResponse r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::content_type, r.content_type);
  res.set("Cache-Control", "no-cache, private");
  for (auto& [name, value] : r.headers) {
    res.set(name, value);
  }
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

template <class Stream>
awaitable<void> Session<Stream>::run(std::shared_ptr<Session> self) {
  beast::flat_buffer buffer;
  if constexpr (kTls<Stream>) {
    lowest().expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream_.async_handshake(ssl::stream_base::server, use_nothrow);
    if (hec) {
      spdlog::debug("cluster api: TLS handshake failed: {}", hec.message());
      co_return;
    }
  }
  const std::size_t body_limit = server_.api().options().max_body_bytes;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(body_limit);
    lowest().expires_after(server_.options().idle_timeout);
    auto [ec, n] = co_await http::async_read(stream_, buffer, parser, use_nothrow);
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      break;
    }
    if (ec) {
      // Malformed HTTP or over the limits: one Status answer, then close.
      const kube::Status status =
          ec == http::error::body_limit
              ? kube::Status::too_large("Request entity too large: limit is " +
                                        std::to_string(body_limit))
              : kube::Status::bad_request("malformed HTTP request: " + ec.message());
      auto res = to_http(status_response(status), 11, false);
      lowest().expires_after(std::chrono::seconds(10));
      co_await http::async_write(stream_, res, use_nothrow);
      break;
    }
    http::request<http::string_body> req = parser.release();
    ApiRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.accept = std::string(req[http::field::accept]);
    request.content_type = std::string(req[http::field::content_type]);
    request.body = std::move(req.body());

    ApiResult result = server_.api().handle(request);
    if (auto* watch = std::get_if<WatchRequest>(&result)) {
      co_await serve_watch(req, *watch);
      break;  // a watch ends its connection's use
    }
    if (auto* follow = std::get_if<LogFollow>(&result)) {
      co_await serve_log(req, *follow);
      break;
    }
    auto& response = std::get<ApiResponse>(result);
    spdlog::debug("cluster api: {} {} {}", request.method, request.target, response.status);
    auto res = to_http(std::move(response), req.version(), req.keep_alive());
    lowest().expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await http::async_write(stream_, res, use_nothrow);
    if (wec || !res.keep_alive()) {
      break;
    }
  }
  beast::error_code ignored;
  lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  (void)self;
}

template <class Stream>
awaitable<bool> Session<Stream>::start_stream(unsigned version, const char* content_type) {
  http::response<http::empty_body> res{http::status::ok, version};
  res.set(http::field::content_type, content_type);
  res.set("Cache-Control", "no-cache, private");
  res.chunked(true);
  res.keep_alive(false);
  http::response_serializer<http::empty_body> sr{res};
  lowest().expires_after(std::chrono::seconds(30));
  auto [ec, n] = co_await http::async_write_header(stream_, sr, use_nothrow);
  co_return !ec;
}

template <class Stream>
awaitable<bool> Session<Stream>::write_chunk(std::string data) {
  lowest().expires_after(std::chrono::seconds(30));
  auto [ec, n] = co_await asio::async_write(
      stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), use_nothrow);
  co_return !ec;
}

template <class Stream>
awaitable<bool> Session<Stream>::serve_watch(const http::request<http::string_body>& req,
                                             const WatchRequest& w) {
  auto queue = std::make_shared<WatchQueue>(stream_.get_executor());
  watch_ = queue;
  std::weak_ptr<WatchQueue> weak = queue;
  const WatchRequest filter = w;
  auto sub = server_.api().start_watch(w, [weak, filter](const ObjectEvent& e) {
    auto q = weak.lock();
    if (!q) {
      return;
    }
    {
      std::lock_guard lock(q->mu);
      q->last_rv = e.resource_version;
      if (!filter.selects(e)) {
        return;
      }
      q->lines.push_back(filter.encode(e));
    }
    asio::post(q->wake.get_executor(), [q] { q->wake.cancel(); });
  });

  if (!co_await start_stream(req.version(), "application/json")) {
    co_return false;
  }
  if (!sub) {
    // Kubernetes reports a too-old resourceVersion inside the stream, as an ERROR event.
    co_await write_chunk(KubeApi::encode_error(sub.error()));
    co_await asio::async_write(stream_, http::make_chunk_last(), use_nothrow);
    co_return true;
  }
  std::uint64_t sent_rv = 0;
  for (ObjectEvent& e : sub->backlog) {
    sent_rv = std::max(sent_rv, e.resource_version);
    if (!co_await write_chunk(w.encode(e))) {
      co_return false;
    }
  }
  // The client ends a watch by closing the connection: notice it while waiting for events.
  auto probe = std::make_shared<char>();
  stream_.async_read_some(asio::buffer(probe.get(), 1), [self = this->shared_from_this(), queue,
                                                         probe](beast::error_code, std::size_t) {
    self->closing_ = true;
    queue->wake.cancel();
  });
  const auto deadline = std::chrono::steady_clock::now() + w.timeout;
  auto next_bookmark = std::chrono::steady_clock::now() + server_.options().bookmark_interval;
  while (!closing_) {
    std::deque<std::string> lines;
    std::uint64_t last_rv = 0;
    {
      std::lock_guard lock(queue->mu);
      lines.swap(queue->lines);
      last_rv = queue->last_rv;
    }
    for (std::string& line : lines) {
      if (!co_await write_chunk(std::move(line))) {
        co_return false;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || !lowest().socket().is_open()) {
      break;
    }
    if (w.bookmarks && now >= next_bookmark) {
      if (!co_await write_chunk(KubeApi::encode_bookmark(*w.type, std::max(last_rv, sent_rv)))) {
        co_return false;
      }
      next_bookmark = now + server_.options().bookmark_interval;
    }
    {
      // An event queued while the lines above were written posted its wake-up then, when no
      // wait was pending: it woke nothing. Look again before sleeping. (The wake-up is posted
      // to this session's strand, so one queued after this check finds the wait pending.)
      std::lock_guard lock(queue->mu);
      if (!queue->lines.empty()) {
        continue;
      }
    }
    queue->wake.expires_at(std::min(deadline, w.bookmarks ? next_bookmark : deadline));
    lowest().expires_never();
    co_await queue->wake.async_wait(use_nothrow);
  }
  co_await asio::async_write(stream_, http::make_chunk_last(), use_nothrow);
  co_return true;
}

template <class Stream>
awaitable<bool> Session<Stream>::serve_log(const http::request<http::string_body>& req,
                                           const LogFollow& f) {
  if (!co_await start_stream(req.version(), "text/plain")) {
    co_return false;
  }
  // Notice the client going away while the log is quiet.
  auto probe = std::make_shared<char>();
  stream_.async_read_some(asio::buffer(probe.get(), 1),
                          [self = this->shared_from_this(), probe](beast::error_code, std::size_t) {
                            self->closing_ = true;
                          });
  std::ifstream in(f.path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(f.offset));
  asio::steady_timer timer(stream_.get_executor());
  std::string buffer(64 * 1024, '\0');
  while (!closing_) {
    const bool running = f.still_running();  // read before draining: no line is missed at exit
    bool drained = false;
    while (!drained) {
      if (!in.is_open()) {
        in.open(f.path, std::ios::binary);
      }
      in.clear();
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = in.gcount();
      if (n > 0 && !co_await write_chunk(buffer.substr(0, static_cast<std::size_t>(n)))) {
        co_return false;
      }
      drained = n < static_cast<std::streamsize>(buffer.size());
    }
    if (!running) {
      break;
    }
    timer.expires_after(std::chrono::milliseconds(100));
    lowest().expires_never();
    co_await timer.async_wait(use_nothrow);
  }
  lowest().expires_after(std::chrono::seconds(30));
  co_await asio::async_write(stream_, http::make_chunk_last(), use_nothrow);
  co_return true;
}

}  // namespace

boost::system::result<std::unique_ptr<ApiServer>, std::string> ApiServer::start(
    boost::asio::io_context& io, KubeApi& api, const Options& options) {
  auto server = std::make_unique<ApiServerImpl>(io, api, options);
  auto listening = server->listen();
  if (!listening) {
    return boost::system::result<std::unique_ptr<ApiServer>, std::string>(
        boost::system::in_place_error, listening.error());
  }
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace archipel::cluster
