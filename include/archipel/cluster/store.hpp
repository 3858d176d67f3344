#pragma once

// The embedded cluster's object store: Kubernetes objects in RocksDB, one site-wide monotonic
// resourceVersion, and the recent history of changes for watches.
//
// Writes are serialised (one writer at a time, each a RocksDB WriteBatch holding the object and
// the resourceVersion counter), so a write acknowledged to a client survives kill -9. Reads run
// concurrently with writes. All methods are thread-safe.

#include "archipel/kube/resource.hpp"
#include "archipel/kube/status.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost {
struct source_location;
}

namespace archipel::kube {
/// Lets result<T, Status>::value() throw on misuse (never used on request paths).
[[noreturn]] void throw_exception_from_error(const Status& s, const boost::source_location& loc);
}  // namespace archipel::kube

namespace archipel::cluster {

template <class T>
using Result = boost::system::result<T, kube::Status>;

enum class EventType { kAdded, kModified, kDeleted };

/// One change, as watches deliver it.
struct ObjectEvent {
  EventType type;
  std::uint64_t resource_version;
  const kube::ResourceType* resource;
  std::string namespace_;  ///< empty for cluster-scoped objects
  std::string name;
  std::shared_ptr<const boost::json::object> object;  ///< the object after (for DELETED: before)
};

/// What a mutation decides, given the current object (or none).
struct Change {
  enum class Kind { kPut, kDelete, kNone };
  Kind kind = Kind::kNone;
  boost::json::object object;  ///< kPut: the new object (its resourceVersion is set by the store)
};

struct ListPage {
  std::vector<boost::json::object> items;  ///< ListForm::kObjects
  std::vector<std::string> raw;            ///< ListForm::kJson: each item's JSON text
  std::uint64_t resource_version = 0;      ///< the state the page reflects
  std::string continue_token;              ///< empty when this is the last page
};

/// Parsed objects, or their stored JSON text (no parse: what a plain LIST response splices).
enum class ListForm { kObjects, kJson };

class ObjectStore {
 public:
  /// Opens (creating if needed) the store in `dir`. Errors name the directory and RocksDB's
  /// reason.
  static boost::system::result<std::unique_ptr<ObjectStore>, std::string> open(
      const std::filesystem::path& dir);

  virtual ~ObjectStore() = default;

  /// The resourceVersion of the latest write (0 for an empty store).
  [[nodiscard]] virtual std::uint64_t resource_version() const = 0;

  [[nodiscard]] virtual std::optional<boost::json::object> get(const kube::ResourceType& type,
                                                               std::string_view ns,
                                                               std::string_view name) const = 0;

  /// Objects of `type` in `ns` (all namespaces when empty), by namespace then name. `limit` 0
  /// means no limit; `continue_token` resumes a previous page at the same resourceVersion, or
  /// fails with 410 Expired when that state is no longer kept. `keep` filters items (selectors);
  /// filtered items do not count against the limit. With ListForm::kJson, `keep` must be empty
  /// and the page's `raw` holds the items.
  [[nodiscard]] virtual Result<ListPage> list(
      const kube::ResourceType& type, std::string_view ns, std::size_t limit,
      std::string_view continue_token, const std::function<bool(const boost::json::object&)>& keep,
      ListForm form = ListForm::kObjects) const = 0;

  /// Atomically reads the object, lets `decide` choose the change, and applies it with the next
  /// resourceVersion (written into metadata.resourceVersion). Returns the object as stored (for a
  /// delete, as it was), or the Status `decide` returned. `decide` runs under the write lock:
  /// it must not call back into the store.
  virtual Result<boost::json::object> mutate(
      const kube::ResourceType& type, std::string_view ns, std::string_view name,
      const std::function<Result<Change>(const boost::json::object* current)>& decide) = 0;

  /// What a new watch starts from: the changes it missed, then every change as it happens.
  struct Subscription {
    std::vector<ObjectEvent> backlog;  ///< changes after the requested resourceVersion
    std::shared_ptr<void> handle;      ///< dropping it ends the subscription
  };
  using Listener = std::function<void(const ObjectEvent&)>;

  /// Registers `listener` for every change after `since` (after the latest write when nullopt),
  /// atomically with collecting the backlog, so no change is missed or seen twice. The listener
  /// is called under the write lock, in resourceVersion order: it must not block nor call back
  /// into the store. 410 Expired when the history (which starts empty at every open and keeps
  /// the latest kHistory changes) does not reach back to `since`.
  [[nodiscard]] virtual Result<Subscription> watch(std::optional<std::uint64_t> since,
                                                   Listener listener) = 0;

  static constexpr std::size_t kHistory = 10000;
};

}  // namespace archipel::cluster
