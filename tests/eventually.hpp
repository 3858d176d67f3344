#pragma once
// Polls a condition until it holds or a deadline passes: tests wait for what they expect, not
// for a fixed time.

#include <chrono>
#include <functional>
#include <thread>

namespace archipel::testing {

inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace archipel::testing
