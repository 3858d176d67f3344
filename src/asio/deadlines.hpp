#pragma once

// Deadlines for many connections, checked by one timer.
//
// Beast's tcp_stream arms and cancels a timer around every read and write: two timer-queue
// operations and one extra handler run per I/O, a large share of a proxied request's CPU.
// Here a connection's deadline is a number it stores (one atomic write per request); one timer
// per Deadlines wakes every `tick`, and shuts down the socket of each connection whose deadline
// has passed, which ends its pending reads and writes with an error. The connection then asks
// its Watch whether that error was the deadline. Deadlines are therefore late by up to one tick.
//
// Thread safety: a Watch may be set from any thread, and the timer may fire on any thread of
// the executor: the socket is shut down through its descriptor under the Watch's mutex, never
// through the Asio object, and `release()` (called before the socket closes) makes sure the
// descriptor is not touched afterwards.

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

namespace archipel::net {

class Deadlines {
 public:
  using Clock = std::chrono::steady_clock;

  /// One connection's deadline.
  class Watch {
   public:
    explicit Watch(int fd) : fd_(fd) {}
    void expires_at(Clock::time_point t) noexcept {
      at_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
    }
    void expires_after(Clock::duration d) noexcept { expires_at(Clock::now() + d); }
    void expires_never() noexcept { at_.store(kNever, std::memory_order_relaxed); }
    /// Whether the deadline passed and the socket was shut down for it.
    [[nodiscard]] bool expired() const noexcept { return expired_.load(std::memory_order_acquire); }
    /// The socket is about to close: the timer must not touch its descriptor any more.
    void release() noexcept;

   private:
    friend class Deadlines;
    static constexpr Clock::rep kNever = Clock::duration::max().count();
    // Shuts the socket down when the deadline is before `now`; false once released.
    bool check(Clock::rep now) noexcept;

    std::atomic<Clock::rep> at_{kNever};
    std::atomic<bool> expired_{false};
    std::mutex mu_;
    int fd_;
  };

  explicit Deadlines(const boost::asio::any_io_executor& executor,
                     std::chrono::milliseconds tick = std::chrono::milliseconds(100));
  /// Stops the timer; watches still held stay valid but no longer expire.
  ~Deadlines();
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  /// Watches the socket `fd` (open): its deadline is "never" until set. The Watch is shared
  /// with the timer; call release() on it before closing the socket.
  [[nodiscard]] std::shared_ptr<Watch> watch(int fd);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace archipel::net
