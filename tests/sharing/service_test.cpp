// The sharing service between two sites over the real peer channel (loopback, through the link
// emulator): a change made at one site reaches the other's Kubernetes; edits made on both sides
// of a cut converge once it heals; a site whose service restarts from its store carries on.

#include "archipel/sharing/service.hpp"

#include "archipel/sharing/schema.hpp"
#include "peer/two_sites.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <mutex>
#include <random>
#include <set>

namespace archipel::sharing {
namespace {

namespace json = boost::json;
using peer::eventually;
using namespace std::chrono_literals;

const GroupSpec kGroup{"namespace/team-a", {"nantes", "paris"}};
const ObjectKey kApp = "/configmaps/team-a/app";

// One site's side: its store, its "Kubernetes" (a map the bridge writes) and its service.
class SiteSharing {
 public:
  // `share`: shares kGroup at each start (otherwise only on a member's invitation).
  SiteSharing(std::string name, boost::asio::io_context& io, peer::PeerNode& node,
              bool share = true)
      : name_(std::move(name)),
        share_(share),
        dir_(std::filesystem::temp_directory_path() /
             ("archipel-sharing-" + name_ + "-" + std::to_string(std::random_device{}()))),
        io_(io),
        node_(node) {
    auto store = RecordStore::open(dir_);
    EXPECT_TRUE(store) << store.error();
    store_ = std::move(*store);
    start();
  }
  ~SiteSharing() {
    service_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    SharingService::Options o;
    o.site = name_;
    o.tick = 10ms;
    SharingService::Hooks hooks;
    hooks.write = [this](const std::string& group, const LocalWrite& w) {
      {
        const std::lock_guard lock(mutex_);
        if (w.object) {
          kube_[w.key] = *w.object;
        } else {
          kube_.erase(w.key);
        }
      }
      service_->local_change(group, w.key, w.object);
    };
    hooks.joined = [this](const std::string& group) {
      const std::lock_guard lock(mutex_);
      groups_.insert(group);
    };
    hooks.left = [this](const std::string& group) {
      const std::lock_guard lock(mutex_);
      groups_.erase(group);
    };
    service_ = SharingService::start(io_, node_, *store_, kube_list_shape, o, std::move(hooks));
    if (share_) {
      service_->share(kGroup.id, kGroup.members);
    }
  }
  void restart() {
    service_.reset();
    start();
  }

  void edit(const ObjectKey& key, const std::function<void(json::object&)>& f) {
    std::optional<json::object> now;
    {
      const std::lock_guard lock(mutex_);
      json::object& o = kube_[key];
      if (o.empty()) {
        o = json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "team-a"}, "data": {}})")
                .as_object();
      }
      f(o);
      now = o;
    }
    service_->local_change(kGroup.id, key, now);
  }

  std::string data(const ObjectKey& key) {
    const std::lock_guard lock(mutex_);
    auto it = kube_.find(key);
    return it == kube_.end() ? "" : json::serialize(it->second.at("data"));
  }
  bool has(const ObjectKey& key, std::string_view field) {
    const std::lock_guard lock(mutex_);
    auto it = kube_.find(key);
    return it != kube_.end() && it->second.at("data").as_object().contains(field);
  }
  bool in_group(const std::string& group) {
    const std::lock_guard lock(mutex_);
    return groups_.contains(group);
  }
  SharingService& service() { return *service_; }
  RecordStore& store() { return *store_; }

 private:
  std::string name_;
  bool share_;
  std::filesystem::path dir_;
  boost::asio::io_context& io_;
  peer::PeerNode& node_;
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<SharingService> service_;
  std::mutex mutex_;
  std::map<ObjectKey, json::object> kube_;
  std::set<std::string> groups_;
};

