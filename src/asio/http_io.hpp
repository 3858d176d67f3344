#pragma once

// HTTP/1.1 on a stream with the fewest asynchronous operations: one read of the socket per
// chunk of bytes, parsed synchronously by Beast's parser; one write per message head (with its
// body when it is at hand). Beast's composed http::async_read/async_write run every socket
// operation through several layers of handlers and post a completion when the bytes were
// already buffered; a proxy that forwards each request twice pays that four times.
//
// For .cpp files that already include Beast (the header pulls in <boost/beast/http.hpp>).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <charconv>
#include <string>
#include <string_view>

namespace archipel::net::http_io {

/// How much a read asks the socket for.
constexpr std::size_t kReadBytes = 16 * 1024;

/// Parses what `buffer` holds and reads the stream until `done(parser)` (checked before each
/// read). A parser whose body buffer is full (http::error::need_buffer) stops the reading
/// without error. Errors: the parser's, the socket's, http::error::end_of_stream when the peer
/// closed between messages.
template <class Stream, class Parser, class Done>
boost::asio::awaitable<boost::beast::error_code> read_until(Stream& stream,
                                                            boost::beast::flat_buffer& buffer,
                                                            Parser& parser, Done done) {
  namespace http = boost::beast::http;
  for (;;) {
    if (done(parser)) {
      co_return boost::beast::error_code();
    }
    if (buffer.size() > 0) {
      boost::beast::error_code ec;
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_buffer) {
        co_return boost::beast::error_code();  // a buffer_body's buffer is full
      }
      if (ec && ec != http::error::need_more) {
        co_return ec;
      }
      if (!ec && used > 0) {
        continue;
      }
    }
    auto [ec, n] = co_await stream.async_read_some(
        buffer.prepare(kReadBytes), boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec == boost::asio::error::eof) {
      if (!parser.got_some()) {
        co_return http::error::end_of_stream;
      }
      boost::beast::error_code eof_ec;
      parser.put_eof(eof_ec);
      co_return eof_ec ? eof_ec : boost::beast::error_code(http::error::partial_message);
    }
    if (ec) {
      co_return ec;
    }
    buffer.commit(n);
  }
}

/// Reads until the message's head is parsed.
template <class Stream, class Parser>
boost::asio::awaitable<boost::beast::error_code> read_header(Stream& stream,
                                                             boost::beast::flat_buffer& buffer,
                                                             Parser& parser) {
  return read_until(stream, buffer, parser, [](const Parser& p) { return p.is_header_done(); });
}

/// Reads until the whole message is parsed.
template <class Stream, class Parser>
boost::asio::awaitable<boost::beast::error_code> read_message(Stream& stream,
                                                              boost::beast::flat_buffer& buffer,
                                                              Parser& parser) {
  return read_until(stream, buffer, parser, [](const Parser& p) { return p.is_done(); });
}

/// Writes `head` then `body` (either may be empty), in one system call when the socket takes
/// them.
template <class Stream>
boost::asio::awaitable<boost::beast::error_code> write(Stream& stream, std::string_view head,
                                                       std::string_view body = {}) {
  const std::array<boost::asio::const_buffer, 2> buffers = {
      boost::asio::buffer(head.data(), head.size()), boost::asio::buffer(body.data(), body.size())};
  auto [ec, n] = co_await boost::asio::async_write(
      stream, buffers, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

/// Appends "HTTP/1.1 200 OK\r\n" (version 11) or "HTTP/1.0 …".
inline void status_line(std::string& out, unsigned version, unsigned status) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, status);
  out.append(digits, end);
  out += ' ';
  const auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
}

/// Appends "Name: value\r\n". Names and values come from parsed messages or from this program,
/// never raw from the network, so they hold no line breaks.
inline void field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

inline void content_length(std::string& out, std::uint64_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  field(out, "Content-Length", std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

/// The Connection field a message needs, if any: HTTP/1.1 keeps connections alive unless told,
/// HTTP/1.0 closes them unless told.
inline void connection(std::string& out, unsigned version, bool keep_alive) {
  if (version == 10 && keep_alive) {
    field(out, "Connection", "keep-alive");
  } else if (version != 10 && !keep_alive) {
    field(out, "Connection", "close");
  }
}

/// The framing of one chunk of `size` bytes: "1a2\r\n" before the data; "\r\n" goes after it.
inline std::string_view chunk_head(std::array<char, 20>& storage, std::size_t size) {
  auto [end, ec] = std::to_chars(storage.data(), storage.data() + 16, size, 16);
  *end++ = '\r';
  *end++ = '\n';
  return {storage.data(), static_cast<std::size_t>(end - storage.data())};
}

/// Writes one chunk of a chunked body (`data` not empty).
template <class Stream>
boost::asio::awaitable<boost::beast::error_code> write_chunk(Stream& stream,
                                                             std::string_view data) {
  std::array<char, 20> storage;
  const std::string_view head = chunk_head(storage, data.size());
  const std::array<boost::asio::const_buffer, 3> buffers = {
      boost::asio::buffer(head.data(), head.size()), boost::asio::buffer(data.data(), data.size()),
      boost::asio::buffer("\r\n", 2)};
  auto [ec, n] = co_await boost::asio::async_write(
      stream, buffers, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

/// The last chunk of a chunked body, with no trailer.
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace archipel::net::http_io
