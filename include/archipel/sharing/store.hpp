#pragma once

// Where a site keeps its replica groups' records (GroupReplica::take_records): RocksDB, one
// WriteBatch per call, so a replica's step is on disk whole or not at all. A write that
// returned survives kill -9 of the site (RocksDB's write-ahead log; not a power cut: no fsync
// per write). Thread-safe.

#include "archipel/sharing/replica.hpp"

#include <boost/system/result.hpp>

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::sharing {

class RecordStore {
 public:
  /// Opens (creating if needed) the store in `dir`. Errors name the directory and RocksDB's
  /// reason.
  static boost::system::result<std::unique_ptr<RecordStore>, std::string> open(
      const std::filesystem::path& dir);

  virtual ~RecordStore() = default;

  /// Writes (or erases) `records` of group `group`, atomically.
  virtual boost::system::result<void, std::string> write(std::string_view group,
                                                         std::span<const Record> records) = 0;

  /// Erases every record of group `group` (the site left it).
  virtual boost::system::result<void, std::string> erase(std::string_view group) = 0;

  /// Every record of group `group`, in key order.
  [[nodiscard]] virtual boost::system::result<std::vector<Record>, std::string> load(
      std::string_view group) const = 0;

  /// The groups that have records.
  [[nodiscard]] virtual boost::system::result<std::vector<std::string>, std::string> groups()
      const = 0;
};

}  // namespace archipel::sharing
