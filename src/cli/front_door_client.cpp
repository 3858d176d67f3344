#include "cli/front_door_client.hpp"

#include "archipel/proxy/upstream.hpp"
#include "archipel/site/config.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <cstdlib>

namespace archipel::cli {
namespace {

namespace json = boost::json;

boost::asio::awaitable<void> exchange(proxy::Upstream& upstream,
                                      const proxy::ForwardRequest& request,
                                      boost::system::result<FrontDoorResponse, std::string>& out) {
  using R = boost::system::result<FrontDoorResponse, std::string>;
  auto answer = co_await upstream.send(request);
  if (!answer) {
    out = R(boost::system::in_place_error, answer.error().message);
    co_return;
  }
  auto read = co_await proxy::read_body(**answer, 16 * 1024 * 1024);
  if (!read) {
    out = R(boost::system::in_place_error, read.error().message);
    co_return;
  }
  out = FrontDoorResponse{(*answer)->status, std::move(*read)};
}

}  // namespace

boost::system::result<FrontDoorResponse, std::string> call_front_door(const ServerOptions& o,
                                                                      std::string method,
                                                                      std::string target,
                                                                      std::string body) {
  using R = boost::system::result<FrontDoorResponse, std::string>;
  std::string server = o.server;
  if (server.empty()) {
    if (const char* env = std::getenv("ARCHIPEL_SERVER"); env != nullptr) {
      server = env;
    }
  }
  if (server.empty()) {
    return R(boost::system::in_place_error,
             "give a site's front door with --server URL (or $ARCHIPEL_SERVER)");
  }
  while (server.ends_with('/')) {
    server.pop_back();
  }
  boost::asio::io_context io;
  proxy::Upstream::Options options;
  options.url = server;
  options.ca_file = o.ca_file.string();
  options.insecure_skip_tls_verify = o.insecure;
  if (!o.token_file.empty()) {
    auto token = site::read_token_file(o.token_file);
    if (!token) {
      return R(boost::system::in_place_error, "cannot read a token from " + o.token_file.string());
    }
    options.bearer_token = *token;
  }
  auto upstream = proxy::Upstream::create(io, options);
  if (!upstream) {
    return R(boost::system::in_place_error, upstream.error());
  }
  proxy::ForwardRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}};
  request.body = std::move(body);
  request.timeout = std::chrono::seconds(30);
  R out(boost::system::in_place_error, "no answer");
  // Stops the loop once answered: the pooled connection would keep it running.
  boost::asio::co_spawn(io, exchange(**upstream, request, out),
                        [&io](const std::exception_ptr&) { io.stop(); });
  io.run();
  return out;
}

std::string message_of(const FrontDoorResponse& r) {
  boost::system::error_code ec;
  const json::value v = json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (const json::value* m = v.as_object().if_contains("message"); m && m->is_string()) {
      return std::string(m->as_string());
    }
  }
  return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
}

}  // namespace archipel::cli
