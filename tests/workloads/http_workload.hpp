#pragma once
// The HTTP/1.1 of the test workloads (cart, api): one request per connection, answered in JSON.
// The listening socket has SO_REUSEPORT, so that a copy restored on the same machine can bind
// the port while its frozen source still holds it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace workload {

struct Request {
  std::string method;
  std::string path;
  std::string body;
};

inline void answer(int fd, int code, const std::string& body) {
  const char* reason = code == 200   ? "OK"
                       : code == 201 ? "Created"
                       : code == 404 ? "Not Found"
                                     : "Bad Request";
  const std::string all =
      "HTTP/1.1 " + std::to_string(code) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < all.size()) {
    const ssize_t n = ::send(fd, all.data() + sent, all.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

// Reads one request (a body up to 1 MiB); false when the client sent none (a 400 is answered
// for a malformed one).
inline bool read_request(int fd, Request& r) {
  std::string in;
  char buf[4096];
  std::size_t header_end = std::string::npos;
  while (header_end == std::string::npos && in.size() < 65536) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return false;
    }
    in.append(buf, static_cast<std::size_t>(n));
    header_end = in.find("\r\n\r\n");
  }
  if (header_end == std::string::npos) {
    return false;
  }
  const auto sp1 = in.find(' ');
  const auto sp2 = in.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || sp2 > header_end) {
    answer(fd, 400, "{\"error\":\"malformed request\"}");
    return false;
  }
  r.method = in.substr(0, sp1);
  r.path = in.substr(sp1 + 1, sp2 - sp1 - 1);
  std::size_t length = 0;
  if (const auto cl = in.find("Content-Length: "); cl != std::string::npos && cl < header_end) {
    length = std::strtoul(in.c_str() + cl + 16, nullptr, 10);
  }
  r.body = in.substr(header_end + 4);
  while (r.body.size() < length && r.body.size() < (1U << 20)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    r.body.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// Parses `--port N [--host H]`, listens and answers each request with `handle(fd, request)`
// forever. Returns only on a usage or listening error (the exit status).
template <class Handler>
int serve(const char* name, int argc, char** argv, Handler handle) {
  int port = 0;
  std::string host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else {
      std::fprintf(stderr, "%s: unknown flag %s\n", name, argv[i]);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "%s: --port N is required\n", name);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 64) != 0) {
    std::perror(name);
    return 1;
  }
  std::printf("%s: serving on %s:%d\n", name, host.c_str(), port);
  std::fflush(stdout);
  for (;;) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) {
      continue;
    }
    Request r;
    if (read_request(fd, r)) {
      handle(fd, r);
    }
    ::close(fd);
  }
}

}  // namespace workload
