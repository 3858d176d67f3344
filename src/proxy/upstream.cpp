#include "archipel/proxy/upstream.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <mutex>
#include <vector>

namespace archipel::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;
using ResponseParser = http::response_parser<http::buffer_body>;

// One connection to the cluster, plain or TLS, behind one interface.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual awaitable<beast::error_code> write(http::request<http::string_body>& req) = 0;
  virtual awaitable<beast::error_code> read_header(ResponseParser& parser) = 0;
  virtual awaitable<beast::error_code> read_some(ResponseParser& parser) = 0;
  virtual beast::tcp_stream& tcp() = 0;
  void close() noexcept {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
  }
  bool reused = false;
  // Where answers' body pieces are read to: allocated once per connection, not initialised
  // (a zeroed 64 KiB buffer per request cost more than the rest of the proxying).
  static constexpr std::size_t kPiece = 16 * 1024;
  std::unique_ptr<char[]> piece{new char[kPiece]};

 protected:
  beast::flat_buffer buffer_;
};

template <class Stream>
class ConnectionOn final : public Connection {
 public:
  template <class... Args>
  explicit ConnectionOn(Args&&... args) : stream_(std::forward<Args>(args)...) {}
  Stream& stream() { return stream_; }
  awaitable<beast::error_code> write(http::request<http::string_body>& req) override {
    auto [ec, n] = co_await http::async_write(stream_, req, use_nothrow);
    co_return ec;
  }
  awaitable<beast::error_code> read_header(ResponseParser& parser) override {
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, use_nothrow);
    co_return ec;
  }
  awaitable<beast::error_code> read_some(ResponseParser& parser) override {
    auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser, use_nothrow);
    co_return ec;
  }
  beast::tcp_stream& tcp() override { return beast::get_lowest_layer(stream_); }

 private:
  Stream stream_;
};

using PlainConnection = ConnectionOn<beast::tcp_stream>;
using TlsConnection = ConnectionOn<beast::ssl_stream<beast::tcp_stream>>;

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
      parser_->get().body().data = connection_->piece.get();
      parser_->get().body().size = Connection::kPiece;
      if (deadline_) {
        connection_->tcp().expires_at(*deadline_);
      } else {
        connection_->tcp().expires_never();
      }
      beast::error_code ec = co_await connection_->read_some(*parser_);
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        connection_->close();
        connection_.reset();
        co_return SiteFailure{ec == beast::error::timeout ? "timed out reading the answer"
                                                          : "reading the answer: " + ec.message()};
      }
      const std::size_t got = Connection::kPiece - parser_->get().body().size;
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
    if (parser_->get().keep_alive() && !aborted_) {
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

  awaitable<SiteResult<std::unique_ptr<Answer>>> send(ForwardRequest request) override {
    const std::optional<Clock::time_point> deadline =
        request.timeout.count() > 0 ? std::optional(Clock::now() + request.timeout) : std::nullopt;
    http::request<http::string_body> req{http::string_to_verb(request.method), request.target, 11};
    if (req.method() == http::verb::unknown) {
      req.method_string(request.method);
    }
    req.set(http::field::host, host_header_);
    for (auto& [name, value] : request.headers) {
      req.set(name, value);
    }
    if (!options_.bearer_token.empty()) {
      req.set(http::field::authorization, "Bearer " + options_.bearer_token);
    }
    req.keep_alive(true);
    req.body() = std::move(request.body);
    if (!req.body().empty() || req.method() == http::verb::post ||
        req.method() == http::verb::put || req.method() == http::verb::patch) {
      req.prepare_payload();
    }
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
      connection->tcp().expires_at(deadline.value_or(Clock::now() + std::chrono::hours(24)));
      beast::error_code ec = co_await connection->write(req);
      auto parser = std::make_unique<ResponseParser>();
      parser->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
      parser->body_limit(boost::none);
      if (req.method() == http::verb::head) {
        parser->skip(true);
      }
      if (!ec) {
        ec = co_await connection->read_header(*parser);
      }
      if (ec) {
        connection->close();
        if (reused && attempt == 0 && ec != beast::error::timeout) {
          continue;
        }
        co_return SiteFailure{ec == beast::error::timeout
                                  ? "no answer from the cluster at " + options_.url + " in time"
                                  : "cluster at " + options_.url + ": " + ec.message()};
      }
      const auto& head = parser->get();
      const unsigned status = head.result_int();
      Headers headers;
      for (const auto& field : head) {
        if (forwarded_response_header(field.name_string())) {
          headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
      }
      std::optional<std::uint64_t> length;
      if (auto declared = parser->content_length(); declared && !parser->chunked()) {
        length = *declared;
      } else if (req.method() == http::verb::head || status == 204 || status == 304) {
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
    if (tls_) {
      connection = std::make_unique<TlsConnection>(io_.get_executor(), *context_);
    } else {
      connection = std::make_unique<PlainConnection>(io_.get_executor());
    }
    connection->tcp().expires_at(connect_by);
    auto [cec, endpoint] = co_await connection->tcp().async_connect(endpoints, use_nothrow);
    if (cec) {
      co_return SiteFailure{"cannot connect to the cluster at " + options_.url + ": " +
                            (cec == beast::error::timeout ? "timed out" : cec.message())};
    }
    connection->tcp().socket().set_option(tcp::no_delay(true));
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
  std::unique_ptr<ssl::context> context_;
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
