// The Sites API without HTTP: list, get and watch of Site objects over a fake peer channel.

#include "archipel/proxy/sites.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace archipel::proxy {
namespace {

using boost::json::object;
using boost::json::parse;
using peer::PeerState;
using peer::PeerStatus;

class Sites : public ::testing::Test {
 protected:
  SiteDirectory::Picture picture_;
  std::chrono::system_clock::time_point now_ =
      std::chrono::system_clock::from_time_t(1'800'000'000);
  SiteDirectory dir_{"paris",
                     "127.0.0.1:7101",
                     {{"nantes", "127.0.0.1:7201", "a2V5"}, {"rennes", "127.0.0.1:7301", "a2V5"}},
                     [this] { return picture_; },
                     [this] { return now_; }};

  void set(const std::string& peer, PeerState state, bool connected) {
    for (PeerStatus& s : picture_.peers) {
      if (s.name == peer) {
        s.state = state;
        s.connected = connected;
        return;
      }
    }
    PeerStatus s;
    s.name = peer;
    s.state = state;
    s.connected = connected;
    picture_.peers.push_back(s);
  }

  object item(const std::string& name) {
    const object list = parse(dir_.list(false)).as_object();
    for (const auto& i : list.at("items").as_array()) {
      if (i.at("metadata").at("name").as_string() == name) {
        return i.as_object();
      }
    }
    return {};
  }

  static std::string state(const object& site) {
    return std::string(site.at("status").at("state").as_string());
  }
};

TEST_F(Sites, ListShowsEverySiteWithItsStateSortedByName) {
  set("nantes", PeerState::kReachable, true);
  dir_.refresh();
  const object list = parse(dir_.list(false)).as_object();
  EXPECT_EQ(list.at("kind"), "SiteList");
  EXPECT_EQ(list.at("apiVersion"), "archipel.io/v1");
  const auto& items = list.at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].at("metadata").at("name"), "nantes");
  EXPECT_EQ(items[1].at("metadata").at("name"), "paris");
  EXPECT_EQ(state(items[0].as_object()), "Reachable");
  EXPECT_EQ(state(items[1].as_object()), "Local");
  EXPECT_EQ(state(items[2].as_object()), "Unknown");  // not reported by the peer channel
  EXPECT_EQ(items[0].at("spec").at("address"), "127.0.0.1:7201");
}

TEST_F(Sites, TheLocalSiteIsIsolatedWhenThePeerChannelSaysSo) {
  set("nantes", PeerState::kDown, false);
  set("rennes", PeerState::kDown, false);
  picture_.isolated = true;
  dir_.refresh();
  EXPECT_EQ(state(item("paris")), "Isolated");
}

TEST_F(Sites, GetOfAnUnknownSiteIsNotFound) {
  auto s = dir_.get("lyon", false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, 404);
  EXPECT_EQ(s.error().reason, "NotFound");
  auto ok = dir_.get("nantes", false);
  ASSERT_TRUE(ok);
  EXPECT_EQ(parse(*ok).at("kind"), "Site");
}

TEST_F(Sites, AStateChangeIsAModifiedEventWithANewResourceVersion) {
  std::vector<std::string> events;
  auto sub = dir_.watch(std::nullopt, false, [&](const std::string& e) { events.push_back(e); });
  ASSERT_TRUE(sub);
  ASSERT_EQ(events.size(), 3u);  // the current sites, as ADDED
  EXPECT_EQ(parse(events[0]).at("type"), "ADDED");
  const std::uint64_t before = dir_.resource_version();
  set("nantes", PeerState::kReachable, true);
  dir_.refresh();
  ASSERT_EQ(events.size(), 4u);
  const object ev = parse(events[3]).as_object();
  EXPECT_EQ(ev.at("type"), "MODIFIED");
  EXPECT_EQ(ev.at("object").at("metadata").at("name"), "nantes");
  EXPECT_EQ(state(ev.at("object").as_object()), "Reachable");
  EXPECT_EQ(ev.at("object").at("metadata").at("resourceVersion").as_string(),
            std::to_string(before + 1));
  dir_.refresh();  // nothing changed: no event
  EXPECT_EQ(events.size(), 4u);
}

TEST_F(Sites, PhiAndRttAloneMakeNoEvents) {
  set("nantes", PeerState::kReachable, true);
  dir_.refresh();
  std::vector<std::string> events;
  auto sub = dir_.watch(dir_.resource_version(), false,
                        [&](const std::string& e) { events.push_back(e); });
  picture_.peers[0].phi = 1.5;
  picture_.peers[0].rtt = std::chrono::microseconds(300);
  dir_.refresh();
  EXPECT_TRUE(events.empty());
  const object site = item("nantes");
  EXPECT_DOUBLE_EQ(site.at("status").at("phi").to_number<double>(), 1.5);
  EXPECT_DOUBLE_EQ(site.at("status").at("rttMillis").to_number<double>(), 0.3);
}

TEST_F(Sites, AWatchResumesAfterAResourceVersion) {
  const std::uint64_t start = dir_.resource_version();
  set("nantes", PeerState::kReachable, true);
  dir_.refresh();
  set("rennes", PeerState::kReachable, true);
  dir_.refresh();
  std::vector<std::string> events;
  auto sub = dir_.watch(start + 1, false, [&](const std::string& e) { events.push_back(e); });
  ASSERT_TRUE(sub);
  ASSERT_EQ(events.size(), 1u);  // only the change after start + 1
  EXPECT_EQ(parse(events[0]).at("object").at("metadata").at("name"), "rennes");
}

TEST_F(Sites, AResourceVersionFromTheFutureIsABadRequest) {
  auto sub = dir_.watch(dir_.resource_version() + 10, false, [](const std::string&) {});
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, 400);
}

TEST_F(Sites, ATooOldResourceVersionIsExpired) {
  for (int i = 0; i < 1100; ++i) {  // more changes than the history keeps
    set("nantes", i % 2 == 0 ? PeerState::kReachable : PeerState::kSuspected, true);
    dir_.refresh();
  }
  auto sub = dir_.watch(2, false, [](const std::string&) {});
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, 410);
  EXPECT_EQ(sub.error().reason, "Expired");
}

TEST_F(Sites, AnEndedSubscriptionReceivesNothing) {
  int events = 0;
  {
    auto sub = dir_.watch(dir_.resource_version(), false, [&](const std::string&) { ++events; });
    ASSERT_TRUE(sub);
  }
  set("nantes", PeerState::kReachable, true);
  dir_.refresh();
  EXPECT_EQ(events, 0);
}

TEST_F(Sites, TablesHaveTheColumnsKubectlPrints) {
  set("nantes", PeerState::kReachable, true);
  picture_.peers[0].rtt = std::chrono::microseconds(420);
  dir_.refresh();
  const object t = parse(dir_.list(true)).as_object();
  EXPECT_EQ(t.at("kind"), "Table");
  std::vector<std::string> names;
  for (const auto& c : t.at("columnDefinitions").as_array()) {
    names.emplace_back(c.at("name").as_string());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Name", "State", "Connected", "RTT", "Phi", "Address",
                                             "Since"}));
  const auto& cells = t.at("rows").as_array()[0].at("cells").as_array();
  EXPECT_EQ(cells[0], "nantes");
  EXPECT_EQ(cells[1], "Reachable");
  EXPECT_EQ(cells[3], "0.42ms");
}

}  // namespace
}  // namespace archipel::proxy
