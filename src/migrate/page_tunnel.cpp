#include "migrate/page_tunnel.hpp"

#include "migrate.pb.h"
#include "migrate/async.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <vector>

namespace archipel::migrate {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<tcp, Strand>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A page server answers with runs of pages: reads this large keep the stream's messages few.
constexpr std::size_t kChunk = 256 * 1024;

// The connection's bytes into the stream, until the connection ends (then this half of the
// stream ends) or fails (then the stream is reset, which ends the other direction too).
awaitable<void> socket_to_stream(Socket& socket, peer::PeerStream& stream) {
  std::vector<std::uint8_t> buffer(kChunk);
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
    if (ec == asio::error::eof) {
      (void)co_await stream.send({}, true);
      co_return;
    }
    if (ec) {
      stream.reset({peer::RpcCode::kFailed, "the page server connection: " + ec.message()});
      co_return;
    }
    auto sent = co_await stream.send(peer::Bytes(buffer.begin(), buffer.begin() + n));
    if (!sent) {
      boost::system::error_code ignored;
      socket.close(ignored);
      co_return;
    }
  }
}

// The stream's messages into the connection, until the other site ends its half (then this
// side stops sending) or the stream is reset (then the connection closes, which ends the other
// direction too).
awaitable<void> stream_to_socket(Socket& socket, peer::PeerStream& stream) {
  for (;;) {
    auto got = co_await stream.receive();
    boost::system::error_code ec;
    if (!got) {
      socket.close(ec);
      co_return;
    }
    if (!*got) {
      socket.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    auto [written, n] = co_await asio::async_write(socket, asio::buffer(**got), kTuple);
    if (written) {
      stream.reset({peer::RpcCode::kFailed, "the page server connection: " + written.message()});
      socket.close(ec);
      co_return;
    }
  }
}

// Both directions, on the socket's strand, until both have ended.
awaitable<void> relay(std::shared_ptr<Socket> socket, std::shared_ptr<peer::PeerStream> stream) {
  using namespace asio::experimental::awaitable_operators;
  co_await (socket_to_stream(*socket, *stream) && stream_to_socket(*socket, *stream));
}

// Source side: one "migrate.pages" stream from a destination.
awaitable<void> serve(asio::io_context& io, std::weak_ptr<PageServers> weak,
                      std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
  wire::PagesOpen open;
  if (!open.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    stream->reset({peer::RpcCode::kProtocol, "a malformed request for pages"});
    co_return;
  }
  std::shared_ptr<PageServers> servers = weak.lock();
  const std::optional<std::uint16_t> port =
      servers ? servers->port(stream->peer(), open.migration()) : std::nullopt;
  if (!port) {
    stream->reset({peer::RpcCode::kFailed, "no page server here for migration " + open.migration() +
                                               " to " + stream->peer()});
    co_return;
  }
  auto socket = std::make_shared<Socket>(asio::make_strand(io));
  const tcp::endpoint server(asio::ip::address_v4::loopback(), *port);
  auto [ec] = co_await socket->async_connect(server, kTuple);
  if (ec) {
    stream->reset({peer::RpcCode::kFailed,
                   "the page server of migration " + open.migration() + ": " + ec.message()});
    co_return;
  }
  co_await asio::co_spawn(socket->get_executor(), relay(socket, stream), asio::use_awaitable);
}

}  // namespace

void PageServers::expose(const std::string& destination, const std::string& migration,
                         std::uint16_t port) {
  std::lock_guard lock(mu_);
  ports_[{destination, migration}] = port;
}

void PageServers::withdraw(const std::string& destination, const std::string& migration) {
  std::lock_guard lock(mu_);
  ports_.erase({destination, migration});
}

std::optional<std::uint16_t> PageServers::port(const std::string& destination,
                                               const std::string& migration) const {
  std::lock_guard lock(mu_);
  auto it = ports_.find({destination, migration});
  if (it == ports_.end()) {
    return std::nullopt;
  }
  return it->second;
}

void serve_pages(asio::io_context& io, peer::PeerNode& node, std::weak_ptr<PageServers> servers) {
  node.handle(kPagesMethod,
              [&io, servers](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
                return serve(io, servers, std::move(stream), std::move(request));
              });
}

// ---- the destination's end ----

struct PageTunnel::State {
  State(asio::io_context& io, peer::PeerNode& peers) : strand(asio::make_strand(io)), node(peers) {}

  Strand strand;
  peer::PeerNode& node;
  std::string source;
  std::string migration;
  std::chrono::milliseconds deadline{0};
  std::optional<asio::basic_socket_acceptor<tcp, Strand>> acceptor;
  std::vector<std::weak_ptr<Socket>> connections;  // on the strand
  bool closed = false;                             // on the strand
};

namespace {

awaitable<void> accept(std::shared_ptr<PageTunnel::State> state);

}  // namespace

boost::system::result<std::unique_ptr<PageTunnel>, std::string> PageTunnel::open(
    asio::io_context& io, peer::PeerNode& node, std::string source, std::string migration,
    std::chrono::milliseconds deadline) {
  auto state = std::make_shared<State>(io, node);
  state->source = std::move(source);
  state->migration = std::move(migration);
  state->deadline = deadline;
  boost::system::error_code ec;
  auto& acceptor = state->acceptor.emplace(state->strand);
  const tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
  if (acceptor.open(loopback.protocol(), ec); !ec) {
    if (acceptor.bind(loopback, ec); !ec) {
      acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
  }
  if (ec) {
    return "a loopback port for the pages of migration " + state->migration + ": " + ec.message();
  }
  const std::uint16_t port = acceptor.local_endpoint(ec).port();
  if (ec) {
    return "a loopback port for the pages of migration " + state->migration + ": " + ec.message();
  }
  asio::co_spawn(state->strand, accept(state), asio::detached);
  return std::unique_ptr<PageTunnel>(new PageTunnel(std::move(state), port));
}

PageTunnel::~PageTunnel() {
  asio::post(state_->strand, [state = state_] {
    state->closed = true;
    boost::system::error_code ignored;
    state->acceptor->close(ignored);
    for (const auto& weak : state->connections) {
      if (auto socket = weak.lock()) {
        socket->close(ignored);
      }
    }
    state->connections.clear();
  });
}

namespace {

awaitable<void> accept(std::shared_ptr<PageTunnel::State> state) {
  for (;;) {
    auto socket = std::make_shared<Socket>(state->strand);
    auto [ec] = co_await state->acceptor->async_accept(*socket, kTuple);
    if (ec || state->closed) {
      co_return;
    }
    std::erase_if(state->connections, [](const auto& weak) { return weak.expired(); });
    state->connections.push_back(socket);
    wire::PagesOpen open;
    open.set_migration(state->migration);
    auto stream = co_await state->node.open(state->source, kPagesMethod, encode(open),
                                            state->deadline, false);
    if (!stream) {
      spdlog::warn("migration {}: no pages from {}: {}", state->migration, state->source,
                   stream.error().message);
      boost::system::error_code ignored;
      socket->close(ignored);
      continue;
    }
    if (state->closed) {
      (*stream)->reset({peer::RpcCode::kCancelled, "the migration ended"});
      co_return;
    }
    asio::co_spawn(state->strand, relay(socket, std::move(*stream)), asio::detached);
  }
}

}  // namespace

}  // namespace archipel::migrate
