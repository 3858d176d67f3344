#include "archipel/proxy/front_door.hpp"

#include "asio/deadlines.hpp"
#include "asio/http_io.hpp"
#include "asio/listen.hpp"
#include "asio/tls.hpp"

#include "archipel/base/prometheus.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <charconv>
#include <deque>
#include <list>
#include <mutex>
#include <variant>

namespace archipel::embedded {
extern const char kArchipelOpenApi[];  // src/proxy/openapi-archipel.io-v1.json
}  // namespace archipel::embedded

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

constexpr std::string_view kSitesPath = "/apis/archipel.io/v1/sites";
constexpr std::string_view kSharedPath = "/apis/archipel.io/v1/sharedobjects";
// Answers of known size up to this are read whole and written in one go (head and body).
constexpr std::uint64_t kWholeAnswerBytes = 256 * 1024;

struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "application/json";
  std::string body;
};

struct SiteWatch {
  std::optional<std::uint64_t> since;
  bool as_table = false;
  std::chrono::seconds timeout{1800};
};

// What the front door answers itself; std::monostate: the proxy's business.
using Routed = std::variant<std::monostate, Reply, SiteWatch>;

Reply status_reply(const kube::Status& s) {
  return Reply{static_cast<http::status>(s.code), "application/json",
               boost::json::serialize(s.to_json())};
}

// What the client gets when the site's answer broke off before the front door sent anything.
Reply cut_answer_reply(const SiteFailure& failure) {
  return status_reply(
      kube::Status{502, "BadGateway", "the site's answer was cut: " + failure.message});
}

bool wants_table(std::string_view accept) {
  return accept.find("as=Table") != std::string_view::npos;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

constexpr std::string_view kGroup =
    R"({"kind":"APIGroup","apiVersion":"v1","name":"archipel.io",)"
    R"("versions":[{"groupVersion":"archipel.io/v1","version":"v1"}],)"
    R"("preferredVersion":{"groupVersion":"archipel.io/v1","version":"v1"}})";
constexpr std::string_view kResources =
    R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":"archipel.io/v1","resources":[)"
    R"({"name":"sites","singularName":"site","namespaced":false,"kind":"Site",)"
    R"("verbs":["get","list","watch"],"categories":["archipel"]},)"
    R"({"name":"sharedobjects","singularName":"sharedobject","namespaced":false,)"
    R"("kind":"SharedObject","shortNames":["shared"],)"
    R"("verbs":["create","delete","get","list","update"],"categories":["archipel"]},)"
    R"({"name":"migrations","singularName":"migration","namespaced":true,"kind":"Migration",)"
    R"("shortNames":["mig"],"verbs":["create","delete","get","list","patch"],)"
    R"("categories":["archipel"]}]})";

constexpr std::string_view kArchipelV1 = "/apis/archipel.io/v1/";

// A Migration path: /apis/archipel.io/v1/migrations (every namespace) or
// /apis/archipel.io/v1/namespaces/NS/migrations[/NAME]; {namespace, name}, nullopt otherwise.
std::optional<std::pair<std::string_view, std::string_view>> migration_path(std::string_view path) {
  if (!path.starts_with(kArchipelV1)) {
    return std::nullopt;
  }
  std::string_view rest = path.substr(kArchipelV1.size());
  if (rest == "migrations") {
    return std::make_pair(std::string_view(), std::string_view());
  }
  if (!rest.starts_with("namespaces/")) {
    return std::nullopt;
  }
  rest.remove_prefix(std::string_view("namespaces/").size());
  const std::size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view ns = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  if (rest == "migrations") {
    return std::make_pair(ns, std::string_view());
  }
  if (!rest.starts_with("migrations/")) {
    return std::nullopt;
  }
  const std::string_view name = rest.substr(std::string_view("migrations/").size());
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  return std::make_pair(ns, name);
}

// A request as the front door reads it: what the proxy takes (ClientRequest), with what HTTP
// says about it.
struct Incoming {
  ClientRequest request;
  http::verb verb = http::verb::unknown;
  unsigned version = 11;
  bool keep_alive = true;
};

// Parses a request straight into an Incoming (Beast's request_parser builds a fields
// container, one allocation per header, only for the front door to copy them out again).
class RequestParser final : public http::basic_parser<true> {
 public:
  Incoming message;

 private:
  static std::string_view view(beast::string_view s) noexcept { return {s.data(), s.size()}; }
  void on_request_impl(http::verb verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code&) override {
    message.verb = verb;
    message.request.method = view(method);
    message.request.target = view(target);
    message.version = static_cast<unsigned>(version);
    message.request.headers.reserve(8);  // one allocation for the usual few
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    message.request.headers.emplace_back(view(name), view(value));
  }
  void on_header_impl(beast::error_code&) override { message.keep_alive = keep_alive(); }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (length) {
      message.request.body.reserve(static_cast<std::size_t>(*length));  // within body_limit
    }
  }
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    message.request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override {
    message.request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}
};