class Sharing : public peer::TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    ASSERT_TRUE(eventually([&] { return both(peer::PeerState::kReachable); }));
    paris_site_ = std::make_unique<SiteSharing>("paris", io_, *paris_);
    // nantes shares nothing itself: it joins on paris's invitation.
    nantes_site_ = std::make_unique<SiteSharing>("nantes", io_, *nantes_, /*share=*/false);
  }
  void TearDown() override {
    paris_site_.reset();
    nantes_site_.reset();
    TwoSites::TearDown();
  }
  std::unique_ptr<SiteSharing> paris_site_;
  std::unique_ptr<SiteSharing> nantes_site_;
};

TEST_F(Sharing, EditsCrossTheChannelConvergeAfterACutAndSurviveARestart) {
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["color"] = "red"; });
  ASSERT_TRUE(eventually([&] { return nantes_site_->has(kApp, "color"); }));

  link_->cut();
  ASSERT_TRUE(eventually([&] { return !both(peer::PeerState::kReachable); }));
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["p"] = "paris"; });
  nantes_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["n"] = "nantes"; });
  link_->heal();
  ASSERT_TRUE(eventually([&] {
    return paris_site_->has(kApp, "n") && nantes_site_->has(kApp, "p") &&
           paris_site_->data(kApp) == nantes_site_->data(kApp);
  })) << paris_site_->data(kApp)
      << " vs " << nantes_site_->data(kApp);

  // Restarted, it resumes the group from its store (it never shared it itself).
  nantes_site_->restart();
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["after"] = "restart"; });
  ASSERT_TRUE(eventually([&] { return nantes_site_->has(kApp, "after"); }));
  ASSERT_TRUE(eventually([&] {
    const auto s = paris_site_->service().status();
    return !s.empty() && s[0].outbox == 0;
  }));
}

TEST_F(Sharing, AnInvitedSiteJoinsAndLeavesWhenTheGroupDropsIt) {
  ASSERT_TRUE(eventually([&] { return nantes_site_->in_group(kGroup.id); }));
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["color"] = "red"; });
  ASSERT_TRUE(eventually([&] { return nantes_site_->has(kApp, "color"); }));

  paris_site_->service().unshare(kGroup.id, {"nantes"}, /*delete_copies=*/false);
  ASSERT_TRUE(eventually([&] { return !nantes_site_->in_group(kGroup.id); }));
  EXPECT_TRUE(nantes_site_->has(kApp, "color"));  // its copy stays
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["later"] = "x"; });
  ASSERT_TRUE(eventually([&] {  // a status published after that edit (its second change)
    const auto s = paris_site_->service().status();
    return !s.empty() && s[0].last_seq == 2;
  }));
  const auto alone = paris_site_->service().status();
  EXPECT_EQ(alone[0].members, std::vector<std::string>{"paris"});
  EXPECT_EQ(alone[0].outbox, 0U);  // nobody left to acknowledge it
  EXPECT_FALSE(nantes_site_->has(kApp, "later"));
  auto stored = nantes_site_->store().groups();  // a restart would not resume it
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->empty());
}

TEST_F(Sharing, ASiteRemovedWithItsCopiesDeletedDeletesThem) {
  ASSERT_TRUE(eventually([&] { return nantes_site_->in_group(kGroup.id); }));
  paris_site_->edit(kApp, [](json::object& o) { o["data"].as_object()["color"] = "red"; });
  ASSERT_TRUE(eventually([&] { return nantes_site_->has(kApp, "color"); }));

  paris_site_->service().unshare(kGroup.id, {"nantes"}, /*delete_copies=*/true);
  ASSERT_TRUE(eventually([&] { return !nantes_site_->in_group(kGroup.id); }));
  ASSERT_TRUE(eventually([&] { return nantes_site_->data(kApp).empty(); }));
  EXPECT_TRUE(paris_site_->has(kApp, "color"));  // the site that stays keeps its objects
  auto stored = nantes_site_->store().groups();
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->empty());
}

}  // namespace
}  // namespace archipel::sharing
