#pragma once

// A user-space link emulator (this kernel has no netem): a TCP relay between two endpoints that
// delays, jitters, throttles, stalls and cuts the bytes it carries, on command. Tests and the
// emulation harness put one between every pair of sites. Runs on the caller's io_context; the
// control methods are thread-safe.

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace archipel::netem {

struct LinkProfile {
  std::chrono::microseconds latency{0};          ///< added one way, to every chunk
  std::chrono::microseconds jitter{0};           ///< uniform ± around latency (order is kept)
  std::uint64_t bandwidth_bytes_per_second = 0;  ///< 0: unlimited
};

class LinkEmulator {
 public:
  /// Listens on listen_host:listen_port (port 0: any free one, see port()) and relays each
  /// connection to target_host:target_port.
  static boost::system::result<std::unique_ptr<LinkEmulator>, std::string> start(
      boost::asio::io_context& io, std::string target_host, std::uint16_t target_port,
      LinkProfile profile, const std::string& listen_host = "127.0.0.1",
      std::uint16_t listen_port = 0);

  virtual ~LinkEmulator() = default;

  [[nodiscard]] virtual std::uint16_t port() const = 0;
  virtual void set_profile(LinkProfile profile) = 0;
  /// Cut: every relayed connection is closed and new ones are refused until heal().
  virtual void cut() = 0;
  virtual void heal() = 0;
  /// Stall: bytes are held (not lost) until resume(), like a link that stops forwarding.
  virtual void stall() = 0;
  virtual void resume() = 0;
  /// Bytes relayed so far, both directions.
  [[nodiscard]] virtual std::uint64_t bytes() const = 0;
  [[nodiscard]] virtual LinkProfile profile() const = 0;
  [[nodiscard]] virtual bool is_cut() const = 0;
  [[nodiscard]] virtual bool is_stalled() const = 0;
};

}  // namespace archipel::netem
