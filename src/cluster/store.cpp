#include "archipel/cluster/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>
#include <boost/assert/source_location.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/throw_exception.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>

namespace archipel::kube {
void throw_exception_from_error(const Status& s, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(s.message), loc);
}
}  // namespace archipel::kube

namespace archipel::cluster {
namespace {

using kube::Status;

constexpr std::string_view kResourceVersionKey = "resourceVersion";

// "core/configmaps/<ns>/<name>": lists are prefix scans, ordered by namespace then name.
std::string type_prefix(const kube::ResourceType& type) {
  std::string key(type.group.empty() ? "core" : type.group);
  key += '/';
  key += type.plural;
  key += '/';
  return key;
}

std::string object_key(const kube::ResourceType& type, std::string_view ns, std::string_view name) {
  std::string key = type_prefix(type);
  key += ns;
  key += '/';
  key += name;
  return key;
}

std::string encode_u64(std::uint64_t v) {
  return std::to_string(v);
}

// A continue token: "<resourceVersion>/<last key returned>", base64url-free on purpose: it is
// opaque to clients but readable in logs, and keys never contain control characters.
std::string make_continue(std::uint64_t rv, std::string_view last_key) {
  return std::to_string(rv) + "/" + std::string(last_key);
}

bool parse_continue(std::string_view token, std::uint64_t& rv, std::string& last_key) {
  const std::size_t slash = token.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return false;
  }
  rv = 0;
  for (char c : token.substr(0, slash)) {
    if (c < '0' || c > '9' || rv > (UINT64_MAX - 9) / 10) {
      return false;
    }
    rv = rv * 10 + static_cast<std::uint64_t>(c - '0');
  }
  last_key = token.substr(slash + 1);
  return true;
}

class ObjectStoreImpl final : public ObjectStore {
 public:
  ObjectStoreImpl(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> cfs,
                  std::uint64_t rv)
      : db_(std::move(db)), cfs_(std::move(cfs)), rv_(rv), history_floor_(rv) {}

  ~ObjectStoreImpl() override {
    {
      std::lock_guard lock(snapshots_mu_);
      for (auto& [rv, entry] : snapshots_) {
        db_->ReleaseSnapshot(entry.snapshot);
      }
    }
    for (auto* cf : cfs_) {
      db_->DestroyColumnFamilyHandle(cf);
    }
  }

  std::uint64_t resource_version() const override {
    std::shared_lock lock(mu_);
    return rv_;
  }

  std::optional<boost::json::object> get(const kube::ResourceType& type, std::string_view ns,
                                         std::string_view name) const override {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions(), objects(), object_key(type, ns, name), &value);
    if (!s.ok()) {
      return std::nullopt;
    }
    return parse(value);
  }

