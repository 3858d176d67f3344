// Requests run on another site over the peer channel (kube.request), between two real peer
// nodes on loopback: what the serving site's Kubernetes answered comes back unchanged, a small
// answer in one frame each way, and a streamed answer the receiving site lets go of is aborted
// on the serving site.

#include "archipel/proxy/remote.hpp"

#include "peer/two_sites.hpp"
#include "proxy.pb.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <deque>

namespace archipel::proxy {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using peer::run_on;
using namespace std::chrono_literals;

// An answer the fake cluster gives: its pieces, then its end, or (streaming) pieces until it is
// aborted, as a watch that sees no more events.
class FakeAnswer final : public Answer {
 public:
  FakeAnswer(std::deque<std::string> pieces, bool endless,
             std::shared_ptr<std::atomic<bool>> aborted)
      : pieces_(std::move(pieces)), endless_(endless), aborted_(std::move(aborted)) {}

  awaitable<SiteResult<std::optional<std::string>>> next() override {
    if (!pieces_.empty()) {
      std::string piece = std::move(pieces_.front());
      pieces_.pop_front();
      co_return std::optional<std::string>(std::move(piece));
    }
    while (endless_ && !*aborted_) {
      asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    if (*aborted_) {
      co_return SiteFailure{"aborted"};
    }
    co_return std::optional<std::string>();
  }
  void abort() noexcept override { *aborted_ = true; }

 private:
  std::deque<std::string> pieces_;
  bool endless_;
  std::shared_ptr<std::atomic<bool>> aborted_;
};

// A cluster that answers every request with `make()`, and remembers the last request.
class FakeUpstream final : public Upstream {
 public:
  std::function<std::unique_ptr<Answer>()> make;
  std::atomic<int> requests{0};
  std::string last_target;  // written before `requests` is incremented

  awaitable<SiteResult<std::unique_ptr<Answer>>> send(const ForwardRequest& request) override {
    last_target = request.target;
    ++requests;
    co_return make();
  }
  const std::string& url() const noexcept override { return url_; }

 private:
  std::string url_ = "fake://cluster";
};

class Remote : public peer::TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    ASSERT_TRUE(peer::eventually([&] { return both(peer::PeerState::kReachable); }));
    serve_remote_requests(*paris_, upstream_);
  }

  static ForwardRequest get(std::string target) {
    ForwardRequest r;
    r.method = "GET";
    r.target = std::move(target);
    r.timeout = 5s;
    return r;
  }

  std::shared_ptr<FakeUpstream> upstream_ = std::make_shared<FakeUpstream>();
};

std::unique_ptr<Answer> small_answer() {
  auto a = std::make_unique<FakeAnswer>(std::deque<std::string>{R"({"kind":)", R"("ConfigMap"})"},
                                        false, std::make_shared<std::atomic<bool>>(false));
  a->status = 200;
  a->headers = {{"Content-Type", "application/json"}, {"Audit-Id", "42"}};
  a->length = 20;
  return a;
}

TEST_F(Remote, TheServingSitesAnswerComesBackUnchanged) {
  upstream_->make = small_answer;
  auto answer =
      run_on(io_, send_remote(*nantes_, "paris", get("/api/v1/namespaces/a/configmaps/x")));
  ASSERT_TRUE(answer && *answer) << (answer ? (*answer).error().message : "no result");
  Answer& a = ***answer;
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.headers, (Headers{{"Content-Type", "application/json"}, {"Audit-Id", "42"}}));
  ASSERT_TRUE(a.length);
  EXPECT_EQ(*a.length, 20u);
  auto body = run_on(io_, read_body(a, 1024));
  ASSERT_TRUE(body && *body);
  EXPECT_EQ(**body, R"({"kind":"ConfigMap"})");
  EXPECT_EQ(upstream_->last_target, "/api/v1/namespaces/a/configmaps/x");
}

