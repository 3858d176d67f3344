// archipel migrate pod/NAME --to SITE: a Migration at the front door of the site running the
// pod (migrate/migrations.hpp), followed to its end with a progress bar.

#include "cli/commands.hpp"
#include "cli/front_door_client.hpp"

#include <boost/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace archipel::cli {
namespace {

namespace json = boost::json;

// The steps a migration of `mode` goes through, as its status names them.
std::vector<std::string> expected_steps(const std::string& mode) {
  if (mode == "app") {
    return {"Accepted", "StateTaken", "Restored", "Done"};
  }
  if (mode == "warm") {
    return {"Accepted",    "BaseCheckpointed", "BaseTransferred", "Checkpointed",
            "Transferred", "Restored",         "SourceRemoved",   "Done"};
  }
  if (mode == "live") {  // post-copy (pre-copy adds its rounds: the bar is then approximate)
    return {"Accepted", "Checkpointed", "Transferred", "MemoryComplete", "SourceRemoved", "Done"};
  }
  return {"Accepted", "Checkpointed", "Transferred", "Restored", "SourceRemoved", "Done"};
}

std::string text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

double number(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0;
}

std::string bytes_text(double b) {
  char buf[32];
  if (b >= 1 << 20) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1 << 20));
  } else if (b >= 1 << 10) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / (1 << 10));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  }
  return buf;
}

// Draws the progress: on a terminal one line redrawn in place, otherwise one line per step.
class Progress {
 public:
  explicit Progress(std::vector<std::string> steps)
      : steps_(std::move(steps)), tty_(::isatty(STDOUT_FILENO) == 1) {}

  void show(const json::array& done, const std::string& phase) {
    if (!tty_) {
      for (std::size_t i = printed_; i < done.size(); ++i) {
        const json::object& s = done[i].as_object();
        std::printf("  %-18s +%.1f ms\n", text(s, "name").c_str(), number(s, "atMs"));
      }
      printed_ = done.size();
      std::fflush(stdout);
      return;
    }
    const std::size_t width = 30;
    const std::size_t filled =
        std::min(width, steps_.empty() ? width : done.size() * width / steps_.size());
    const std::string last = done.empty() ? phase : text(done.back().as_object(), "name");
    const double at = done.empty() ? 0 : number(done.back().as_object(), "atMs");
    std::printf("\r[%s%s] %zu/%zu %-18s %8.1f ms", std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str(), std::min(done.size(), steps_.size()),
                steps_.size(), last.c_str(), at);
    std::fflush(stdout);
  }

  void end() {
    if (tty_) {
      std::printf("\n");
    }
  }

 private:
  std::vector<std::string> steps_;
  bool tty_;
  std::size_t printed_ = 0;
};

}  // namespace

int migrate(const MigrateOptions& o) {
  std::string pod = o.what;
  for (const char* prefix : {"pod/", "pods/", "po/"}) {
    if (pod.starts_with(prefix)) {
      pod = pod.substr(std::string_view(prefix).size());
      break;
    }
  }
  if (pod.empty() || pod == o.what || pod.find('/') != std::string::npos) {
    std::cerr << "archipel migrate: expected pod/NAME, got '" << o.what << "'\n";
    return kExitUsage;
  }
  const std::string ns = o.namespace_name.empty() ? "default" : o.namespace_name;
  const std::string collection = "/apis/archipel.io/v1/namespaces/" + ns + "/migrations";
  json::object meta;
  if (o.name.empty()) {
    meta["generateName"] = pod + "-";
  } else {
    meta["name"] = o.name;
  }
  const json::object body{{"apiVersion", "archipel.io/v1"},
                          {"kind", "Migration"},
                          {"metadata", std::move(meta)},
                          {"spec", json::object{{"pod", pod}, {"to", o.to}, {"mode", o.mode}}}};
  auto created = call_front_door(o.front_door, "POST", collection, json::serialize(body));
  if (!created) {
    std::cerr << "archipel migrate: " << created.error() << "\n";
    return kExitFailed;
  }
  if (created->status != 201) {
    std::cerr << "archipel migrate: " << message_of(*created) << "\n";
    return kExitFailed;
  }
  const json::value object = json::parse(created->body);
  const std::string name(object.at("metadata").at("name").as_string());
  std::cout << "migration.archipel.io/" << name << " created: pod " << ns << "/" << pod << " from "
            << text(object.at("status").as_object(), "from") << " to " << o.to << " (" << o.mode
            << ")" << std::endl;
  if (!o.wait) {
    return kExitOk;
  }
  Progress progress(expected_steps(o.mode));
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (std::chrono::steady_clock::now() < until) {
    auto got = call_front_door(o.front_door, "GET", collection + "/" + name, "");
    if (!got || got->status != 200) {
      progress.end();
      std::cerr << "archipel migrate: following " << name << ": "
                << (got ? message_of(*got) : got.error()) << "\n";
      return kExitFailed;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(got->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("status")) {
      progress.end();
      std::cerr << "archipel migrate: the site answered no Migration for " << name << "\n";
      return kExitFailed;
    }
    const json::object& status = v.at("status").as_object();
    const json::value* steps = status.if_contains("steps");
    const std::string phase = text(status, "phase");
    progress.show(steps != nullptr && steps->is_array() ? steps->as_array() : json::array(), phase);
    if (phase == "Succeeded") {
      progress.end();
      std::printf(
          "pod %s runs at %s: downtime %.1f ms (%s, %s), %s of %s\n", pod.c_str(), o.to.c_str(),
          number(status, "downtimeMs"), o.mode.c_str(), text(status, "strategy").c_str(),
          bytes_text(number(status, "imageBytes")).c_str(), o.mode == "app" ? "state" : "images");
      return kExitOk;
    }
    if (phase == "Failed") {
      progress.end();
      std::cerr << "archipel migrate: " << text(status, "message") << "\n";
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  progress.end();
  std::cerr << "archipel migrate: " << name << " did not finish within 10 minutes\n";
  return kExitFailed;
}

}  // namespace archipel::cli
