// Test workload: a process with resident, dirtied memory, which says when it runs. It
// allocates --mib MiB, writes every page, then forever: writes the wall-clock time (CLOCK_REALTIME,
// microseconds since the epoch) on stdout every --stamp-us microseconds, and dirties
// --dirty-pages pages of its memory between two stamps (round robin), checking first that each
// still holds what it was given (exit status 3 otherwise).
//
// The gap between the last stamp written before a checkpoint and the first written after the
// restore is the downtime a migration caused, measured with the wall clock: CRIU restores into
// a time namespace whose monotonic clock hides part of the freeze.
//
// Usage: memory [--mib N] [--stamp-us N] [--dirty-pages N]

#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

int main(int argc, char** argv) {
  long mib = 100;
  long stamp_us = 1000;
  long dirty_pages = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const long v = std::atol(argv[i + 1]);
    if (std::strcmp(argv[i], "--mib") == 0) {
      mib = v;
    } else if (std::strcmp(argv[i], "--stamp-us") == 0) {
      stamp_us = v;
    } else if (std::strcmp(argv[i], "--dirty-pages") == 0) {
      dirty_pages = v;
    } else {
      std::fprintf(stderr, "memory: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  constexpr std::size_t kPage = 4096;
  const std::size_t bytes = static_cast<std::size_t>(mib) << 20;
  auto* memory = static_cast<unsigned char*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (memory == MAP_FAILED) {
    std::perror("memory: mmap");
    return 1;
  }
  const std::size_t pages = bytes / kPage;
  for (std::size_t p = 0; p < pages; ++p) {
    std::memset(memory + p * kPage, static_cast<int>(p * 31 + 7), kPage);  // not zero pages
  }
  std::size_t next = 0;
  for (unsigned long round = 1;; ++round) {
    for (long d = 0; d < dirty_pages && pages > 0; ++d) {
      // The first byte of a page keeps its initial value (the dirtying writes after it): a
      // page that comes back wrong from a checkpoint is seen the next time it is dirtied.
      const std::size_t p = next % pages;
      unsigned char* page = memory + p * kPage;
      if (page[0] != static_cast<unsigned char>(p * 31 + 7)) {
        std::fprintf(stderr, "memory: page %zu lost its content\n", p);
        return 3;
      }
      page[1 + round % (kPage - 1)] = static_cast<unsigned char>(round);
      ++next;
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    std::printf("%lld\n", static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::microseconds(stamp_us));
  }
}
