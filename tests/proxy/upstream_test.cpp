// The proxy's client of the site's Kubernetes (Upstream) against a scripted HTTP server on
// loopback: answers are read whole, a kept-alive connection is reused (also once the deadline of
// its last request has passed while it sat idle), and a server that never answers is reported
// as a timeout rather than waited on.

#include "archipel/proxy/upstream.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

namespace archipel::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Accepts connections on its own thread; on each, answers every request head with `answer`
// (or reads and never answers when `answer` is empty).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string answer) : answer_(std::move(answer)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedServer() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    io_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_.load(); }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) {
        return;
      }
      ++connections_;
      auto socket = std::make_shared<tcp::socket>(std::move(s));
      auto buffer = std::make_shared<asio::streambuf>();
      read_next(socket, buffer);
      accept();
    });
  }
  void read_next(std::shared_ptr<tcp::socket> socket, std::shared_ptr<asio::streambuf> buffer) {
    asio::async_read_until(*socket, *buffer, "\r\n\r\n",
                           [this, socket, buffer](boost::system::error_code ec, std::size_t n) {
                             if (ec) {
                               return;
                             }
                             buffer->consume(n);
                             if (answer_.empty()) {
                               read_next(socket, buffer);  // never answers
                               return;
                             }
                             asio::write(*socket, asio::buffer(answer_), ec);
                             read_next(socket, buffer);
                           });
  }

  std::string answer_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Sends one GET through `upstream` and reads the answer through: "200 body" or the failure.
std::string get(asio::io_context& io, Upstream& upstream, std::chrono::milliseconds timeout) {
  std::optional<std::string> outcome;
  asio::co_spawn(
      io,
      [](Upstream& u, std::chrono::milliseconds t) -> asio::awaitable<std::string> {
        ForwardRequest request;
        request.method = "GET";
        request.target = "/api/v1/namespaces/default/configmaps/x";
        request.timeout = t;
        auto answer = co_await u.send(request);
        if (!answer) {
          co_return "failed: " + answer.error().message;
        }
        auto body = co_await read_body(**answer, 1 << 20);
        if (!body) {
          co_return "failed: " + body.error().message;
        }
        co_return std::to_string((*answer)->status) + " " + *body;
      }(upstream, timeout),
      [&](std::exception_ptr e, std::string s) {
        if (e) {
          std::rethrow_exception(e);
        }
        outcome = std::move(s);
        io.stop();
      });
  io.restart();
  io.run_for(10s);
  return outcome.value_or("did not finish");
}

TEST(Upstream, ReusesAKeptAliveConnectionAfterItsLastDeadlinePassed) {
  ScriptedServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  asio::io_context io;
  auto upstream = Upstream::create(io, {.url = server.url()});
  ASSERT_TRUE(upstream) << upstream.error();
  EXPECT_EQ(get(io, **upstream, 100ms), "200 ok");
  // Idle in the pool past the first request's deadline: the connection must still be usable.
  io.restart();
  io.run_for(300ms);
  EXPECT_EQ(get(io, **upstream, 100ms), "200 ok");
  EXPECT_EQ(server.connections(), 1);
}

TEST(Upstream, ReportsAClusterThatDoesNotAnswerInTime) {
  ScriptedServer server("");
  asio::io_context io;
  auto upstream = Upstream::create(io, {.url = server.url()});
  ASSERT_TRUE(upstream) << upstream.error();
  const std::string outcome = get(io, **upstream, 200ms);
  EXPECT_NE(outcome.find("in time"), std::string::npos) << outcome;
}

TEST(Upstream, ReportsAClusterThatCannotBeReached) {
  std::string url;
  {
    ScriptedServer gone("");
    url = gone.url();
  }
  asio::io_context io;
  auto upstream = Upstream::create(io, {.url = url});
  ASSERT_TRUE(upstream) << upstream.error();
  const std::string outcome = get(io, **upstream, 1000ms);
  EXPECT_NE(outcome.find("cannot connect"), std::string::npos) << outcome;
}

}  // namespace
}  // namespace archipel::proxy
