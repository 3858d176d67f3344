#pragma once
// What the migration drivers share (private): protobuf messages on peer streams, and blocking
// work (CRIU, the site's Kubernetes) run on a thread pool from coroutines.

#include "archipel/peer/stream.hpp"

#include <google/protobuf/message_lite.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <string>

namespace archipel::migrate {

inline peer::Bytes encode(const google::protobuf::MessageLite& m) {
  peer::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

// Runs `fn` on `pool` (CRIU and the site's Kubernetes block) and resumes the caller with its
// result on the caller's executor.
template <class T>
boost::asio::awaitable<T> call_now(std::function<T()> fn) {
  co_return fn();
}
template <class T>
boost::asio::awaitable<T> on_pool(boost::asio::thread_pool& pool, std::function<T()> fn) {
  co_return co_await boost::asio::co_spawn(pool, call_now<T>(std::move(fn)),
                                           boost::asio::use_awaitable);
}

// The next message of `stream` as a `M`; an error says what came instead.
template <class M>
boost::asio::awaitable<boost::system::result<M, std::string>> receive_as(peer::PeerStream& stream,
                                                                         const char* what) {
  auto got = co_await stream.receive();
  if (!got) {
    co_return std::string("waiting for ") + what + ": " + got.error().message;
  }
  if (!*got) {
    co_return std::string("the other site ended the exchange before ") + what;
  }
  M m;
  if (!m.ParseFromArray((*got)->data(), static_cast<int>((*got)->size()))) {
    co_return std::string("a malformed ") + what;
  }
  co_return m;
}

}  // namespace archipel::migrate
