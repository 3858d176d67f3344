// Test workload: a shopping cart served over HTTP, its state only in memory (the classic
// stateful service for comparing migration modes). One request per connection.
//
//   POST /items/NAME   adds one NAME; answers the cart
//   GET  /items        the cart: {"items":{"apple":2,"pear":1},"served":N}
//   GET  /healthz      ok
//   GET  /checkpoint   the state, for application-level migration (same body as /items)
//   POST /restore      replaces the state with the body of a /checkpoint answer
//
// The listening socket has SO_REUSEPORT, so that a copy restored on the same machine can bind
// the port while its frozen source still holds it.
//
// Usage: cart --port N [--host 127.0.0.1]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

std::map<std::string, long> items;
long served = 0;

std::string cart_json() {
  std::string out = "{\"items\":{";
  bool first = true;
  for (const auto& [name, count] : items) {
    out += (first ? "\"" : ",\"") + name + "\":" + std::to_string(count);
    first = false;
  }
  return out + "},\"served\":" + std::to_string(served) + "}";
}

// Parses what cart_json wrote (names are [A-Za-z0-9_-], as POST /items accepts them).
bool load(const std::string& body) {
  std::map<std::string, long> next;
  const auto open = body.find("{\"items\":{");
  if (open == std::string::npos) {
    return false;
  }
  std::size_t i = open + 10;
  while (i < body.size() && body[i] != '}') {
    if (body[i] == ',') {
      ++i;
    }
    if (body[i] != '"') {
      return false;
    }
    const auto end = body.find('"', i + 1);
    if (end == std::string::npos || end + 1 >= body.size() || body[end + 1] != ':') {
      return false;
    }
    const std::string name = body.substr(i + 1, end - i - 1);
    char* after = nullptr;
    const long count = std::strtol(body.c_str() + end + 2, &after, 10);
    next[name] = count;
    i = static_cast<std::size_t>(after - body.c_str());
  }
  items = std::move(next);
  return true;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64) {
    return false;
  }
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

void answer(int fd, int code, const std::string& body) {
  const char* reason = code == 200   ? "OK"
                       : code == 201 ? "Created"
                       : code == 404 ? "Not Found"
                                     : "Bad Request";
  const std::string head =
      "HTTP/1.1 " + std::to_string(code) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n";
  const std::string all = head + body;
  std::size_t sent = 0;
  while (sent < all.size()) {
    const ssize_t n = ::send(fd, all.data() + sent, all.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

void serve(int fd) {
  std::string in;
  char buf[4096];
  std::size_t header_end = std::string::npos;
  while (header_end == std::string::npos && in.size() < 65536) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return;
    }
    in.append(buf, static_cast<std::size_t>(n));
    header_end = in.find("\r\n\r\n");
  }
  if (header_end == std::string::npos) {
    return;
  }
  const auto sp1 = in.find(' ');
  const auto sp2 = in.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || sp2 > header_end) {
    answer(fd, 400, "{\"error\":\"malformed request\"}");
    return;
  }
  const std::string method = in.substr(0, sp1);
  const std::string path = in.substr(sp1 + 1, sp2 - sp1 - 1);
  std::size_t length = 0;
  if (const auto cl = in.find("Content-Length: "); cl != std::string::npos && cl < header_end) {
    length = std::strtoul(in.c_str() + cl + 16, nullptr, 10);
  }
  std::string body = in.substr(header_end + 4);
  while (body.size() < length && body.size() < (1U << 20)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    body.append(buf, static_cast<std::size_t>(n));
  }
  ++served;
  if (method == "GET" && (path == "/items" || path == "/checkpoint")) {
    answer(fd, 200, cart_json());
  } else if (method == "GET" && path == "/healthz") {
    answer(fd, 200, "\"ok\"");
  } else if (method == "POST" && path.rfind("/items/", 0) == 0) {
    const std::string name = path.substr(7);
    if (!valid_name(name)) {
      answer(fd, 400, "{\"error\":\"an item name is 1-64 of [A-Za-z0-9_-]\"}");
      return;
    }
    ++items[name];
    answer(fd, 201, cart_json());
  } else if (method == "POST" && path == "/restore") {
    if (!load(body)) {
      answer(fd, 400, "{\"error\":\"not a checkpoint\"}");
      return;
    }
    answer(fd, 200, cart_json());
  } else {
    answer(fd, 404, "{\"error\":\"no such endpoint\"}");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else {
      std::fprintf(stderr, "cart: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "cart: --port N is required\n");
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
    std::perror("cart: listen");
    return 1;
  }
  std::printf("cart: serving on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  for (;;) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) {
      continue;
    }
    serve(fd);
    ::close(fd);
  }
}