TEST_F(Remote, ASmallAnswerTakesOneFrameEachWay) {
  upstream_->make = small_answer;
  constexpr std::uint64_t kRequests = 40;
  const peer::LinkCounters paris_before = paris_->counters();
  const peer::LinkCounters nantes_before = nantes_->counters();
  for (std::uint64_t i = 0; i < kRequests; ++i) {
    auto answer = run_on(io_, send_remote(*nantes_, "paris", get("/api/v1/configmaps")));
    ASSERT_TRUE(answer && *answer);
    auto body = run_on(io_, read_body(***answer, 1024));
    ASSERT_TRUE(body && *body);
  }
  // One frame per request each way, and a few heartbeats (one per 100 ms): a head, body and
  // end sent apart, or a credit and a reset besides, would be two frames or more per request.
  const std::uint64_t from_paris = paris_->counters().frames_sent - paris_before.frames_sent;
  const std::uint64_t from_nantes = nantes_->counters().frames_sent - nantes_before.frames_sent;
  EXPECT_GE(from_paris, kRequests);
  EXPECT_LT(from_paris, kRequests * 3 / 2);
  EXPECT_GE(from_nantes, kRequests);
  EXPECT_LT(from_nantes, kRequests * 3 / 2);
}

TEST_F(Remote, AHeadRequestsAnswerKeepsItsDeclaredLengthWithoutABody) {
  upstream_->make = [] {
    auto a = std::make_unique<FakeAnswer>(std::deque<std::string>{}, false,
                                          std::make_shared<std::atomic<bool>>(false));
    a->status = 200;
    a->length = 1234;  // what a GET would have carried
    return a;
  };
  ForwardRequest head = get("/api/v1/configmaps");
  head.method = "HEAD";
  auto answer = run_on(io_, send_remote(*nantes_, "paris", std::move(head)));
  ASSERT_TRUE(answer && *answer);
  ASSERT_TRUE((**answer)->length);
  EXPECT_EQ(*(**answer)->length, 1234u);
  auto body = run_on(io_, read_body(***answer, 1024));
  ASSERT_TRUE(body && *body);
  EXPECT_EQ(**body, "");
}

TEST_F(Remote, AWholeAnswerShorterThanItsDeclaredLengthIsRefusedAsMalformed) {
  // A site that runs something else than archipel's kube.request, or a broken one.
  paris_->handle(std::string(kKubeMethod),
                 [](std::shared_ptr<peer::PeerStream> s, peer::Bytes) -> awaitable<void> {
                   wire::KubeAnswerHead head;
                   head.set_status(200);
                   head.set_has_length(true);
                   head.set_length(100);
                   head.set_complete(true);
                   head.set_body("short");
                   peer::Bytes message(head.ByteSizeLong());
                   head.SerializeToArray(message.data(), static_cast<int>(message.size()));
                   co_await s->send(std::move(message), true);
                 });
  auto answer = run_on(io_, send_remote(*nantes_, "paris", get("/api/v1/configmaps")));
  ASSERT_TRUE(answer);
  ASSERT_FALSE(*answer);
  EXPECT_NE((*answer).error().message.find("malformed answer"), std::string::npos)
      << (*answer).error().message;
}

TEST_F(Remote, AStreamedAnswerIsAbortedOnTheServingSiteWhenTheReceivingSiteLetsGo) {
  auto aborted = std::make_shared<std::atomic<bool>>(false);
  upstream_->make = [aborted] {
    auto a =
        std::make_unique<FakeAnswer>(std::deque<std::string>{R"({"type":"ADDED"})"}, true, aborted);
    a->status = 200;  // no length: a watch
    return a;
  };
  ForwardRequest watch = get("/api/v1/configmaps?watch=1");
  watch.timeout = 0ms;
  auto answer = run_on(io_, send_remote(*nantes_, "paris", std::move(watch)));
  ASSERT_TRUE(answer && *answer);
  std::unique_ptr<Answer> a = std::move(**answer);
  EXPECT_FALSE(a->length);
  auto first = run_on(io_, a->next());
  ASSERT_TRUE(first && *first && **first);
  EXPECT_EQ(***first, R"({"type":"ADDED"})");
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(*aborted) << "the serving site stopped a stream somebody still reads";
  a.reset();  // the client left
  EXPECT_TRUE(peer::eventually([&] { return aborted->load(); }));
}

}  // namespace
}  // namespace archipel::proxy
