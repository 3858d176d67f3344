#include "archipel/proxy/remote.hpp"

#include "proxy.pb.h"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>

namespace archipel::proxy {
namespace {

namespace asio = boost::asio;
using asio::awaitable;

// Beyond a unary request's own timeout, the peer stream lives this much longer, so that the
// serving site's answer (or its timeout) reaches the receiving site before the stream dies.
constexpr std::chrono::milliseconds kStreamSlack{2000};

peer::Bytes to_bytes(const google::protobuf::MessageLite& m) {
  peer::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

peer::Bytes to_bytes(std::string_view s) {
  return peer::Bytes(s.begin(), s.end());
}

// The kube.request messages to and from the wire, in plain functions: the protobuf messages
// stay out of the coroutines' frames, and bodies are moved, not copied, where they can be.
peer::Bytes encode_call(const ForwardRequest& request) {
  wire::KubeCall call;
  call.set_method(request.method);
  call.set_target(request.target);
  for (const auto& [name, value] : request.headers) {
    auto* h = call.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  call.set_body(request.body);
  call.set_timeout_ms(static_cast<std::uint32_t>(request.timeout.count()));
  return to_bytes(call);
}

std::optional<ForwardRequest> decode_call(const peer::Bytes& bytes) {
  wire::KubeCall call;
  if (!call.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return std::nullopt;
  }
  ForwardRequest forward;
  forward.method = call.method();
  forward.target = call.target();
  for (const auto& h : call.headers()) {
    if (forwarded_request_header(h.name())) {
      forward.headers.emplace_back(h.name(), h.value());
    }
  }
  forward.body = std::move(*call.mutable_body());
  forward.timeout = std::chrono::milliseconds(call.timeout_ms());
  return forward;
}

// The head of `a`, with `whole_body` when the answer goes back in one message.
peer::Bytes encode_head(const Answer& a, std::optional<std::string> whole_body) {
  wire::KubeAnswerHead head;
  head.set_status(a.status);
  for (const auto& [name, value] : a.headers) {
    auto* h = head.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  if (a.length) {
    head.set_has_length(true);
    head.set_length(*a.length);
  }
  if (whole_body) {
    head.set_complete(true);
    head.set_body(std::move(*whole_body));
  }
  return to_bytes(head);
}

struct RemoteHead {
  unsigned status = 0;
  Headers headers;  // the forwarded ones
  std::optional<std::uint64_t> length;
  bool complete = false;
  std::string body;  // when complete
};

std::optional<RemoteHead> decode_head(const peer::Bytes& bytes) {
  wire::KubeAnswerHead head;
  if (!head.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return std::nullopt;
  }
  RemoteHead out;
  out.status = head.status();
  for (const auto& h : head.headers()) {
    if (forwarded_response_header(h.name())) {
      out.headers.emplace_back(h.name(), h.value());
    }
  }
  if (head.has_length()) {
    out.length = head.length();
  }
  out.complete = head.complete();
  out.body = std::move(*head.mutable_body());
  return out;
}

SiteFailure failure(const std::string& site, const peer::RpcError& e) {
  return SiteFailure{site + ": " +
                     (e.code == peer::RpcCode::kUnreachable
                          ? "unreachable"
                          : std::string(peer::to_string(e.code))) +
                     (e.message.empty() ? "" : " (" + e.message + ")")};
}

// The answer as it comes back over the peer stream.
class RemoteAnswer final : public Answer {
 public:
  RemoteAnswer(std::string site, std::shared_ptr<peer::PeerStream> stream)
      : site_(std::move(site)), stream_(std::move(stream)) {}

  awaitable<SiteResult<std::optional<std::string>>> next() override {
    if (!stream_) {
      co_return SiteFailure{site_ + ": aborted"};
    }
    auto message = co_await stream_->receive();
    if (!message) {
      co_return failure(site_, message.error());
    }
    if (!*message) {
      stream_.reset();
      co_return std::optional<std::string>();
    }
    co_return std::optional<std::string>(std::string((*message)->begin(), (*message)->end()));
  }

  void abort() noexcept override {
    if (stream_) {
      stream_->reset({peer::RpcCode::kCancelled, "the client left"});
      stream_.reset();
    }
  }

 private:
  std::string site_;
  std::shared_ptr<peer::PeerStream> stream_;
};

// Answers of a known length up to this size go back whole in their head's message: one frame
// instead of three (head, body, end), so one wake-up of the receiving site instead of three.
constexpr std::uint64_t kWholeAnswerBytes = 1024 * 1024;

// The receiving site ends its half with its request, and resets the stream when it lets go of
// the answer before its end (its client left a watch): then nobody waits for `answer` any more
// (unless it is `done` already).
awaitable<void> abort_when_dropped(std::shared_ptr<peer::PeerStream> stream,
                                   std::shared_ptr<bool> done, Answer* answer) {
  const std::optional<peer::RpcError> reset = co_await stream->closed();
  if (reset && !*done) {
    answer->abort();
  }
}

// Runs on its own strand, with a watcher that aborts the cluster's answer when the receiving
// site gives up on the stream (its client left a watch).
awaitable<void> serve_one(std::shared_ptr<Upstream> upstream,
                          std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
  std::optional<ForwardRequest> forward = decode_call(request);
  if (!forward) {
    stream->reset({peer::RpcCode::kFailed, "malformed kube.request"});
    co_return;
  }
  auto answer = co_await upstream->send(*forward);
  if (!answer) {
    stream->reset({peer::RpcCode::kFailed, answer.error().message});
    co_return;
  }
  auto& a = **answer;
  if (a.length && *a.length <= kWholeAnswerBytes) {
    // Not a stream: the body follows the head at once, and is bounded by the request's timeout.
    auto body = co_await read_body(a, static_cast<std::size_t>(*a.length));
    if (!body) {
      stream->reset({peer::RpcCode::kFailed, body.error().message});
      co_return;
    }
    peer::Bytes whole = encode_head(a, std::move(*body));
    (void)co_await stream->send(std::move(whole), true);
    co_return;
  }
  auto done = std::make_shared<bool>(false);
  asio::co_spawn(co_await asio::this_coro::executor, abort_when_dropped(stream, done, &a),
                 asio::detached);
  // Messages are named before they are sent: GCC 12 destroys a temporary built in a co_await
  // operand under a conditional twice.
  peer::Bytes head_message = encode_head(a, std::nullopt);
  auto head_sent = co_await stream->send(std::move(head_message));
  if (!head_sent) {
    *done = true;
    a.abort();
    co_return;
  }
  for (;;) {
    auto piece = co_await a.next();
    if (!piece) {
      *done = true;
      stream->reset({peer::RpcCode::kFailed, piece.error().message});
      co_return;
    }
    const bool last = !*piece;
    peer::Bytes message;
    if (!last) {
      message = to_bytes(**piece);
    }
    auto sent = co_await stream->send(std::move(message), last);
    if (!sent || last) {
      *done = true;
      if (!sent) {
        a.abort();
      }
      co_return;
    }
  }
}

awaitable<void> serve_on_strand(std::shared_ptr<Upstream> upstream,
                                std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  co_await asio::co_spawn(strand,
                          serve_one(std::move(upstream), std::move(stream), std::move(request)),
                          asio::use_awaitable);
}

}  // namespace

void serve_remote_requests(peer::PeerNode& node, std::shared_ptr<Upstream> upstream) {
  // Not a coroutine lambda: what it captures would die with the lambda object, while the
  // coroutine it starts (which takes copies) may live on.
  node.handle(std::string(kKubeMethod),
              [upstream](std::shared_ptr<peer::PeerStream> stream, peer::Bytes request) {
                return serve_on_strand(upstream, std::move(stream), std::move(request));
              });
}

awaitable<SiteResult<std::unique_ptr<Answer>>> send_remote(peer::PeerNode& node, std::string site,
                                                           ForwardRequest request) {
  const std::chrono::milliseconds deadline =
      request.timeout.count() > 0 ? request.timeout + kStreamSlack : std::chrono::milliseconds(0);
  // Our half ends with the request. Dropping the stream before the answer's end resets it,
  // which is how the other site learns that nobody waits for the answer any more.
  peer::Bytes request_message = encode_call(request);
  auto stream = co_await node.open(site, std::string(kKubeMethod), std::move(request_message),
                                   deadline, true);
  if (!stream) {
    co_return failure(site, stream.error());
  }
  auto first = co_await (*stream)->receive();
  if (!first) {
    co_return failure(site, first.error());
  }
  std::optional<RemoteHead> head;
  if (*first) {
    head = decode_head(**first);
  }
  if (!head) {
    co_return SiteFailure{site + ": malformed answer"};
  }
  if (head->complete) {
    // The declared length is the body's, but for HEAD, whose answer has none: anything else
    // would have the client wait for bytes that never come.
    if (head->length && *head->length != head->body.size() && request.method != "HEAD") {
      co_return SiteFailure{site + ": malformed answer (" + std::to_string(head->body.size()) +
                            " bytes of a body of " + std::to_string(*head->length) + ")"};
    }
    auto whole = complete_answer(head->status, std::move(head->headers), std::move(head->body));
    if (head->length) {
      whole->length = head->length;  // a HEAD request's answer declares a length without a body
    }
    co_return whole;
  }
  auto answer = std::make_unique<RemoteAnswer>(site, std::move(*stream));
  answer->status = head->status;
  answer->headers = std::move(head->headers);
  answer->length = head->length;
  co_return std::unique_ptr<Answer>(std::move(answer));
}

}  // namespace archipel::proxy
