// The sharing store: records per group, written atomically, erased, listed; and a replica
// rebuilt from it after the site was killed (-9) in the middle of its work loses none of the
// changes whose records were written.

#include "archipel/sharing/store.hpp"

#include "archipel/sharing/schema.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <filesystem>
#include <random>

namespace archipel::sharing {
namespace {

namespace json = boost::json;

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("archipel-sharing-" + std::to_string(std::random_device{}()))) {}
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(RecordStore, KeepsEachGroupsRecordsApartAndErases) {
  TempDir dir;
  auto store = RecordStore::open(dir.path());
  ASSERT_TRUE(store) << store.error();
  const std::vector<Record> a = {{"m", "3"}, {"o/x", "state"}, {"q/1", "delta"}};
  const std::vector<Record> b = {{"m", "7"}};
  ASSERT_TRUE((*store)->write("namespace/a", a));
  ASSERT_TRUE((*store)->write("namespace/b", b));
  const std::vector<Record> erase = {{"q/1", std::nullopt}, {"o/y", "other"}};
  ASSERT_TRUE((*store)->write("namespace/a", erase));

  auto loaded = (*store)->load("namespace/a");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->size(), 3U);
  EXPECT_EQ((*loaded)[0].key, "m");
  EXPECT_EQ((*loaded)[1].key, "o/x");
  EXPECT_EQ((*loaded)[2].key, "o/y");
  auto groups = (*store)->groups();
  ASSERT_TRUE(groups);
  EXPECT_EQ(*groups, (std::vector<std::string>{"namespace/a", "namespace/b"}));
  auto other = (*store)->load("namespace/b");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->size(), 1U);
}

TEST(RecordStore, AReplicaKilledMidWorkComesBackWithEveryChangeItWrote) {
  TempDir dir;
  const GroupSpec spec{"namespace/team-a", {"nantes", "paris"}};
  const ObjectKey key = "/configmaps/team-a/set";
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The site: adds one key per step, persists the step's records, reports it done; killed
    // by the parent at some point.
    close(pipe_fds[0]);
    auto store = RecordStore::open(dir.path());
    if (!store) {
      _exit(2);
    }
    GroupReplica replica("paris", spec, kube_list_shape);
    json::object cm = json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "set", "namespace": "team-a"}, "data": {}})")
                          .as_object();
    for (int i = 0;; ++i) {
      cm["data"].as_object()["k" + std::to_string(i)] = "v";
      replica.local_change(key, cm, crdt::Hlc::from(1000 + static_cast<std::uint64_t>(i), 0));
      const std::vector<Record> records = replica.take_records();
      if (!(*store)->write(spec.id, records)) {
        _exit(3);
      }
      const std::int32_t done = i;
      if (write(pipe_fds[1], &done, sizeof done) != sizeof done) {
        _exit(4);
      }
    }
  }
  close(pipe_fds[1]);
  std::int32_t acknowledged = -1;
  for (int n = 0; n < 200; ++n) {
    ASSERT_EQ(read(pipe_fds[0], &acknowledged, sizeof acknowledged),
              static_cast<ssize_t>(sizeof acknowledged));
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  // Drain what it acknowledged after the 200th and before dying.
  std::int32_t more = 0;
  while (read(pipe_fds[0], &more, sizeof more) == static_cast<ssize_t>(sizeof more)) {
    acknowledged = more;
  }
  close(pipe_fds[0]);

  auto store = RecordStore::open(dir.path());
  ASSERT_TRUE(store) << store.error();
  auto records = (*store)->load(spec.id);
  ASSERT_TRUE(records) << records.error();
  auto replica = GroupReplica::recover("paris", spec, kube_list_shape, *records);
  ASSERT_TRUE(replica) << replica.error().message;
  const std::optional<json::object> shown = replica->shown(key);
  ASSERT_TRUE(shown);
  const json::object& data = shown->at("data").as_object();
  for (int i = 0; i <= acknowledged; ++i) {
    EXPECT_TRUE(data.contains("k" + std::to_string(i))) << "lost k" << i;
  }
  // And its outbox still holds every delta, for the peer that has seen none of them.
  EXPECT_GE(replica->outbox_depth(), static_cast<std::size_t>(acknowledged) + 1);
}

}  // namespace
}  // namespace archipel::sharing