  Result<ListPage> list(const kube::ResourceType& type, std::string_view ns, std::size_t limit,
                        std::string_view continue_token,
                        const std::function<bool(const boost::json::object&)>& keep,
                        ListForm form) const override {
    std::string prefix = type_prefix(type);
    if (!ns.empty()) {
      prefix += ns;
      prefix += '/';
    }
    ListPage page;
    const rocksdb::Snapshot* snapshot = nullptr;
    std::string start = prefix;
    if (!continue_token.empty()) {
      std::uint64_t rv = 0;
      std::string last_key;
      if (!parse_continue(continue_token, rv, last_key) || !last_key.starts_with(prefix)) {
        return Status::bad_request("invalid continue token");
      }
      snapshot = find_snapshot(rv);
      if (snapshot == nullptr) {
        return Status::expired(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter.");
      }
      page.resource_version = rv;
      start = last_key;
      start.push_back('\0');  // the first key after last_key
    } else {
      std::shared_lock lock(mu_);
      snapshot = db_->GetSnapshot();
      page.resource_version = rv_;
    }

    rocksdb::ReadOptions read;
    read.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, objects()));
    std::string last_key;
    bool more = false;
    std::size_t taken = 0;
    for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (form == ListForm::kJson) {
        if (limit > 0 && taken == limit) {
          more = true;
          break;
        }
        page.raw.emplace_back(it->value().ToStringView());
      } else {
        auto object = parse(it->value().ToStringView());
        if (!object || (keep && !keep(*object))) {
          continue;
        }
        if (limit > 0 && taken == limit) {
          more = true;
          break;
        }
        page.items.push_back(std::move(*object));
      }
      ++taken;
      last_key = it->key().ToString();
    }
    if (more) {
      page.continue_token = make_continue(page.resource_version, last_key);
      keep_snapshot(page.resource_version, snapshot);
    } else if (continue_token.empty()) {
      db_->ReleaseSnapshot(snapshot);
    }
    return page;
  }

  Result<boost::json::object> mutate(
      const kube::ResourceType& type, std::string_view ns, std::string_view name,
      const std::function<Result<Change>(const boost::json::object* current)>& decide) override {
    std::unique_lock lock(mu_);
    const std::string key = object_key(type, ns, name);
    std::string value;
    std::optional<boost::json::object> current;
    const auto got = db_->Get(rocksdb::ReadOptions(), objects(), key, &value);
    if (got.ok()) {
      current = parse(value);
    } else if (!got.IsNotFound()) {
      return Status::internal("storage read failed: " + got.ToString());
    }
    auto change = decide(current ? &*current : nullptr);
    if (!change) {
      return change.error();
    }
    if (change->kind == Change::Kind::kNone) {
      if (!current) {
        return Status::not_found(type.group, type.plural, name);
      }
      return std::move(*current);
    }

    const std::uint64_t rv = rv_ + 1;
    rocksdb::WriteBatch batch;
    EventType event_type = EventType::kDeleted;
    boost::json::object result;
    if (change->kind == Change::Kind::kPut) {
      change->object["metadata"].as_object()["resourceVersion"] = std::to_string(rv);
      batch.Put(objects(), key, boost::json::serialize(change->object));
      event_type = current ? EventType::kModified : EventType::kAdded;
      result = std::move(change->object);
    } else {
      if (!current) {
        return Status::not_found(type.group, type.plural, name);
      }
      batch.Delete(objects(), key);
      result = std::move(*current);
      // A deleted object is reported with the resourceVersion of its deletion, as Kubernetes does.
      result["metadata"].as_object()["resourceVersion"] = std::to_string(rv);
    }
    batch.Put(meta(), kResourceVersionKey, encode_u64(rv));
    const auto written = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!written.ok()) {
      return Status::internal("storage write failed: " + written.ToString());
    }
    rv_ = rv;

    ObjectEvent event{event_type,
                      rv,
                      &type,
                      std::string(ns),
                      std::string(name),
                      std::make_shared<const boost::json::object>(result)};
    history_.push_back(event);
    if (history_.size() > kHistory) {
      history_floor_ = history_.front().resource_version;
      history_.pop_front();
    }
    for (auto it = listeners_.begin(); it != listeners_.end();) {
      if (auto listener = it->lock()) {
        (*listener)(event);
        ++it;
      } else {
        it = listeners_.erase(it);
      }
    }
    return result;
  }

  Result<Subscription> watch(std::optional<std::uint64_t> since, Listener listener) override {
    std::unique_lock lock(mu_);
    Subscription sub;
    const std::uint64_t from = since.value_or(rv_);
    if (from < history_floor_) {
      return Status::expired("too old resource version: " + std::to_string(from) + " (" +
                             std::to_string(history_floor_) + ")");
    }
    for (const ObjectEvent& e : history_) {
      if (e.resource_version > from) {
        sub.backlog.push_back(e);
      }
    }
    auto shared = std::make_shared<Listener>(std::move(listener));
    listeners_.push_back(shared);
    sub.handle = shared;
    return sub;
  }

  rocksdb::ColumnFamilyHandle* objects() const { return cfs_[1]; }
  rocksdb::ColumnFamilyHandle* meta() const { return cfs_[2]; }

 private:
  static std::optional<boost::json::object> parse(std::string_view text) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) {
      return std::nullopt;
    }
    return std::move(v.as_object());
  }

  // Paged lists keep their RocksDB snapshot for kSnapshotTtl, so every page of one list shows
  // the same state, as Kubernetes guarantees.
  static constexpr auto kSnapshotTtl = std::chrono::minutes(5);
  struct KeptSnapshot {
    const rocksdb::Snapshot* snapshot;
    std::chrono::steady_clock::time_point expires;
  };

  void keep_snapshot(std::uint64_t rv, const rocksdb::Snapshot* snapshot) const {
    std::lock_guard lock(snapshots_mu_);
    expire_snapshots();
    auto [it, inserted] = snapshots_.try_emplace(rv, KeptSnapshot{snapshot, {}});
    if (!inserted && it->second.snapshot != snapshot) {
      db_->ReleaseSnapshot(snapshot);  // an equivalent snapshot is already kept
    }
    it->second.expires = std::chrono::steady_clock::now() + kSnapshotTtl;
  }

  const rocksdb::Snapshot* find_snapshot(std::uint64_t rv) const {
    std::lock_guard lock(snapshots_mu_);
    expire_snapshots();
    auto it = snapshots_.find(rv);
    return it == snapshots_.end() ? nullptr : it->second.snapshot;
  }

  void expire_snapshots() const {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = snapshots_.begin(); it != snapshots_.end();) {
      if (it->second.expires < now) {
        db_->ReleaseSnapshot(it->second.snapshot);
        it = snapshots_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // default, objects, meta

  mutable std::shared_mutex mu_;  // writers exclusive; guards rv_, history_, listeners_
  std::uint64_t rv_;
  std::uint64_t history_floor_;  // watches may start at or after this resourceVersion
  std::deque<ObjectEvent> history_;
  std::list<std::weak_ptr<Listener>> listeners_;

  mutable std::mutex snapshots_mu_;
  mutable std::map<std::uint64_t, KeptSnapshot> snapshots_;
};

}  // namespace

boost::system::result<std::unique_ptr<ObjectStore>, std::string> ObjectStore::open(
    const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return boost::system::result<std::unique_ptr<ObjectStore>, std::string>(
        boost::system::in_place_error, "cannot create " + dir.string() + ": " + ec.message());
  }
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"objects", rocksdb::ColumnFamilyOptions()},
      {"meta", rocksdb::ColumnFamilyOptions()},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const auto s =
      rocksdb::DB::Open(options, (dir / "objects.rocksdb").string(), families, &handles, &raw);
  if (!s.ok()) {
    return boost::system::result<std::unique_ptr<ObjectStore>, std::string>(
        boost::system::in_place_error,
        "cannot open the store in " + dir.string() + ": " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  std::uint64_t rv = 0;
  if (db->Get(rocksdb::ReadOptions(), handles[2], kResourceVersionKey, &value).ok()) {
    rv = std::strtoull(value.c_str(), nullptr, 10);
  }
  return std::unique_ptr<ObjectStore>(new ObjectStoreImpl(std::move(db), std::move(handles), rv));
}

}  // namespace archipel::cluster