// `target` without its /scope/…/ prefix (copied into `storage` when it has one, which is rare);
// nullopt when the prefix is malformed.
std::optional<std::string_view> unscoped(std::string_view target, std::string& storage) {
  if (!target.starts_with("/scope/")) {
    return target;
  }
  storage = target;
  if (!take_path_scope(storage)) {
    return std::nullopt;
  }
  return std::string_view(storage);
}

// Decides what a request gets. No I/O: watches come back as a SiteWatch for the session to run.
// A /scope/…/ prefix does not change what the front door serves itself.
Routed route(const Incoming& in, const FrontDoor::Services& services) {
  std::string storage;
  const auto without_scope = unscoped(in.request.target, storage);
  if (!without_scope) {
    return std::monostate();  // the proxy explains what is wrong with the prefix
  }
  const std::string_view target = *without_scope;
  if (!target.starts_with('/')) {
    return status_reply(kube::Status::bad_request("malformed request target"));
  }
  // The path, decoded only when it has escapes (rare): most requests are proxied untouched,
  // and parsing the whole URL cost as much as the rest of the routing.
  std::string decoded;
  std::string_view path = target.substr(0, target.find('?'));
  if (path.find('%') != std::string_view::npos) {
    auto url = boost::urls::parse_origin_form(target);
    if (!url) {
      return status_reply(kube::Status::bad_request("malformed request target"));
    }
    decoded = url->path();
    path = decoded;
  }
  const bool get = in.verb == http::verb::get || in.verb == http::verb::head;
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    const bool ok = path != "/readyz" || !services.ready || services.ready();
    return Reply{ok ? http::status::ok : http::status::service_unavailable, "text/plain",
                 ok ? "ok" : "not ready"};
  }
  if (path == "/metrics") {
    return Reply{http::status::ok, std::string(base::PrometheusText::kContentType),
                 services.metrics ? services.metrics() : std::string()};
  }
  // Discovery of the archipel.io group; the proxy adds it to the clusters' /apis.
  if (services.proxy == nullptr && (path == "/api" || path == "/api/")) {
    return Reply{http::status::ok, "application/json",
                 R"({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]})"};
  }
  if (services.proxy == nullptr && (path == "/api/v1" || path == "/api/v1/")) {
    return Reply{http::status::ok, "application/json",
                 R"({"kind":"APIResourceList","groupVersion":"v1","resources":[]})"};
  }
  if (services.proxy == nullptr && (path == "/apis" || path == "/apis/")) {
    return Reply{
        http::status::ok, "application/json",
        R"({"kind":"APIGroupList","apiVersion":"v1","groups":[)" + std::string(kGroup) + "]}"};
  }
  if (path == "/openapi/v3/apis/archipel.io/v1") {
    return Reply{http::status::ok, "application/json", std::string(embedded::kArchipelOpenApi)};
  }
  if (path == "/apis/archipel.io" || path == "/apis/archipel.io/") {
    return Reply{http::status::ok, "application/json", std::string(kGroup)};
  }
  if (path == "/apis/archipel.io/v1" || path == "/apis/archipel.io/v1/") {
    return Reply{http::status::ok, "application/json", std::string(kResources)};
  }
  if (services.sites != nullptr && path.starts_with(kSitesPath) &&
      (path.size() == kSitesPath.size() || path[kSitesPath.size()] == '/')) {
    if (!get) {
      return status_reply(kube::Status::method_not_allowed(
          "sites are read-only: they follow the federation configuration"));
    }
    const std::string_view name =
        std::string_view(path).substr(std::min(path.size(), kSitesPath.size() + 1));
    auto url = boost::urls::parse_origin_form(target);
    if (!url) {
      return status_reply(kube::Status::bad_request("malformed request target"));
    }
    const bool as_table = wants_table(in.request.header("Accept"));
    bool watch = false;
    SiteWatch w;
    w.as_table = as_table;
    for (auto param : url->params()) {
      if (param.key == "watch") {
        watch = param.value == "1" || param.value == "true";
      } else if (param.key == "resourceVersion" && !param.value.empty()) {
        w.since = to_u64(param.value);
        if (!w.since) {
          return status_reply(kube::Status::bad_request("invalid resourceVersion '" +
                                                        std::string(param.value) + "'"));
        }
      } else if (param.key == "timeoutSeconds") {
        auto t = to_u64(param.value);
        if (!t) {
          return status_reply(kube::Status::bad_request("invalid timeoutSeconds"));
        }
        w.timeout = std::chrono::seconds(std::min<std::uint64_t>(*t, 24 * 3600));
      }
    }
    if (watch) {
      return w;
    }
    if (name.empty()) {
      return Reply{http::status::ok, "application/json", services.sites->list(as_table)};
    }
    auto site = services.sites->get(name, as_table);
    if (!site) {
      return status_reply(site.error());
    }
    return Reply{http::status::ok, "application/json", std::move(*site)};
  }
  if (services.shared != nullptr && path.starts_with(kSharedPath) &&
      (path.size() == kSharedPath.size() || path[kSharedPath.size()] == '/')) {
    const std::string_view name =
        std::string_view(path).substr(std::min(path.size(), kSharedPath.size() + 1));
    const std::size_t question = target.find('?');
    auto r = services.shared->handle(
        in.request.method, name,
        question == std::string_view::npos ? std::string_view() : target.substr(question + 1),
        in.request.body, wants_table(in.request.header("Accept")));
    if (!r) {
      return status_reply(r.error());
    }
    return Reply{static_cast<http::status>(r->code), "application/json", std::move(r->body)};
  }
  if (services.migrations) {
    if (auto where = migration_path(path)) {
      const std::size_t question = target.find('?');
      FrontDoor::ResourceRequest r{
          in.request.method,
          where->first,
          where->second,
          question == std::string_view::npos ? std::string_view() : target.substr(question + 1),
          in.request.body,
          wants_table(in.request.header("Accept"))};
      auto answer = services.migrations(r);
      if (!answer) {
        return status_reply(answer.error());
      }
      return Reply{static_cast<http::status>(answer->code), "application/json",
                   std::move(answer->body)};
    }
  }
  if (services.proxy != nullptr) {
    return std::monostate();
  }
  return status_reply(kube::Status::no_route(path));
}

