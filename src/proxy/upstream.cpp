#include "archipel/proxy/upstream.hpp"

#include "asio/deadlines.hpp"
#include "asio/http_io.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <cstring>
#include <mutex>
#include <vector>

namespace archipel::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace http_io = net::http_io;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

// A response parser that keeps only what the proxy passes on: the status, the headers it
// forwards, and the body, copied straight into the room the reader gives it. (Beast's
// response_parser builds a fields container, one allocation per header, only for the proxy to
// copy them out again.)
class ResponseParser final : public http::basic_parser<false> {
 public:
  unsigned status = 0;
  Headers headers;
  /// Where the next body bytes go.
  void give_room(char* data, std::size_t size) noexcept {
    room_ = data;
    room_size_ = size;
  }
  [[nodiscard]] std::size_t room_left() const noexcept { return room_size_; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    status = static_cast<unsigned>(code);
    headers.reserve(8);  // one allocation for the usual few
  }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    const std::string_view n(name.data(), name.size());
    if (forwarded_response_header(n)) {
      headers.emplace_back(n, std::string_view(value.data(), value.size()));
    }
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code& ec) override {
    return take(body, ec);
  }
  void on_finish_impl(beast::error_code&) override {}

  std::size_t take(beast::string_view body, beast::error_code& ec) {
    if (room_size_ == 0) {
      ec = http::error::need_buffer;
      return 0;
    }
    const std::size_t n = std::min(room_size_, body.size());
    std::memcpy(room_, body.data(), n);
    room_ += n;
    room_size_ -= n;
    return n;
  }

  char* room_ = nullptr;
  std::size_t room_size_ = 0;
};

// One connection to the cluster, plain or TLS, behind one interface. Its deadline is kept by
// the upstream's Deadlines: when it passes, the socket is shut down and the pending read or
// write fails.
class Connection {
 public:
  explicit Connection(std::shared_ptr<net::Deadlines::Watch> watch) : deadline(std::move(watch)) {}
  virtual ~Connection() = default;
  virtual awaitable<beast::error_code> write(std::string_view head, std::string_view body) = 0;
  virtual awaitable<beast::error_code> read_header(ResponseParser& parser) = 0;
  virtual awaitable<beast::error_code> read_some(ResponseParser& parser) = 0;
  virtual tcp::socket& socket() = 0;
  void close() noexcept {
    deadline->release();
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }
  // Bounds what the connection does next by `at` (nothing: no bound, for streams).
  void set_deadline(std::optional<Clock::time_point> at) noexcept {
    if (at) {
      deadline->expires_at(*at);
    } else {
      deadline->expires_never();
    }
  }
  bool reused = false;
  std::shared_ptr<net::Deadlines::Watch> deadline;
  // Where answers' body pieces are read to: allocated once per connection, not initialised
  // (a zeroed 64 KiB buffer per request cost more than the rest of the proxying).
  static constexpr std::size_t kPiece = 16 * 1024;
  std::unique_ptr<char[]> piece{new char[kPiece]};
  std::string request_head;  // of the request being sent (its room kept between requests)

 protected:
  beast::flat_buffer buffer_;
};

template <class Stream>
class ConnectionOn final : public Connection {
 public:
  template <class... Args>
  explicit ConnectionOn(std::shared_ptr<net::Deadlines::Watch> watch, Args&&... args)
      : Connection(std::move(watch)), stream_(std::forward<Args>(args)...) {}
  // Before the stream closes its socket, whose descriptor number may then be reused.
  ~ConnectionOn() override { deadline->release(); }
  Stream& stream() { return stream_; }
  awaitable<beast::error_code> write(std::string_view head, std::string_view body) override {
    return http_io::write(stream_, head, body);
  }
  awaitable<beast::error_code> read_header(ResponseParser& parser) override {
    return http_io::read_header(stream_, buffer_, parser);
  }
  awaitable<beast::error_code> read_some(ResponseParser& parser) override {
    const std::size_t room = parser.room_left();
    return http_io::read_until(stream_, buffer_, parser, [room](const ResponseParser& p) {
      return p.is_done() || p.room_left() != room;
    });
  }
  tcp::socket& socket() override {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      return stream_;
    } else {
      return stream_.next_layer();
    }
  }

 private:
  Stream stream_;
};

using PlainConnection = ConnectionOn<tcp::socket>;
using TlsConnection = ConnectionOn<ssl::stream<tcp::socket>>;

// Idle connections, shared by the upstream and the answers that give connections back.
struct Pool {
  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;
  std::size_t max_idle = 0;

  std::unique_ptr<Connection> take() {
    std::lock_guard lock(mu);
    if (idle.empty()) {
      return nullptr;
    }
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }
  void give(std::unique_ptr<Connection> c) {
    // Idle, a connection has no deadline; one whose deadline passed was shut down.
    c->deadline->expires_never();
    if (c->deadline->expired()) {
      c->close();
      return;
    }
    std::lock_guard lock(mu);
    if (idle.size() < max_idle) {
      c->reused = true;
      idle.push_back(std::move(c));
    }
  }
};

