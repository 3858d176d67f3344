#pragma once
// What the migration tests share: the CRIU they run (or why there is none) and a plain HTTP
// client for the workloads.

#include "archipel/migrate/criu.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

namespace archipel::migrate::testing {

/// This machine's CRIU when it can checkpoint (root, found, `criu check` passes); otherwise
/// nullopt and `missing` says why. `required`: the tests must not skip (CI=true).
inline std::optional<Criu> usable_criu(std::string& missing, bool& required) {
  const char* ci = std::getenv("CI");
  required = ci != nullptr && std::string(ci) == "true";
  if (::getuid() != 0) {
    missing = "CRIU needs root";
    return std::nullopt;
  }
  auto binary = Criu::locate();
  if (!binary) {
    missing = "no CRIU found (scripts/setup-criu installs one)";
    return std::nullopt;
  }
  Criu criu(Criu::Options{*binary, std::chrono::seconds(30)});
  if (const CriuFeatures f = criu.check(); !f.works) {
    missing = "CRIU does not work here: " + f.problem;
    return std::nullopt;
  }
  return criu;
}

/// Sets `criu` to this machine's usable CRIU, or skips the test (fails it under CI=true: the CI
/// machine must be able to migrate). Callers return when `criu` stays empty.
inline void require_criu(std::optional<Criu>& criu,
                         const std::function<std::string(const Criu&)>& also_missing = {}) {
  std::string missing;
  bool required = false;
  criu = usable_criu(missing, required);
  if (criu && also_missing) {
    missing = also_missing(*criu);
    if (!missing.empty()) {
      criu.reset();
    }
  }
  if (criu) {
    return;
  }
  if (required) {
    FAIL() << missing;
  }
  GTEST_SKIP() << missing;
}

/// The body of one HTTP/1.1 request to 127.0.0.1:port ("" when nothing answered in 2 s).
inline std::string http(std::uint16_t port, const std::string& method, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval limit{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: workload\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

}  // namespace archipel::migrate::testing