// The clusters' answers to which the front door adds what it serves itself.
enum class Discovery { kNone, kGroupList, kOpenApiRoot };

Discovery discovery_of(std::string_view target) {
  std::string storage;
  const auto without_scope = unscoped(target, storage);
  if (!without_scope) {
    return Discovery::kNone;
  }
  const std::string_view path = without_scope->substr(0, without_scope->find('?'));
  if (path == "/apis" || path == "/apis/") {
    return Discovery::kGroupList;
  }
  if (path == "/openapi/v3" || path == "/openapi/v3/") {
    return Discovery::kOpenApiRoot;
  }
  return Discovery::kNone;
}

// The clusters' OpenAPI v3 index with the archipel.io/v1 document added.
std::string with_archipel_openapi(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return body;
  }
  auto* paths = doc.as_object().if_contains("paths");
  if (paths == nullptr || !paths->is_object()) {
    return body;
  }
  paths->as_object()["apis/archipel.io/v1"] =
      boost::json::object{{"serverRelativeURL", "/openapi/v3/apis/archipel.io/v1"}};
  return boost::json::serialize(doc);
}

// The clusters' group list with the archipel.io group added; unchanged when it is not one.
std::string with_archipel_group(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return body;
  }
  auto* groups = doc.as_object().if_contains("groups");
  if (groups == nullptr || !groups->is_array()) {
    return body;
  }
  for (const auto& g : groups->as_array()) {
    const auto* name = g.is_object() ? g.as_object().if_contains("name") : nullptr;
    if (name != nullptr && name->is_string() && name->as_string() == "archipel.io") {
      return body;
    }
  }
  groups->as_array().push_back(boost::json::parse(kGroup));
  return boost::json::serialize(doc);
}

