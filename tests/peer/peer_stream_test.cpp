// Streams over the peer channel, between two sites on real loopback sockets through the link
// emulator: requests and answers, many at once on one connection, flow control holding back a
// producer its consumer does not read, deadlines, cancellation, and failure when the link goes.

#include "peer/two_sites.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <numeric>
#include <string_view>

namespace archipel::peer {
namespace {

namespace asio = boost::asio;
using asio::awaitable;

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

std::string text_of(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

class Streams : public TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    ASSERT_TRUE(eventually([&] { return both(PeerState::kReachable); }));
    // paris answers "echo" with what it received, prefixed by its name.
    paris_->handle("echo", [](std::shared_ptr<PeerStream> s, Bytes request) -> awaitable<void> {
      co_await s->send(bytes_of("paris:" + text_of(request)), true);
    });
  }

  RpcResult<Bytes> call(PeerNode& from, std::string to, std::string method, std::string body,
                        std::chrono::milliseconds deadline = 5s) {
    auto r = run_on(io_, from.call(std::move(to), std::move(method), bytes_of(body), deadline));
    EXPECT_TRUE(r.has_value()) << "the call did not complete";
    return r ? std::move(*r) : RpcResult<Bytes>(RpcError{RpcCode::kFailed, "timed out"});
  }
};

TEST_F(Streams, ACallReturnsTheHandlersAnswer) {
  auto answer = call(*nantes_, "paris", "echo", "hello");
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(text_of(*answer), "paris:hello");
  EXPECT_EQ(paris_->counters().streams_accepted, 1u);
  EXPECT_EQ(nantes_->counters().streams_opened, 1u);
}

TEST_F(Streams, BothSitesMayOpenStreamsOnTheSameConnection) {
  nantes_->handle("echo", [](std::shared_ptr<PeerStream> s, Bytes request) -> awaitable<void> {
    co_await s->send(bytes_of("nantes:" + text_of(request)), true);
  });
  auto a = call(*nantes_, "paris", "echo", "one");
  auto b = call(*paris_, "nantes", "echo", "two");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(text_of(*a), "paris:one");
  EXPECT_EQ(text_of(*b), "nantes:two");
}

TEST_F(Streams, AnUnknownMethodIsRefusedByName) {
  auto answer = call(*nantes_, "paris", "no.such.method", "x");
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, RpcCode::kUnknownMethod);
  EXPECT_NE(answer.error().message.find("no.such.method"), std::string::npos);
}

TEST_F(Streams, AnUnknownOrUnconnectedSiteIsUnreachableAtOnce) {
  auto unknown = call(*nantes_, "rennes", "echo", "x");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, RpcCode::kUnreachable);
  link_->cut();
  ASSERT_TRUE(eventually([&] { return !nantes_->status()[0].connected; }));
  auto cut = call(*nantes_, "paris", "echo", "x");
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, RpcCode::kUnreachable);
}

TEST_F(Streams, AHundredConcurrentCallsEachGetTheirOwnAnswer) {
  auto all = [this]() -> awaitable<int> {
    std::vector<std::shared_ptr<PeerStream>> streams;
    for (int i = 0; i < 100; ++i) {
      auto s = co_await nantes_->open("paris", "echo", bytes_of(std::to_string(i)), 5s);
      if (!s) {
        co_return -1;
      }
      streams.push_back(*s);
    }
    int right = 0;
    for (int i = 99; i >= 0; --i) {  // read in the other order
      auto m = co_await streams[static_cast<std::size_t>(i)]->receive();
      right += m && *m && text_of(**m) == "paris:" + std::to_string(i) ? 1 : 0;
    }
    co_return right;
  };
  EXPECT_EQ(run_on(io_, all()), 100);
}

