#include "archipel/sharing/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

namespace archipel::sharing {

namespace {

// A record of group G under key K is stored as "G\0K" (group ids hold no NUL).
std::string stored_key(std::string_view group, std::string_view key) {
  std::string out;
  out.reserve(group.size() + 1 + key.size());
  out.append(group).append(1, '\0').append(key);
  return out;
}

class RocksRecordStore final : public RecordStore {
 public:
  explicit RocksRecordStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

  boost::system::result<void, std::string> write(std::string_view group,
                                                 std::span<const Record> records) override {
    rocksdb::WriteBatch batch;
    for (const Record& r : records) {
      const std::string key = stored_key(group, r.key);
      const auto s = r.value ? batch.Put(key, *r.value) : batch.Delete(key);
      if (!s.ok()) {
        return failed("batch", s);
      }
    }
    const auto s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) {
      return failed("write", s);
    }
    return {};
  }

  boost::system::result<void, std::string> erase(std::string_view group) override {
    std::string end(group);
    end += '\x01';  // past every "group\0..." key
    const auto s = db_->DeleteRange(rocksdb::WriteOptions(), db_->DefaultColumnFamily(),
                                    stored_key(group, ""), end);
    if (!s.ok()) {
      return failed("erase", s);
    }
    return {};
  }

  boost::system::result<std::vector<Record>, std::string> load(
      std::string_view group) const override {
    const std::string prefix = stored_key(group, "");
    std::vector<Record> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back({it->key().ToString().substr(prefix.size()), it->value().ToString()});
    }
    if (!it->status().ok()) {
      return failed("read", it->status());
    }
    return out;
  }

  boost::system::result<std::vector<std::string>, std::string> groups() const override {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid();) {
      const std::string key = it->key().ToString();
      const std::string group = key.substr(0, key.find('\0'));
      out.push_back(group);
      it->Seek(group + '\x01');  // past every "group\0..." key
    }
    if (!it->status().ok()) {
      return failed("read", it->status());
    }
    return out;
  }

 private:
  static std::string failed(std::string_view what, const rocksdb::Status& s) {
    return "sharing store: " + std::string(what) + " failed: " + s.ToString();
  }

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace

boost::system::result<std::unique_ptr<RecordStore>, std::string> RecordStore::open(
    const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return boost::system::result<std::unique_ptr<RecordStore>, std::string>(
        boost::system::in_place_error, "cannot create " + dir.string() + ": " + ec.message());
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  const auto s = rocksdb::DB::Open(options, (dir / "sharing.rocksdb").string(), &raw);
  if (!s.ok()) {
    return boost::system::result<std::unique_ptr<RecordStore>, std::string>(
        boost::system::in_place_error,
        "cannot open the sharing store in " + dir.string() + ": " + s.ToString());
  }
  return std::unique_ptr<RecordStore>(new RocksRecordStore(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace archipel::sharing
