// Test workload: a stateless HTTP API (the other half of the classic pair with the cart: moving
// it needs no state, only the process). One request per connection (http_workload.hpp).
//
//   GET /hello     {"hello":"world","pid":N}: pid as the process sees it (1 in its own pid
//                  namespace), the same before and after a CRIU migration
//   GET /healthz   ok
//
// Usage: api --port N [--host 127.0.0.1]

#include "http_workload.hpp"

#include <unistd.h>

#include <string>

namespace {

void handle(int fd, const workload::Request& r) {
  if (r.method == "GET" && r.path == "/hello") {
    workload::answer(fd, 200, "{\"hello\":\"world\",\"pid\":" + std::to_string(::getpid()) + "}");
  } else if (r.method == "GET" && r.path == "/healthz") {
    workload::answer(fd, 200, "\"ok\"");
  } else {
    workload::answer(fd, 404, "{\"error\":\"no such endpoint\"}");
  }
}

}  // namespace

int main(int argc, char** argv) {
  return workload::serve("api", argc, argv, handle);
}
