#include "asio/deadlines.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>

#include <vector>

namespace archipel::net {

void Deadlines::Watch::release() noexcept {
  std::lock_guard lock(mu_);
  fd_ = -1;
}

bool Deadlines::Watch::check(Clock::rep now) noexcept {
  std::lock_guard lock(mu_);
  if (fd_ < 0) {
    return false;
  }
  if (at_.load(std::memory_order_relaxed) <= now && !expired_.load(std::memory_order_relaxed)) {
    expired_.store(true, std::memory_order_release);
    ::shutdown(fd_, SHUT_RDWR);
  }
  return true;
}

struct Deadlines::State : std::enable_shared_from_this<State> {
  State(const boost::asio::any_io_executor& executor, std::chrono::milliseconds tick)
      : timer(executor), tick(tick) {}

  void arm() {
    timer.expires_after(tick);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) {
        self->sweep();
      }
    });
  }

  // Checks every watch; forgets the released and the dropped ones.
  void sweep() {
    const Clock::rep now = Clock::now().time_since_epoch().count();
    std::vector<std::weak_ptr<Watch>> live;
    {
      std::lock_guard lock(mu);
      if (stopped) {
        return;
      }
      live.swap(watches);
    }
    std::erase_if(live, [now](const std::weak_ptr<Watch>& weak) {
      auto w = weak.lock();
      return !w || !w->check(now);
    });
    std::lock_guard lock(mu);
    if (stopped) {
      return;
    }
    // Watches added during the sweep were appended to the (emptied) list.
    live.insert(live.end(), watches.begin(), watches.end());
    watches.swap(live);
    arm();
  }

  boost::asio::steady_timer timer;
  const std::chrono::milliseconds tick;
  std::mutex mu;
  std::vector<std::weak_ptr<Watch>> watches;
  bool stopped = false;
};

Deadlines::Deadlines(const boost::asio::any_io_executor& executor, std::chrono::milliseconds tick)
    : state_(std::make_shared<State>(executor, tick)) {
  state_->arm();
}

Deadlines::~Deadlines() {
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
  // The wait may be running on another thread right now: it sees `stopped` and ends.
  boost::asio::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
}

std::shared_ptr<Deadlines::Watch> Deadlines::watch(int fd) {
  auto w = std::make_shared<Watch>(fd);
  std::lock_guard lock(state_->mu);
  state_->watches.push_back(w);
  return w;
}

}  // namespace archipel::net
