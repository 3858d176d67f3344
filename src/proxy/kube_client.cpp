#include "archipel/proxy/kube_client.hpp"

namespace archipel::proxy {

namespace {

using boost::asio::awaitable;
using sharing::KubeClient;

constexpr std::size_t kMaxBody = 64 * 1024 * 1024;

KubeClient::Result failure(std::string why) {
  return KubeClient::Result(boost::system::in_place_error, std::move(why));
}

class UpstreamKubeClient final : public KubeClient {
 public:
  UpstreamKubeClient(std::shared_ptr<Upstream> upstream, std::chrono::milliseconds timeout)
      : upstream_(std::move(upstream)), timeout_(timeout) {}

  awaitable<Result> request(std::string method, std::string target, std::string body) override {
    ForwardRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = {{"Accept", "application/json"}};
    if (!body.empty()) {
      r.headers.emplace_back("Content-Type", "application/json");
    }
    r.body = std::move(body);
    r.timeout = timeout_;
    auto answer = co_await upstream_->send(r);
    if (!answer) {
      co_return failure(answer.error().message);
    }
    auto read = co_await read_body(**answer, kMaxBody);
    if (!read) {
      co_return failure(read.error().message);
    }
    co_return Reply{(*answer)->status, std::move(*read)};
  }

  awaitable<Result> stream(std::string target,
                           std::function<bool(std::string_view)> on_line) override {
    ForwardRequest r;
    r.method = "GET";
    r.target = std::move(target);
    r.headers = {{"Accept", "application/json"}};
    auto answer = co_await upstream_->send(r);
    if (!answer) {
      co_return failure(answer.error().message);
    }
    Answer& a = **answer;
    if (a.status != 200) {
      auto read = co_await read_body(a, kMaxBody);
      co_return Reply{a.status, read ? std::move(*read) : std::string()};
    }
    std::string pending;
    for (;;) {
      auto piece = co_await a.next();
      if (!piece) {
        co_return failure(piece.error().message);
      }
      if (!*piece) {
        break;
      }
      pending += **piece;
      std::size_t start = 0;
      for (std::size_t eol; (eol = pending.find('\n', start)) != std::string::npos;
           start = eol + 1) {
        if (!on_line(std::string_view(pending).substr(start, eol - start))) {
          a.abort();
          co_return Reply{a.status, {}};
        }
      }
      pending.erase(0, start);
      if (pending.size() > kMaxBody) {
        a.abort();
        co_return failure("a watch event larger than 64 MiB");
      }
    }
    if (!pending.empty()) {
      on_line(pending);
    }
    co_return Reply{a.status, {}};
  }

 private:
  std::shared_ptr<Upstream> upstream_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::shared_ptr<sharing::KubeClient> kube_client(std::shared_ptr<Upstream> upstream,
                                                 std::chrono::milliseconds timeout) {
  return std::make_shared<UpstreamKubeClient>(std::move(upstream), timeout);
}

}  // namespace archipel::proxy
