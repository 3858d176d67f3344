#include "simgrid/engine.hpp"

#include <boost/json.hpp>
#include <simgrid/s4u.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace archipel::sim::simgrid_run {

namespace json = boost::json;

void start_engine() {
  static std::string args[] = {"archipel-simgrid", "--log=root.thres:critical",
                               "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0"};
  static char* argv[] = {args[0].data(), args[1].data(), args[2].data(), args[3].data(), nullptr};
  static int argc = 4;
  // Lives until the process ends (the child exits right after its simulation).
  static auto* engine = new simgrid::s4u::Engine(&argc, argv);
  (void)engine;
}

boost::system::result<json::value, std::string> in_child(
    const std::function<json::value()>& simulation) {
  using Result = boost::system::result<json::value, std::string>;
  auto error = [](std::string why) {
    return Result(boost::system::in_place_error, std::move(why));
  };
  int fds[2];
  if (::pipe(fds) != 0) {
    return error(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      out = json::serialize(simulation());
    } catch (const std::exception& e) {
      out = json::serialize(json::object{{"error", e.what()}});
    }
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) {
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
    ::_exit(0);  // no destructors: SimGrid's engine is not meant to be torn down
  }
  ::close(fds[1]);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return error("the simulation's process ended abnormally (status " + std::to_string(status) +
                 ")");
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return error("the simulation's result is not JSON: " + ec.message());
  }
  if (v.is_object() && v.as_object().contains("error")) {
    return error(std::string(v.at("error").as_string()));
  }
  return v;
}

}  // namespace archipel::sim::simgrid_run
