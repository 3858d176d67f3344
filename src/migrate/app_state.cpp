#include "migrate/app_state.hpp"

#include "archipel/kube/object.hpp"

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace archipel::migrate {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct HttpAnswer {
  int status = 0;
  std::string body;
};

constexpr std::size_t kMaxState = 64 << 20;

// One HTTP/1.1 exchange with the application on 127.0.0.1:`port` (Connection: close).
boost::system::result<HttpAnswer, std::string> exchange(std::uint16_t port,
                                                        const std::string& method,
                                                        const std::string& path,
                                                        const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return std::string("socket: ") + std::strerror(errno);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return "connecting to the application on port " + std::to_string(port) + ": " +
           std::strerror(errno);
  }
  std::string request = method + " " + path +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return std::string("sending to the application: ") + std::strerror(errno);
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      return std::string("reading the application's answer: ") + std::strerror(errno);
    }
    if (n == 0) {
      break;
    }
    in.append(buf, static_cast<std::size_t>(n));
    if (in.size() > kMaxState) {
      return std::string("the application's answer is over 64 MiB");
    }
  }
  HttpAnswer a;
  const std::size_t head_end = in.find("\r\n\r\n");
  if (!in.starts_with("HTTP/1.") || in.size() < 12 || head_end == std::string::npos) {
    return std::string("the application did not answer in HTTP");
  }
  a.status = std::atoi(in.c_str() + 9);
  a.body = in.substr(head_end + 4);
  return a;
}

bool container_running(const json::object& pod) {
  const json::value* statuses = kube::find_path(pod, {"status", "containerStatuses"});
  if (statuses == nullptr || !statuses->is_array() || statuses->as_array().empty() ||
      !statuses->as_array().front().is_object()) {
    return false;
  }
  const json::value* state = statuses->as_array().front().as_object().if_contains("state");
  return state != nullptr && state->is_object() && state->as_object().contains("running");
}

// A pod error of the site's Kubernetes that says it does not exist (KubePodSite's errors start
// with the HTTP status).
bool not_found(const std::string& error) {
  return error.starts_with("404 ");
}

}  // namespace

boost::system::result<AppEndpoint, std::string> app_endpoint(const json::object& pod) {
  const std::string where = std::string(kube::meta_string(pod, "namespace")) + "/" +
                            std::string(kube::meta_string(pod, "name"));
  const json::value* mode = kube::find_path(pod, {"metadata", "annotations", kMigrateAnnotation});
  if (mode == nullptr || !mode->is_string() || mode->as_string() != "app") {
    return "pod " + where + " is not annotated " + std::string(kMigrateAnnotation) +
           ": app (its application must serve /checkpoint and /restore)";
  }
  const json::value* containers = kube::find_path(pod, {"spec", "containers"});
  if (containers != nullptr && containers->is_array() && !containers->as_array().empty() &&
      containers->as_array().front().is_object()) {
    const json::value* ports = containers->as_array().front().as_object().if_contains("ports");
    if (ports != nullptr && ports->is_array() && !ports->as_array().empty() &&
        ports->as_array().front().is_object()) {
      const json::value* port = ports->as_array().front().as_object().if_contains("containerPort");
      if (port != nullptr && port->is_int64() && port->as_int64() > 0 && port->as_int64() < 65536) {
        return AppEndpoint{static_cast<std::uint16_t>(port->as_int64())};
      }
    }
  }
  return "pod " + where +
         ": its container declares no port (spec.containers[0].ports[0].containerPort), where "
         "its application serves /checkpoint and /restore";
}

boost::system::result<std::string, std::string> take_app_state(PodSite& site, const std::string& ns,
                                                               const std::string& pod,
                                                               std::uint16_t port) {
  using Result = boost::system::result<std::string, std::string>;
  const auto fail = [](std::string why) { return Result(boost::system::in_place_error, why); };
  auto state = exchange(port, "GET", "/checkpoint", {});
  if (!state) {
    return fail("reading the state of " + ns + "/" + pod + ": " + state.error());
  }
  if (state->status != 200) {
    return fail("reading the state of " + ns + "/" + pod + ": the application answered " +
                std::to_string(state->status));
  }
  if (auto d = site.delete_pod(ns, pod); !d) {
    return fail("stopping " + ns + "/" + pod + ": " + d.error());
  }
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until) {
    auto got = site.get_pod(ns, pod);
    if (!got && not_found(got.error())) {
      return Result(boost::system::in_place_value, std::move(state->body));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return fail("the pod " + ns + "/" + pod + " at " + site.name() + " did not stop within 30 s");
}

boost::system::result<void, std::string> start_app_copy(PodSite& site, const json::object& pod,
                                                        std::uint16_t port,
                                                        std::chrono::milliseconds timeout) {
  (void)port;
  const std::string ns(kube::meta_string(pod, "namespace"));
  const std::string name(kube::meta_string(pod, "name"));
  if (auto existing = site.get_pod(ns, name); existing) {
    return "a pod " + ns + "/" + name + " already exists at " + site.name();
  }
  if (auto put = site.put_pod(pod); !put) {
    return "creating " + ns + "/" + name + " at " + site.name() + ": " + put.error();
  }
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    auto got = site.get_pod(ns, name);
    if (got && container_running(*got)) {
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (void)site.delete_pod(ns, name);
  return "the pod " + ns + "/" + name + " did not start at " + site.name();
}

boost::system::result<void, std::string> put_app_state(std::uint16_t port,
                                                       const std::string& state) {
  // The copy's container runs, but its application may not listen yet.
  const auto until = Clock::now() + std::chrono::seconds(10);
  std::string last;
  while (Clock::now() < until) {
    auto r = exchange(port, "POST", "/restore", state);
    if (r && r->status >= 200 && r->status < 300) {
      return {};
    }
    if (r) {
      return "the application refused the state: " + std::to_string(r->status) + " " + r->body;
    }
    last = r.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return last;
}

boost::system::result<void, std::string> give_app_back(PodSite& site,
                                                       const json::object& source_pod,
                                                       const std::string& state,
                                                       std::uint16_t port) {
  json::object pod = destination_pod(source_pod, site.name());
  json::object& notes = kube::metadata(pod)["annotations"].as_object();
  notes.erase(kMigratedFromAnnotation);
  notes.erase(kRestoringAnnotation);
  if (auto started = start_app_copy(site, pod, port, std::chrono::seconds(30)); !started) {
    return started.error();
  }
  return put_app_state(port, state);
}

}  // namespace archipel::migrate