// The group list answer with the archipel.io group added; 502 when it cannot be read.
awaitable<std::unique_ptr<Answer>> with_archipel_discovery(std::unique_ptr<Answer> answer,
                                                           Discovery what) {
  auto body = co_await read_body(*answer, 16 * 1024 * 1024);
  if (!body) {
    const Reply reply = cut_answer_reply(body.error());
    co_return complete_answer(static_cast<unsigned>(reply.status),
                              {{"Content-Type", reply.content_type}}, reply.body);
  }
  Headers headers = answer->headers;
  co_return complete_answer(
      200, std::move(headers),
      what == Discovery::kGroupList ? with_archipel_group(*body) : with_archipel_openapi(*body));
}

bool streaming_request(std::string_view target) {
  for (const char* key : {"watch", "follow"}) {
    const auto v = query_param(target, key);
    if (v && (*v == "1" || *v == "true")) {
      return true;
    }
  }
  return false;
}

// Lines a watch has received and not yet written: filled by the directory's listener on the
// peer channel's thread, drained by the session on its strand.
struct WatchQueue {
  explicit WatchQueue(asio::any_io_executor ex) : wake(std::move(ex)) {}
  std::mutex mu;
  std::deque<std::string> lines;
  asio::steady_timer wake;
};

// What sessions share with the server; they keep it alive, since a session may finish after the
// server is gone.
struct DoorConfig {
  FrontDoor::Options options;
  FrontDoor::Services services;
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

using PlainStream = tcp::socket;
using TlsStream = ssl::stream<tcp::socket>;
template <class Stream>
constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

// The head of an answer, written over `head` (a session reuses its room): status line,
// `headers` (name/value pairs), framing (Content-Length when `length` is known, chunked
// otherwise) and Connection.
template <class HeaderPairs>
const std::string& answer_head(std::string& head, unsigned version, unsigned status,
                               const HeaderPairs& headers, std::optional<std::uint64_t> length,
                               bool keep_alive) {
  head.clear();
  http_io::status_line(head, version, status);
  for (const auto& [name, value] : headers) {
    http_io::field(head, name, value);
  }
  if (length) {
    http_io::content_length(head, *length);
  } else {
    http_io::field(head, "Transfer-Encoding", "chunked");
  }
  http_io::connection(head, version, keep_alive);
  head += "\r\n";
  return head;
}

// The headers of what the front door answers itself.
std::array<std::pair<std::string_view, std::string_view>, 2> local_headers(
    std::string_view content_type) {
  return {{{"Content-Type", content_type}, {"Cache-Control", "no-cache, private"}}};
}

// One client connection, plain or TLS. Its deadline is kept by the door's Deadlines: when it
// passes, the socket is shut down and the pending read or write fails.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<const DoorConfig> door, net::Deadlines& deadlines, Args&&... args)
      : stream_(std::forward<Args>(args)...),
        door_(std::move(door)),
        deadline_(deadlines.watch(socket().native_handle())) {}
  ~Session() override { deadline_->release(); }
  asio::any_io_executor executor() { return stream_.get_executor(); }
  static awaitable<void> run(std::shared_ptr<Session> self);
  void close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      self->deadline_->release();
      beast::error_code ignored;
      self->socket().close(ignored);
      if (auto q = self->watch_.lock()) {
        q->wake.cancel();
      }
    });
  }

 private:
  awaitable<void> serve();
  awaitable<void> serve_watch(unsigned version, const SiteWatch& w);
  // Hands the request to the proxy and streams its answer; false: the connection must close.
  awaitable<bool> serve_proxied(Incoming& in);
  // A small answer of known size, read whole and written in one go, head and body together.
  awaitable<bool> write_whole(Answer& answer, unsigned version, bool keep_alive);
  // Any other answer, piece by piece as it comes (chunked when its size is not known). A
  // stream (watch, followed logs) stays open until the site or the client ends it.
  awaitable<bool> write_streamed(std::shared_ptr<Answer> answer, unsigned version, bool keep_alive,
                                 bool streaming, bool head_only);
  awaitable<bool> write_reply(unsigned version, const Reply& reply, bool keep_alive,
                              bool head_only);
  awaitable<bool> write_chunk(std::string_view data);
  // Reads until the client closes the connection (it ends a watch that way), then calls
  // `on_close` on the session's executor.
  void notice_close(std::function<void()> on_close);
  tcp::socket& socket() {
    if constexpr (kTls<Stream>) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::string head_;  // the head of the answer being written (its room kept between answers)
  std::shared_ptr<const DoorConfig> door_;
  std::shared_ptr<net::Deadlines::Watch> deadline_;
  bool closing_ = false;
  std::weak_ptr<WatchQueue> watch_;
};

