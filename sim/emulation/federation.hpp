#pragma once
// The sites of a scenario as real processes on loopback: one `archipel site` per site (an
// embedded cluster each), with its identity and configuration, and between every two sites a
// link emulator each way (netem::LinkEmulator, in this process) through which they dial each
// other. Faults are applied to the emulators; crashes to the processes.

#include "emulation/scenario.hpp"

#include <boost/system/result.hpp>

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace boost::asio {
class io_context;
}

namespace archipel::sim {

class Federation {
 public:
  struct Options {
    std::filesystem::path archipel;  ///< the binary that runs a site
    std::filesystem::path dir;       ///< keys, configurations, logs and data of the sites
  };

  /// Writes every site's identity and configuration and starts the link emulators on `io`
  /// (which the caller runs) and the sites. Does not wait for them to be ready.
  static boost::system::result<std::unique_ptr<Federation>, std::string> start(
      boost::asio::io_context& io, const Scenario& scenario, Options options);

  /// Stops the sites (SIGTERM, then SIGKILL after 10 s) and the links.
  ~Federation();
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  /// "http://127.0.0.1:PORT": the site's front door.
  [[nodiscard]] std::string front_door(const std::string& site) const;
  [[nodiscard]] std::filesystem::path log(const std::string& site) const;
  /// Whether the site's process runs (not crashed, not exited).
  [[nodiscard]] bool alive(const std::string& site);

  /// SIGKILL: no goodbye to its peers, nothing flushed.
  boost::system::result<void, std::string> crash(const std::string& site);
  /// Starts a crashed or exited site again with its data.
  boost::system::result<void, std::string> restart(const std::string& site);

  /// Applies a link change to both directions between `a` and `b`.
  void change(LinkChange::Kind kind, const std::string& a, const std::string& b);
  void shape(const std::string& a, const std::string& b, const netem::LinkProfile& profile);
  /// "up", "cut" or "stalled".
  [[nodiscard]] std::string link_state(const std::string& a, const std::string& b) const;
  /// Bytes carried both ways between `a` and `b` so far.
  [[nodiscard]] std::uint64_t link_bytes(const std::string& a, const std::string& b) const;

 private:
  struct Site;
  struct Link;
  Federation() = default;
  boost::system::result<void, std::string> launch(Site& site);
  void stop(Site& site);

  Options options_;
  std::map<std::string, std::unique_ptr<Site>> sites_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Link>> links_;  // a dials b
};

}  // namespace archipel::sim
