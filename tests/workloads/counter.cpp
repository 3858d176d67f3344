// Test workload: counts. Prints 1, 2, 3, ... one number a line, every --interval-ms (100 by
// default), on stdout, flushed. A migrated counter goes on from where it was frozen; a
// restarted one starts again at 1: the log tells which happened.
//
// Usage: counter [--interval-ms N]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

int main(int argc, char** argv) {
  long interval_ms = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--interval-ms") == 0) {
      interval_ms = std::atol(argv[i + 1]);
    } else {
      std::fprintf(stderr, "counter: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  for (unsigned long n = 1;; ++n) {
    std::printf("%lu\n", n);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}