class FrontDoorImpl final : public FrontDoor {
 public:
  FrontDoorImpl(asio::io_context& io, Options options, Services services)
      : io_(io),
        acceptor_(io.get_executor()),
        config_(std::make_shared<DoorConfig>(DoorConfig{std::move(options), std::move(services)})),
        options_(config_->options),
        deadlines_(io.get_executor()) {}

  ~FrontDoorImpl() override {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    std::lock_guard lock(mu_);
    for (auto& weak : sessions_) {
      if (auto s = weak.lock()) {
        s->close();
      }
    }
  }

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
    return {};
  }

  void run() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

  std::uint16_t port() const override { return port_; }

 private:
  // Where a new connection runs: on one thread, the io_context itself; on several, a strand
  // of it, so that a connection's handlers never run concurrently.
  asio::any_io_executor connection_executor() {
    if (options_.threads == 1) {
      return io_.get_executor();
    }
    return asio::make_strand(io_);
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(connection_executor(), use_nothrow);
      if (ec) {
        if (!acceptor_.is_open()) {
          co_return;
        }
        continue;
      }
      // Answers may go out in several writes: without this, Nagle's algorithm holds the
      // second behind the client's delayed ACK (40 ms).
      beast::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      if (tls_) {
        spawn(std::make_shared<Session<TlsStream>>(config_, deadlines_, std::move(socket), *tls_));
      } else {
        spawn(std::make_shared<Session<PlainStream>>(config_, deadlines_, std::move(socket)));
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
    asio::co_spawn(session->executor(), S::run(session), asio::detached);
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::shared_ptr<const DoorConfig> config_;
  const Options& options_;
  net::Deadlines deadlines_;
  std::unique_ptr<ssl::context> tls_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::list<std::weak_ptr<SessionBase>> sessions_;
};

template <class Stream>
awaitable<void> Session<Stream>::run(std::shared_ptr<Session> self) {
  if constexpr (kTls<Stream>) {
    self->deadline_->expires_after(std::chrono::seconds(10));
    auto [ec] = co_await self->stream_.async_handshake(ssl::stream_base::server, use_nothrow);
    if (ec) {
      co_return;  // not a TLS client, or it went away
    }
  }
  co_await self->serve();
}

template <class Stream>
void Session<Stream>::notice_close(std::function<void()> on_close) {
  auto probe = std::make_shared<char>();
  stream_.async_read_some(asio::buffer(probe.get(), 1),
                          [self = this->shared_from_this(), probe, on_close = std::move(on_close)](
                              beast::error_code, std::size_t) {
                            self->closing_ = true;
                            on_close();
                          });
}

template <class Stream>
awaitable<bool> Session<Stream>::write_reply(unsigned version, const Reply& reply, bool keep_alive,
                                             bool head_only) {
  const std::string& head =
      answer_head(head_, version, static_cast<unsigned>(reply.status),
                  local_headers(reply.content_type), reply.body.size(), keep_alive);
  deadline_->expires_after(std::chrono::seconds(30));
  const beast::error_code ec =
      co_await http_io::write(stream_, head, head_only ? std::string_view() : reply.body);
  co_return !ec && keep_alive;
}

template <class Stream>
awaitable<void> Session<Stream>::serve() {
  const auto& options = door_->options;
  while (!closing_) {
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    deadline_->expires_after(options.idle_timeout);
    const beast::error_code ec = co_await http_io::read_message(stream_, buffer_, parser);
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset || deadline_->expired() ||
        closing_) {
      break;
    }
    if (ec) {
      // Malformed HTTP or over the limits: one Status answer, then close.
      const kube::Status status =
          ec == http::error::body_limit
              ? kube::Status::too_large("Request entity too large: limit is " +
                                        std::to_string(options.max_body_bytes))
          : ec == http::error::header_limit
              ? kube::Status::too_large("Request header too large: limit is " +
                                        std::to_string(options.max_header_bytes))
              : kube::Status::bad_request("malformed HTTP request: " + ec.message());
      co_await write_reply(11, status_reply(status), false, false);
      break;
    }
    Incoming& in = parser.message;
    Routed routed = route(in, door_->services);
    if (std::holds_alternative<std::monostate>(routed)) {
      if (!co_await serve_proxied(in)) {
        break;
      }
      continue;
    }
    if (auto* w = std::get_if<SiteWatch>(&routed)) {
      spdlog::debug("front door: {} {} watch", in.request.method, in.request.target);
      co_await serve_watch(in.version, *w);
      break;  // a watch ends its connection's use
    }
    const Reply& reply = std::get<Reply>(routed);
    spdlog::debug("front door: {} {} {}", in.request.method, in.request.target,
                  static_cast<int>(reply.status));
    if (!co_await write_reply(in.version, reply, in.keep_alive, in.verb == http::verb::head)) {
      break;
    }
  }
  if constexpr (kTls<Stream>) {
    if (!closing_ && !deadline_->expired()) {
      deadline_->expires_after(std::chrono::seconds(5));
      co_await stream_.async_shutdown(use_nothrow);
    }
  }
  beast::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_send, ignored);
}

