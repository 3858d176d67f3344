#include "archipel/migrate/criu.hpp"
#include "cli/commands.hpp"

#include <cstdio>
#include <iostream>

namespace archipel::cli {

int criu_check(const CriuCheckOptions& o) {
  std::optional<std::filesystem::path> binary =
      o.criu.empty() ? migrate::Criu::locate() : std::optional(o.criu);
  const migrate::Criu criu({binary.value_or(std::filesystem::path()), std::chrono::seconds(30)});
  const migrate::CriuFeatures f = criu.check();
  const auto row = [](const char* what, bool yes, const std::string& detail) {
    std::printf("%-12s %-4s %s\n", what, yes ? "yes" : "no", detail.c_str());
  };
  std::printf("%-12s %s%s\n", "criu", f.binary.empty() ? "(none found)" : f.binary.string().c_str(),
              f.version.empty() ? "" : (" (" + f.version + ")").c_str());
  row("checkpoint", f.works, f.works ? "cold migration: stop, dump, transfer, restore" : f.problem);
  if (!f.works) {
    row("pre-copy", false, "needs a working CRIU");
    row("post-copy", false, "needs a working CRIU");
    return kExitFailed;
  }
  row("pre-copy", f.dirty_tracking,
      f.dirty_tracking ? "live migration: iterative pre-dumps while the pod runs"
                       : "no dirty-memory tracking on this kernel: live migration uses post-copy");
  row("post-copy", f.lazy_pages,
      f.lazy_pages ? "lazy pages (userfaultfd): restored first, memory fetched on demand"
                   : "no userfaultfd: no post-copy");
  return kExitOk;
}

}  // namespace archipel::cli