TEST_F(Streams, ASlowConsumerHoldsBackItsProducerByFlowControl) {
  constexpr std::size_t kChunk = 64 * 1024;
  constexpr int kChunks = 64;  // 4 MiB, four times the default window
  std::atomic<int> sent{0};
  paris_->handle("produce", [&](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    for (int i = 0; i < kChunks; ++i) {
      Bytes chunk(kChunk, static_cast<std::uint8_t>(i));
      if (!co_await s->send(std::move(chunk), i == kChunks - 1)) {
        co_return;
      }
      ++sent;
    }
  });
  auto opened = run_on(io_, nantes_->open("paris", "produce", {}, 0ms));
  ASSERT_TRUE(opened && *opened);
  std::shared_ptr<PeerStream> stream = **opened;
  // Nothing is read: the producer stops once it has used the window (1 MiB) and one message.
  ASSERT_TRUE(eventually([&] { return sent.load() > 0; }));
  const int window_chunks = static_cast<int>(PeerNode::Options{}.stream_window / kChunk);
  // Give it every chance to overrun: wait until the count has not moved for a while.
  for (int last = -1; last != sent.load();) {
    last = sent.load();
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_LE(sent.load(), window_chunks + 1);
  EXPECT_LT(sent.load(), kChunks);
  // Reading everything lets it finish; the chunks arrive complete and in order.
  auto drain = [stream]() -> awaitable<int> {
    int n = 0;
    for (;;) {
      auto m = co_await stream->receive();
      if (!m || !*m) {
        co_return m ? n : -1;
      }
      if ((*m)->size() != kChunk || (**m)[0] != static_cast<std::uint8_t>(n)) {
        co_return -2;
      }
      ++n;
    }
  };
  EXPECT_EQ(run_on(io_, drain()), kChunks);
  EXPECT_EQ(sent.load(), kChunks);
}

TEST_F(Streams, TheOpenerCanStreamMessagesToTheHandler) {
  paris_->handle("sum", [](std::shared_ptr<PeerStream> s, Bytes first) -> awaitable<void> {
    std::uint64_t total = std::accumulate(first.begin(), first.end(), std::uint64_t{0});
    std::uint64_t messages = 1;
    for (;;) {
      auto m = co_await s->receive();
      if (!m || !*m) {
        break;
      }
      total = std::accumulate((*m)->begin(), (*m)->end(), total);
      ++messages;
    }
    co_await s->send(bytes_of(std::to_string(messages) + "/" + std::to_string(total)), true);
  });
  auto upload = [this]() -> awaitable<std::string> {
    auto s = co_await nantes_->open("paris", "sum", Bytes(1000, 1), 0ms, false);
    if (!s) {
      co_return "open: " + s.error().message;
    }
    for (int i = 0; i < 40; ++i) {  // 40 × 100 KiB through a 1 MiB window
      const bool last = i == 39;
      if (auto sent = co_await (*s)->send(Bytes(100 * 1024, 2), last); !sent) {
        co_return "send: " + sent.error().message;
      }
    }
    auto answer = co_await (*s)->receive();
    co_return answer&&* answer ? text_of(**answer) : "no answer";
  };
  EXPECT_EQ(run_on(io_, upload()), "41/" + std::to_string(1000 + 40 * 100 * 1024 * 2));
}

TEST_F(Streams, ADeadlineEndsTheStreamOnBothSites) {
  std::promise<RpcCode> handler_saw;
  paris_->handle("slow", [&](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    co_await sleep_for(600ms);
    auto sent = co_await s->send(bytes_of("late"), true);
    handler_saw.set_value(sent ? RpcCode{} : sent.error().code);
  });
  auto answer = call(*nantes_, "paris", "slow", "", 100ms);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, RpcCode::kDeadlineExceeded);
  auto seen = handler_saw.get_future();
  ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(seen.get(), RpcCode::kDeadlineExceeded);
}

TEST_F(Streams, ACancelledCallerCancelsTheHandlersStream) {
  std::promise<RpcCode> handler_saw;
  paris_->handle("watch", [&](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    for (;;) {  // an endless stream of events until the other side goes
      auto sent = co_await s->send(bytes_of("event"));
      if (!sent) {
        handler_saw.set_value(sent.error().code);
        co_return;
      }
      co_await sleep_for(10ms);
    }
  });
  asio::cancellation_signal stop;
  auto watcher = [this]() -> awaitable<int> {
    auto s = co_await nantes_->open("paris", "watch", {}, 0ms);
    if (!s) {
      co_return -1;
    }
    int events = 0;
    for (;;) {
      auto m = co_await (*s)->receive();
      if (!m) {
        co_return m.error().code == RpcCode::kCancelled ? events : -2;
      }
      ++events;
    }
  };
  auto promise = std::make_shared<std::promise<int>>();
  asio::co_spawn(io_, watcher(),
                 asio::bind_cancellation_slot(
                     stop.slot(), [promise](std::exception_ptr, int n) { promise->set_value(n); }));
  ASSERT_TRUE(eventually([&] { return paris_->counters().frames_sent > 20; }));
  std::this_thread::sleep_for(100ms);
  asio::post(io_, [&] { stop.emit(asio::cancellation_type::terminal); });
  auto events = promise->get_future();
  ASSERT_EQ(events.wait_for(10s), std::future_status::ready);
  EXPECT_GT(events.get(), 0);
  auto seen = handler_saw.get_future();
  ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(seen.get(), RpcCode::kCancelled);
}