template <class Stream>
awaitable<bool> Session<Stream>::serve_proxied(Incoming& in) {
  const auto started = std::chrono::steady_clock::now();
  ClientRequest& request = in.request;
  // The legacy group list is asked for as JSON, so that the archipel.io group can be added
  // (and to the OpenAPI index, its document).
  const Discovery discovery =
      in.verb == http::verb::get ? discovery_of(request.target) : Discovery::kNone;
  if (discovery == Discovery::kGroupList) {
    std::erase_if(request.headers, [](const auto& h) { return beast::iequals(h.first, "Accept"); });
    request.headers.emplace_back("Accept", "application/json");
  }
  RequestRecord record;
  std::unique_ptr<Answer> answer = co_await door_->services.proxy->serve(request, record);
  if (discovery != Discovery::kNone && answer->status == 200) {
    answer = co_await with_archipel_discovery(std::move(answer), discovery);
  }
  if (door_->services.on_request) {
    door_->services.on_request(request.method, request.target, record,
                               std::chrono::steady_clock::now() - started);
  }
  const bool head_only = in.verb == http::verb::head;
  if (answer->length && *answer->length <= kWholeAnswerBytes && !head_only) {
    co_return co_await write_whole(*answer, in.version, in.keep_alive);
  }
  const bool streaming = !answer->length && streaming_request(request.target);
  co_return co_await write_streamed(std::shared_ptr<Answer>(std::move(answer)), in.version,
                                    in.keep_alive && !streaming, streaming, head_only);
}

template <class Stream>
awaitable<bool> Session<Stream>::write_whole(Answer& answer, unsigned version, bool keep_alive) {
  auto body = co_await read_body(answer, kWholeAnswerBytes);
  if (!body) {  // the site failed before its answer's end: nothing is sent yet
    co_return co_await write_reply(version, cut_answer_reply(body.error()), keep_alive, false);
  }
  const std::string& head =
      answer_head(head_, version, answer.status, answer.headers, body->size(), keep_alive);
  deadline_->expires_after(std::chrono::seconds(30));
  const beast::error_code ec = co_await http_io::write(stream_, head, *body);
  co_return !ec && keep_alive;
}

