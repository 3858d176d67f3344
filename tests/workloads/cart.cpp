// Test workload: a shopping cart served over HTTP, its state only in memory (the classic
// stateful service for comparing migration modes). One request per connection.
//
//   POST /items/NAME   adds one NAME; answers the cart
//   GET  /items        the cart: {"items":{"apple":2,"pear":1},"served":N}
//   GET  /healthz      ok
//   GET  /checkpoint   the state, for application-level migration (same body as /items)
//   POST /restore      replaces the state with the body of a /checkpoint answer
//
// (HTTP: http_workload.hpp.)
//
// Usage: cart --port N [--host 127.0.0.1]

#include "http_workload.hpp"

#include <cctype>
#include <cstdlib>
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

void handle(int fd, const workload::Request& r) {
  const std::string& method = r.method;
  const std::string& path = r.path;
  const std::string& body = r.body;
  ++served;
  if (method == "GET" && (path == "/items" || path == "/checkpoint")) {
    workload::answer(fd, 200, cart_json());
  } else if (method == "GET" && path == "/healthz") {
    workload::answer(fd, 200, "\"ok\"");
  } else if (method == "POST" && path.rfind("/items/", 0) == 0) {
    const std::string name = path.substr(7);
    if (!valid_name(name)) {
      workload::answer(fd, 400, "{\"error\":\"an item name is 1-64 of [A-Za-z0-9_-]\"}");
      return;
    }
    ++items[name];
    workload::answer(fd, 201, cart_json());
  } else if (method == "POST" && path == "/restore") {
    if (!load(body)) {
      workload::answer(fd, 400, "{\"error\":\"not a checkpoint\"}");
      return;
    }
    workload::answer(fd, 200, cart_json());
  } else {
    workload::answer(fd, 404, "{\"error\":\"no such endpoint\"}");
  }
}

}  // namespace

int main(int argc, char** argv) {
  return workload::serve("cart", argc, argv, handle);
}
