// The lean HTTP I/O the proxy uses (src/asio/http_io.hpp) and the deadlines that bound it
// (src/asio/deadlines.hpp), over a connected pair of local sockets: messages split across
// reads, pipelined in one read, cut short; a passed deadline ends a pending read, a released
// or future one does not.

#include "asio/http_io.hpp"
#include "asio/deadlines.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <string>
#include <vector>

namespace archipel::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;

class HttpIo : public ::testing::Test {
 protected:
  HttpIo() { asio::local::connect_pair(client_, server_); }

  // Runs `task` on the io_context to its end.
  template <class T>
  T run(asio::awaitable<T> task) {
    std::optional<T> result;
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e, T value) {
      if (e) {
        std::rethrow_exception(e);
      }
      result = std::move(value);
      io_.stop();  // the deadlines' timer would keep it running
    });
    io_.restart();
    io_.run_for(10s);
    EXPECT_TRUE(result.has_value()) << "the task did not finish";
    return result.value_or(T{});
  }

  void send(std::string_view bytes) { asio::write(client_, asio::buffer(bytes)); }

  asio::io_context io_;
  Socket client_{io_};
  Socket server_{io_};
  beast::flat_buffer buffer_;
};

asio::awaitable<beast::error_code> read_request(Socket& s, beast::flat_buffer& b,
                                                http::request_parser<http::string_body>& p) {
  co_return co_await http_io::read_message(s, b, p);
}

TEST_F(HttpIo, ReadsARequestWhoseBytesArriveInPieces) {
  // Head and body in separate writes, the head itself cut in the middle of a field.
  http::request_parser<http::string_body> parser;
  std::thread writer([this] {
    send("POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nContent-Le");
    std::this_thread::sleep_for(20ms);
    send("ngth: 11\r\n\r\n{\"a\":");
    std::this_thread::sleep_for(20ms);
    send("\"b\"}\r\n");
  });
  const beast::error_code ec = run(read_request(server_, buffer_, parser));
  writer.join();
  ASSERT_FALSE(ec) << ec.message();
  const auto& req = parser.get();
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/api/v1/namespaces/default/configmaps");
  EXPECT_EQ(req.body(), "{\"a\":\"b\"}\r\n");
}

TEST_F(HttpIo, KeepsTheBytesOfAPipelinedRequestForTheNextRead) {
  send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  http::request_parser<http::string_body> first;
  ASSERT_FALSE(run(read_request(server_, buffer_, first)));
  EXPECT_EQ(first.get().target(), "/a");
  http::request_parser<http::string_body> second;
  ASSERT_FALSE(run(read_request(server_, buffer_, second)));
  EXPECT_EQ(second.get().target(), "/b");
}

TEST_F(HttpIo, ReportsEndOfStreamBetweenMessagesAndPartialMessageWithin) {
  send("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort");
  client_.shutdown(Socket::shutdown_send);
  http::request_parser<http::string_body> cut;
  EXPECT_EQ(run(read_request(server_, buffer_, cut)), http::error::partial_message);

  Socket a(io_), b(io_);
  asio::local::connect_pair(a, b);
  a.close();
  beast::flat_buffer fresh;
  http::request_parser<http::string_body> none;
  EXPECT_EQ(run(read_request(b, fresh, none)), http::error::end_of_stream);
}

TEST_F(HttpIo, RefusesAHeadOverTheParsersLimit) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(64);
  send("GET /a HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(200, 'v') + "\r\n\r\n");
  EXPECT_EQ(run(read_request(server_, buffer_, parser)), http::error::header_limit);
}

// An answer whose body is read piece by piece into a small buffer, as the proxy streams it.
asio::awaitable<std::string> read_answer_in_pieces(Socket& s, beast::flat_buffer& b) {
  http::response_parser<http::buffer_body> parser;
  if (co_await http_io::read_header(s, b, parser)) {
    co_return "head failed";
  }
  std::string body;
  char piece[7];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    const std::size_t room = sizeof piece;
    if (auto ec = co_await http_io::read_until(s, b, parser, [room](const auto& p) {
          return p.is_done() || p.get().body().size != room;
        })) {
      co_return "body failed: " + ec.message();
    }
    body.append(piece, sizeof piece - parser.get().body().size);
  }
  co_return std::to_string(parser.get().result_int()) + " " + body;
}

TEST_F(HttpIo, ReadsAChunkedBodyInPiecesOfTheCallersSize) {
  send(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n10\r\n, this is a test\r\n0\r\n\r\n");
  EXPECT_EQ(run(read_answer_in_pieces(server_, buffer_)), "200 hello, this is a test");
}

TEST(HttpIoFormat, WritesHeadsAsHttp11AndHttp10ClientsExpectThem) {
  std::string head;
  http_io::status_line(head, 11, 404);
  http_io::content_length(head, 12);
  http_io::connection(head, 11, false);
  EXPECT_EQ(head, "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nConnection: close\r\n");
  head.clear();
  http_io::status_line(head, 10, 200);
  http_io::connection(head, 10, true);
  EXPECT_EQ(head, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n");
  head.clear();
  http_io::connection(head, 11, true);  // HTTP/1.1 keeps connections alive by default
  EXPECT_EQ(head, "");
  std::array<char, 20> storage;
  EXPECT_EQ(http_io::chunk_head(storage, 0x1a2), "1a2\r\n");
}

asio::awaitable<std::string> read_some_bytes(Socket& s) {
  char byte;
  auto [ec, n] =
      co_await s.async_read_some(asio::buffer(&byte, 1), asio::as_tuple(asio::use_awaitable));
  co_return ec ? ec.message() : std::string(1, byte);
}

TEST_F(HttpIo, APassedDeadlineEndsAPendingRead) {
  Deadlines deadlines(io_.get_executor(), 5ms);
  auto watch = deadlines.watch(server_.native_handle());
  watch->expires_after(20ms);
  const std::string outcome = run(read_some_bytes(server_));  // nothing is ever sent
  EXPECT_TRUE(watch->expired());
  EXPECT_NE(outcome.size(), 1U) << "the read should have failed, got " << outcome;
  watch->release();
}

TEST_F(HttpIo, AFutureOrReleasedDeadlineLeavesTheSocketAlone) {
  Deadlines deadlines(io_.get_executor(), 5ms);
  auto future = deadlines.watch(server_.native_handle());
  future->expires_after(1h);
  Socket other_client(io_), other_server(io_);
  asio::local::connect_pair(other_client, other_server);
  auto released = deadlines.watch(other_server.native_handle());
  released->expires_after(1ms);
  released->release();

  // Let the deadlines tick several times, then both sockets still carry bytes.
  io_.run_for(60ms);
  send("a");
  asio::write(other_client, asio::buffer("b", 1));
  EXPECT_EQ(run(read_some_bytes(server_)), "a");
  EXPECT_EQ(run(read_some_bytes(other_server)), "b");
  EXPECT_FALSE(future->expired());
  EXPECT_FALSE(released->expired());
  future->release();
}

}  // namespace
}  // namespace archipel::net