template <class Stream>
awaitable<bool> Session<Stream>::write_streamed(std::shared_ptr<Answer> answer, unsigned version,
                                                bool keep_alive, bool streaming, bool head_only) {
  const bool chunked = !answer->length;
  deadline_->expires_after(std::chrono::seconds(30));
  if (co_await http_io::write(stream_, answer_head(head_, version, answer->status, answer->headers,
                                                   answer->length, keep_alive))) {
    answer->abort();
    co_return false;
  }
  if (streaming) {
    // The client ends a watch by closing the connection: notice it while the answer is quiet.
    std::weak_ptr<Answer> weak = answer;
    notice_close([weak] {
      if (auto a = weak.lock()) {
        a->abort();
      }
    });
  }
  for (;;) {
    auto piece = co_await answer->next();
    if (!piece) {
      // The site failed mid-answer: the client sees the body cut short, as from the site.
      co_return false;
    }
    if (head_only) {
      if (!*piece) {
        break;
      }
      continue;
    }
    if (streaming) {
      deadline_->expires_never();
    } else {
      deadline_->expires_after(std::chrono::seconds(30));
    }
    beast::error_code ec;
    if (!*piece) {
      if (chunked) {
        ec = co_await http_io::write(stream_, http_io::kLastChunk);
      }
    } else if (chunked) {
      ec = co_await http_io::write_chunk(stream_, **piece);
    } else {
      ec = co_await http_io::write(stream_, **piece);
    }
    if (ec) {
      answer->abort();
      co_return false;
    }
    if (!*piece) {
      break;
    }
  }
  co_return keep_alive && !closing_;
}

template <class Stream>
awaitable<bool> Session<Stream>::write_chunk(std::string_view data) {
  deadline_->expires_after(std::chrono::seconds(30));
  co_return !co_await http_io::write_chunk(stream_, data);
}

template <class Stream>
awaitable<void> Session<Stream>::serve_watch(unsigned version, const SiteWatch& w) {
  auto queue = std::make_shared<WatchQueue>(stream_.get_executor());
  watch_ = queue;
  std::weak_ptr<WatchQueue> weak = queue;
  auto sub = door_->services.sites->watch(w.since, w.as_table, [weak](const std::string& line) {
    if (auto q = weak.lock()) {
      {
        std::lock_guard lock(q->mu);
        q->lines.push_back(line);
      }
      asio::post(q->wake.get_executor(), [q] { q->wake.cancel(); });
    }
  });
  const std::string& head =
      answer_head(head_, version, 200, local_headers("application/json"), std::nullopt, false);
  deadline_->expires_after(std::chrono::seconds(30));
  if (co_await http_io::write(stream_, head)) {
    co_return;
  }
  if (!sub) {
    // Kubernetes reports a watch that cannot start inside the stream, as an ERROR event.
    const std::string line =
        R"({"type":"ERROR","object":)" + boost::json::serialize(sub.error().to_json()) + "}\n";
    if (co_await write_chunk(line)) {
      co_await http_io::write(stream_, http_io::kLastChunk);
    }
    co_return;
  }
  // The client ends a watch by closing the connection: notice it while waiting for events.
  notice_close([queue] { queue->wake.cancel(); });
  const auto deadline = std::chrono::steady_clock::now() + w.timeout;
  while (!closing_) {
    std::deque<std::string> lines;
    {
      std::lock_guard lock(queue->mu);
      lines.swap(queue->lines);
    }
    for (const std::string& line : lines) {
      if (!co_await write_chunk(line)) {
        co_return;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    queue->wake.expires_at(deadline);
    deadline_->expires_never();
    co_await queue->wake.async_wait(use_nothrow);
  }
  if (!closing_) {
    deadline_->expires_after(std::chrono::seconds(30));
    co_await http_io::write(stream_, http_io::kLastChunk);
  }
}

}  // namespace

boost::system::result<std::unique_ptr<FrontDoor>, std::string> FrontDoor::start(
    boost::asio::io_context& io, const Options& options, Services services) {
  auto door = std::make_unique<FrontDoorImpl>(io, options, std::move(services));
  if (auto listening = door->listen(); !listening) {
    return boost::system::result<std::unique_ptr<FrontDoor>, std::string>(
        boost::system::in_place_error, listening.error());
  }
  door->run();
  return std::unique_ptr<FrontDoor>(std::move(door));
}

}  // namespace archipel::proxy
