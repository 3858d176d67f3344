#include "archipel/proxy/answer.hpp"

namespace archipel::proxy {
namespace {

class CompleteAnswer final : public Answer {
 public:
  explicit CompleteAnswer(std::string body) : body_(std::move(body)) {}

  boost::asio::awaitable<SiteResult<std::optional<std::string>>> next() override {
    if (aborted_) {
      co_return SiteFailure{"aborted"};
    }
    if (done_) {
      co_return std::optional<std::string>();
    }
    done_ = true;
    if (body_.empty()) {
      co_return std::optional<std::string>();
    }
    co_return std::optional<std::string>(std::move(body_));
  }

  void abort() noexcept override { aborted_ = true; }

 private:
  std::string body_;
  bool done_ = false;
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<Answer> complete_answer(unsigned status, Headers headers, std::string body) {
  const std::uint64_t length = body.size();
  auto answer = std::make_unique<CompleteAnswer>(std::move(body));
  answer->length = length;
  answer->status = status;
  answer->headers = std::move(headers);
  return answer;
}

boost::asio::awaitable<SiteResult<std::string>> read_body(Answer& answer, std::size_t limit) {
  std::string body;
  for (;;) {
    auto piece = co_await answer.next();
    if (!piece) {
      co_return piece.error();
    }
    if (!*piece) {
      co_return SiteResult<std::string>(boost::system::in_place_value, std::move(body));
    }
    if (body.size() + (*piece)->size() > limit) {
      answer.abort();
      co_return SiteFailure{"the answer is larger than " + std::to_string(limit) + " bytes"};
    }
    if (body.empty()) {
      body = std::move(**piece);  // most answers come in one piece
    } else {
      body += **piece;
    }
  }
}

}  // namespace archipel::proxy