// An answer read from a pooled connection; the connection goes back to the pool once the body
// has been read through (and is closed if the answer is dropped before).
class PooledAnswer final : public Answer {
 public:
  PooledAnswer(std::shared_ptr<Pool> pool, std::unique_ptr<Connection> connection,
               std::unique_ptr<ResponseParser> parser, std::optional<Clock::time_point> deadline)
      : pool_(std::move(pool)),
        connection_(std::move(connection)),
        parser_(std::move(parser)),
        deadline_(deadline) {}

  ~PooledAnswer() override {
    if (connection_) {
      connection_->close();
    }
  }

  awaitable<SiteResult<std::optional<std::string>>> next() override {
    for (;;) {
      if (!connection_) {
        co_return SiteFailure{aborted_ ? "aborted" : "the answer was already read"};
      }
      if (parser_->is_done()) {
        release();
        co_return std::optional<std::string>();
      }
      parser_->give_room(connection_->piece.get(), Connection::kPiece);
      connection_->set_deadline(deadline_);
      const beast::error_code ec = co_await connection_->read_some(*parser_);
      if (ec) {
        const bool timed_out = connection_->deadline->expired();
        connection_->close();
        connection_.reset();
        co_return SiteFailure{timed_out ? "timed out reading the answer"
                                        : "reading the answer: " + ec.message()};
      }
      const std::size_t got = Connection::kPiece - parser_->room_left();
      if (got > 0) {
        co_return std::optional<std::string>(std::string(connection_->piece.get(), got));
      }
    }
  }

  void abort() noexcept override {
    aborted_ = true;
    if (connection_) {
      connection_->close();
    }
  }

 private:
  void release() {
    if (parser_->keep_alive() && !aborted_) {
      pool_->give(std::move(connection_));
    } else {
      connection_->close();
    }
    connection_.reset();
  }

  std::shared_ptr<Pool> pool_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<ResponseParser> parser_;
  std::optional<Clock::time_point> deadline_;
  bool aborted_ = false;
};

class UpstreamImpl final : public Upstream {
 public:
  UpstreamImpl(asio::io_context& io, Options options) : io_(io), options_(std::move(options)) {
    pool_->max_idle = options_.max_idle;
  }