TEST_F(Streams, AHandlerLearnsFromClosedThatTheOpenerLetGoBeforeTheEnd) {
  std::promise<std::optional<RpcError>> handler_saw;
  paris_->handle("watch", [&](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    co_await s->send(bytes_of("first event"));
    handler_saw.set_value(co_await s->closed());  // its stream stays open: nothing more is sent
  });
  // The opener's half ends with its request (open's default): only a reset can say it left.
  auto opened = run_on(io_, nantes_->open("paris", "watch", {}, 0ms));
  ASSERT_TRUE(opened && *opened);
  std::shared_ptr<PeerStream> stream = std::move(**opened);
  auto first = run_on(io_, stream->receive());
  ASSERT_TRUE(first && *first && **first);
  EXPECT_EQ(text_of(***first), "first event");
  stream.reset();  // lets go before the end
  auto seen = handler_saw.get_future();
  ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);
  const std::optional<RpcError> why = seen.get();
  ASSERT_TRUE(why);
  EXPECT_EQ(why->code, RpcCode::kCancelled);
}

TEST_F(Streams, ClosedIsCleanOnceBothHalvesEnded) {
  std::promise<std::optional<RpcError>> handler_saw;
  paris_->handle("once", [&](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    co_await s->send(bytes_of("the answer"), true);
    handler_saw.set_value(co_await s->closed());
  });
  auto answer = call(*nantes_, "paris", "once", "");
  ASSERT_TRUE(answer) << answer.error().message;
  auto seen = handler_saw.get_future();
  ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(seen.get());
}

TEST_F(Streams, AStalledLinkFailsStreamsWhenThePeerIsDown) {
  paris_->handle("hang", [](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    co_await s->receive();  // waits for the opener, who sends nothing more
  });
  auto opened = run_on(io_, nantes_->open("paris", "hang", {}, 0ms, false));
  ASSERT_TRUE(opened && *opened);
  std::shared_ptr<PeerStream> stream = **opened;
  ASSERT_TRUE(eventually([&] { return paris_->counters().streams_accepted == 1; }));
  link_->stall();
  auto m = run_on(io_, stream->receive());
  ASSERT_TRUE(m.has_value());
  ASSERT_FALSE(*m);
  EXPECT_EQ(m->error().code, RpcCode::kUnreachable);
  EXPECT_NE(m->error().message.find("Down"), std::string::npos) << m->error().message;
  link_->resume();
}

TEST_F(Streams, ACutLinkFailsStreamsInFlight) {
  paris_->handle("hang", [](std::shared_ptr<PeerStream> s, Bytes) -> awaitable<void> {
    co_await s->receive();
  });
  auto opened = run_on(io_, nantes_->open("paris", "hang", {}, 0ms, false));
  ASSERT_TRUE(opened && *opened);
  std::shared_ptr<PeerStream> stream = **opened;
  ASSERT_TRUE(eventually([&] { return paris_->counters().streams_accepted == 1; }));
  link_->cut();
  auto m = run_on(io_, stream->receive());
  ASSERT_TRUE(m.has_value());
  ASSERT_FALSE(*m);
  EXPECT_EQ(m->error().code, RpcCode::kUnreachable);
}

TEST_F(Streams, AHandlerThatThrowsFailsTheStreamWithItsMessage) {
  paris_->handle("broken", [](std::shared_ptr<PeerStream>, Bytes) -> awaitable<void> {
    throw std::runtime_error("disk on fire");
    co_return;
  });
  auto answer = call(*nantes_, "paris", "broken", "");
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, RpcCode::kFailed);
  EXPECT_NE(answer.error().message.find("disk on fire"), std::string::npos);
}

TEST_F(Streams, AHandlerThatReturnsWithoutAnAnswerEndsTheStream) {
  paris_->handle("silent",
                 [](std::shared_ptr<PeerStream>, Bytes) -> awaitable<void> { co_return; });
  auto answer = call(*nantes_, "paris", "silent", "");
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, RpcCode::kFailed);
  EXPECT_NE(answer.error().message.find("without an answer"), std::string::npos);
}

TEST_F(Streams, AMessageOverTheMaximumIsRefusedBeforeSending) {
  auto big = run_on(io_, nantes_->call("paris", "echo", Bytes(kMaxStreamMessage + 1), 5s));
  ASSERT_TRUE(big.has_value());
  ASSERT_FALSE(*big);
  EXPECT_EQ(big->error().code, RpcCode::kTooLarge);
  EXPECT_EQ(paris_->counters().streams_accepted, 0u);
  // The connection is unharmed.
  auto answer = call(*nantes_, "paris", "echo", "still here");
  ASSERT_TRUE(answer);
}

}  // namespace
}  // namespace archipel::peer
