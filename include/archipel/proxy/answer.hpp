#pragma once

// A site's answer to a forwarded request as it arrives: the head, then the body in pieces, so
// that watches and followed logs stream through without buffering. Of Asio, only awaitable is
// in this header.

#include "archipel/proxy/request.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace archipel::proxy {

/// A request as the proxy forwards it to one site's Kubernetes.
struct ForwardRequest {
  std::string method;  ///< "GET"
  std::string target;  ///< path and query
  Headers headers;     ///< the forwarded ones (request.hpp)
  std::string body;
  /// Bounds the head and a complete body; zero for streams (watch, followed logs), which end
  /// when the client or the site ends them.
  std::chrono::milliseconds timeout{0};
};

/// Why a site gave no answer (the request may be tried elsewhere).
struct SiteFailure {
  std::string message;
};

template <class T>
using SiteResult = boost::system::result<T, SiteFailure>;

class Answer {
 public:
  virtual ~Answer() = default;

  unsigned status = 0;
  Headers headers;  ///< the forwarded ones
  /// Known body length (Content-Length); nullopt for chunked and streamed bodies.
  std::optional<std::uint64_t> length;

  /// The next piece of the body, or nullopt at its end.
  virtual boost::asio::awaitable<SiteResult<std::optional<std::string>>> next() = 0;
  /// Stops the answer: a pending or later next() fails. For the client leaving a watch.
  /// Call it from the executor that awaits next().
  virtual void abort() noexcept = 0;
};

/// An answer already complete in memory.
[[nodiscard]] std::unique_ptr<Answer> complete_answer(unsigned status, Headers headers,
                                                      std::string body);

/// Reads the rest of `answer`'s body; fails beyond `limit` bytes.
boost::asio::awaitable<SiteResult<std::string>> read_body(Answer& answer, std::size_t limit);

}  // namespace archipel::proxy