  boost::system::result<void, std::string> init() {
    auto url = boost::urls::parse_absolute_uri(options_.url);
    if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
      return fail("invalid cluster URL '" + options_.url +
                  "' (expected http://HOST:PORT or https://HOST:PORT)");
    }
    tls_ = url->scheme() == "https";
    host_ = url->host_address();
    port_ = url->has_port() ? std::string(url->port()) : (tls_ ? "443" : "80");
    host_header_ = host_ + (url->has_port() ? ":" + port_ : "");
    if (!options_.bearer_token.empty()) {
      authorization_ = "Bearer " + options_.bearer_token;
    }
    if (!tls_) {
      return {};
    }
    context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    context_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1);
    beast::error_code ec;
    if (options_.insecure_skip_tls_verify) {
      context_->set_verify_mode(ssl::verify_none);
    } else {
      context_->set_verify_mode(ssl::verify_peer);
      if (options_.ca_file.empty()) {
        context_->set_default_verify_paths(ec);
      } else {
        context_->load_verify_file(options_.ca_file, ec);
      }
      if (ec) {
        return fail("cannot load the CA " + options_.ca_file + ": " + ec.message());
      }
      context_->set_verify_callback(ssl::host_name_verification(host_));
    }
    if (!options_.client_cert_file.empty()) {
      context_->use_certificate_chain_file(options_.client_cert_file, ec);
      if (!ec) {
        context_->use_private_key_file(options_.client_key_file, ssl::context::pem, ec);
      }
      if (ec) {
        return fail("cannot load the client certificate " + options_.client_cert_file + " / key " +
                    options_.client_key_file + ": " + ec.message());
      }
    }
    return {};
  }

  const std::string& url() const noexcept override { return options_.url; }

  awaitable<SiteResult<std::unique_ptr<Answer>>> send(const ForwardRequest& request) override {
    const std::optional<Clock::time_point> deadline =
        request.timeout.count() > 0 ? std::optional(Clock::now() + request.timeout) : std::nullopt;
    const bool head_only = request.method == "HEAD";
    // A pooled connection the cluster closed while idle fails at once: try again on a new one.
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> connection = pool_->take();
      if (!connection) {
        auto made = co_await connect(deadline);
        if (!made) {
          co_return made.error();
        }
        connection = std::move(*made);
      }
      const bool reused = connection->reused;
      connection->set_deadline(deadline);
      beast::error_code ec =
          co_await connection->write(request_head(request, connection->request_head), request.body);
      auto parser = std::make_unique<ResponseParser>();
      parser->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
      parser->body_limit(boost::none);
      if (head_only) {
        parser->skip(true);
      }
      if (!ec) {
        ec = co_await connection->read_header(*parser);
      }
      if (ec) {
        const bool timed_out = connection->deadline->expired();
        connection->close();
        if (reused && attempt == 0 && !timed_out) {
          continue;
        }
        co_return SiteFailure{timed_out
                                  ? "no answer from the cluster at " + options_.url + " in time"
                                  : "cluster at " + options_.url + ": " + ec.message()};
      }
      const unsigned status = parser->status;
      Headers headers = std::move(parser->headers);
      std::optional<std::uint64_t> length;
      if (auto declared = parser->content_length(); declared && !parser->chunked()) {
        length = *declared;
      } else if (head_only || status == 204 || status == 304) {
        length = 0;
      }
      auto answer =
          std::make_unique<PooledAnswer>(pool_, std::move(connection), std::move(parser), deadline);
      answer->status = status;
      answer->headers = std::move(headers);
      answer->length = length;
      co_return std::unique_ptr<Answer>(std::move(answer));
    }
  }

 private:
  // The head of `request` as this upstream sends it, written over `head`.
  const std::string& request_head(const ForwardRequest& request, std::string& head) const {
    head.clear();
    head += request.method;
    head += ' ';
    head += request.target;
    head += " HTTP/1.1\r\n";
    http_io::field(head, "Host", host_header_);
    for (const auto& [name, value] : request.headers) {
      http_io::field(head, name, value);
    }
    if (!authorization_.empty()) {
      http_io::field(head, "Authorization", authorization_);
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      http_io::content_length(head, request.body.size());
    }
    head += "\r\n";
    return head;
  }

  static boost::system::result<void, std::string> fail(std::string message) {
    return boost::system::result<void, std::string>(boost::system::in_place_error,
                                                    std::move(message));
  }

  awaitable<SiteResult<std::unique_ptr<Connection>>> connect(
      std::optional<Clock::time_point> deadline) {
    tcp::resolver resolver(io_);
    auto [rec, endpoints] = co_await resolver.async_resolve(host_, port_, use_nothrow);
    if (rec) {
      co_return SiteFailure{"cannot resolve " + host_ + ": " + rec.message()};
    }
    const Clock::time_point connect_by = std::min(Clock::now() + options_.connect_timeout,
                                                  deadline.value_or(Clock::time_point::max()));
    std::unique_ptr<Connection> connection;
    std::string failure = "no address";
    for (const auto& entry : endpoints) {
      tcp::socket socket(io_);
      beast::error_code ec;
      socket.open(entry.endpoint().protocol(), ec);
      if (ec) {
        failure = ec.message();
        continue;
      }
      auto watch = deadlines_.watch(socket.native_handle());
      watch->expires_at(connect_by);
      std::tie(ec) = co_await socket.async_connect(entry.endpoint(), use_nothrow);
      if (ec) {
        failure = watch->expired() ? "timed out" : ec.message();
        watch->release();
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (tls_) {
        connection =
            std::make_unique<TlsConnection>(std::move(watch), std::move(socket), *context_);
      } else {
        connection = std::make_unique<PlainConnection>(std::move(watch), std::move(socket));
      }
      break;
    }
    if (!connection) {
      co_return SiteFailure{"cannot connect to the cluster at " + options_.url + ": " + failure};
    }
    if (tls_) {
      auto& stream = static_cast<TlsConnection&>(*connection).stream();
      // SSL_set_tlsext_host_name, without the macro's C cast.
      if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(host_.c_str())) == 0) {
        co_return SiteFailure{"cannot set TLS server name " + host_};
      }
      auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow);
      if (hec) {
        co_return SiteFailure{"TLS handshake with the cluster at " + options_.url +
                              " failed: " + hec.message()};
      }
    }
    co_return connection;
  }

  asio::io_context& io_;
  Options options_;
  bool tls_ = false;
  std::string host_;
  std::string port_;
  std::string host_header_;
  std::string authorization_;  // "Bearer …", empty without a token
  std::unique_ptr<ssl::context> context_;
  net::Deadlines deadlines_{io_.get_executor()};
  std::shared_ptr<Pool> pool_ = std::make_shared<Pool>();
};

}  // namespace

boost::system::result<std::unique_ptr<Upstream>, std::string> Upstream::create(
    boost::asio::io_context& io, Options options) {
  auto upstream = std::make_unique<UpstreamImpl>(io, std::move(options));
  if (auto ok = upstream->init(); !ok) {
    return boost::system::result<std::unique_ptr<Upstream>, std::string>(
        boost::system::in_place_error, ok.error());
  }
  return std::unique_ptr<Upstream>(std::move(upstream));
}

}  // namespace archipel::proxy
