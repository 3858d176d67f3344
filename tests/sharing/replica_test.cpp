// The replication protocol of a group, with its sites wired by an in-memory network (FIFO links
// that can be cut), each with its "disk" (the records it persisted) and its "Kubernetes" (a map
// the bridge writes and that reports back what it holds). Partitions, concurrent edits, site
// crashes (the replica is rebuilt from its disk alone) and a site outside the group.

#include "archipel/sharing/replica.hpp"

#include "archipel/sharing/schema.hpp"
#include "json_canonical.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <deque>
#include <random>
#include <set>

namespace archipel::sharing {
namespace {

namespace json = boost::json;

json::object config_map(std::string_view name, json::object data) {
  return json::object{{"apiVersion", "v1"},
                      {"kind", "ConfigMap"},
                      {"metadata", json::object{{"name", name}, {"namespace", "team-a"}}},
                      {"data", std::move(data)}};
}

using testing::canonical;

class Network {
 public:
  explicit Network(GroupSpec spec, ReplicaOptions options = {}) : spec_(spec), options_(options) {
    for (const std::string& s : spec_.members) {
      replicas_[s] = std::make_unique<GroupReplica>(s, spec_, kube_list_shape, options_);
    }
    for (const std::string& a : spec_.members) {
      for (const std::string& b : spec_.members) {
        if (a != b) {
          replicas_[a]->connected(b);
        }
      }
      settle(a);
    }
  }

  // A user (or a controller) changes an object in `site`'s Kubernetes.
  void edit(const std::string& site, const ObjectKey& key,
            const std::function<std::optional<json::object>(std::optional<json::object>)>& f) {
    std::optional<json::object> now =
        f(kube_[site].count(key) ? std::optional(kube_[site][key]) : std::nullopt);
    if (now) {
      (*now)["status"] = json::object{{"observedBy", site}};  // never replicated
      kube_[site][key] = *now;
    } else {
      kube_[site].erase(key);
    }
    replicas_[site]->local_change(key, now, crdt::Hlc::from(++wall_, 0));
    settle(site);
    replicas_[site]->flush();
    settle(site);
  }

  void cut(const std::string& a, const std::string& b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
    links_[{a, b}].clear();
    links_[{b, a}].clear();
    if (replicas_.count(a) && replicas_.count(b)) {
      replicas_[a]->disconnected(b);
      replicas_[b]->disconnected(a);
    }
  }

  void heal(const std::string& a, const std::string& b) {
    cut_.erase({a, b});
    cut_.erase({b, a});
    replicas_[a]->connected(b);
    replicas_[b]->connected(a);
    settle(a);
    settle(b);
  }

  // `a` sees its connection to `b` drop and come back; `b` noticed nothing.
  void reconnect_one_side(const std::string& a, const std::string& b) {
    links_[{a, b}].clear();
    links_[{b, a}].clear();
    replicas_[a]->disconnected(b);
    replicas_[a]->connected(b);
    settle(a);
  }

  // `by` adds `site` to the group: a new replica, nothing on its disk, which knows only itself
  // until the membership reaches it (an invitation).
  void add_member(const std::string& site, const std::string& by) {
    std::vector<std::string> members = replicas_[by]->spec().members;
    members.push_back(site);
    replicas_[site] = std::make_unique<GroupReplica>(site, GroupSpec{spec_.id, {site}},
                                                     kube_list_shape, options_);
    replicas_[by]->set_members(members);
    settle(by);
    settle(site);
  }

  // `by` removes `site` from the group: it is told, and drops its replica once it knows.
  void remove_member(const std::string& site, const std::string& by) {
    std::vector<std::string> members = replicas_[by]->spec().members;
    std::erase(members, site);
    replicas_[by]->set_members(members);
    settle(by);
  }

  bool has_replica(const std::string& site) const { return replicas_.count(site) != 0; }

  // The site's Kubernetes stops applying writes (they are kept in flight, in order).
  void hold_writes(const std::string& site) { holding_.insert(site); }
  std::size_t writes_in_flight(const std::string& site) { return held_[site].size(); }
  // Its Kubernetes applies the oldest write in flight, and its watch reports it.
  void apply_one_write(const std::string& site) {
    LocalWrite w = std::move(held_[site].front());
    held_[site].pop_front();
    if (w.object) {
      kube_[site][w.key] = *w.object;
    } else {
      kube_[site].erase(w.key);
    }
    replicas_[site]->local_change(w.key, w.object, crdt::Hlc::from(++wall_, 0));
    settle(site);
  }

  // kill -9: what is not on the site's disk is lost, its connections drop; it restarts from
  // its disk and reconnects.
  void crash(const std::string& site) {
    for (const std::string& other : members()) {
      if (other != site) {
        links_[{site, other}].clear();
        links_[{other, site}].clear();
        replicas_[other]->disconnected(site);
      }
    }
    std::vector<Record> records;
    for (const auto& [key, value] : disk_[site]) {
      records.push_back({key, value});
    }
    auto recovered = GroupReplica::recover(site, spec_, kube_list_shape, records, options_);
    ASSERT_TRUE(recovered.has_value()) << recovered.error().message;
    replicas_[site] = std::make_unique<GroupReplica>(std::move(*recovered));
    for (const std::string& other : members()) {
      if (other != site && !cut_.count({site, other})) {
        replicas_[site]->connected(other);
        replicas_[other]->connected(site);
        settle(other);
      }
    }
    settle(site);
  }

  // Delivers one message in flight on a random link (FIFO on each link).
  bool deliver_one(std::mt19937& rng) {
    std::vector<std::pair<std::string, std::string>> busy;
    for (const auto& [link, queue] : links_) {
      if (!queue.empty()) {
        busy.push_back(link);
      }
    }
    if (busy.empty()) {
      return false;
    }
    const auto link = busy[std::uniform_int_distribution<std::size_t>(0, busy.size() - 1)(rng)];
    const std::string bytes = links_[link].front();
    links_[link].pop_front();
    if (!replicas_.count(link.second)) {
      return true;  // it left the group
    }
    GroupReplica& to = *replicas_[link.second];
    const auto& known = to.spec().members;
    const bool from_member = std::find(known.begin(), known.end(), link.first) != known.end();
    auto r = to.receive(link.first, std::as_bytes(std::span(bytes.data(), bytes.size())));
    // Only a site that is not (or no longer) a member may be refused.
    EXPECT_TRUE(r.has_value() || !from_member) << r.error().message;
    settle(link.second);
    return true;
  }

  // Until nothing is in flight and nobody has anything to send.
  void quiesce(std::mt19937& rng) {
    for (int round = 0; round < 1000; ++round) {
      for (const std::string& s : members()) {
        replicas_[s]->flush();
        settle(s);
      }
      if (!deliver_one(rng)) {
        return;
      }
      while (deliver_one(rng)) {
      }
    }
    ADD_FAILURE() << "the group never went quiet";
  }

  GroupReplica& replica(const std::string& site) { return *replicas_.at(site); }
  std::map<ObjectKey, json::object>& kube(const std::string& site) { return kube_[site]; }
  std::size_t messages_to(const std::string& site) const {
    auto it = sent_to_.find(site);
    return it == sent_to_.end() ? 0 : it->second;
  }
  std::size_t bytes_to(const std::string& site) const {
    auto it = bytes_to_.find(site);
    return it == bytes_to_.end() ? 0 : it->second;
  }

  // What a site's Kubernetes holds, as the group replicates it (no status).
  std::string replicated(const std::string& site) {
    return json::serialize(canonical(holds(site)));
  }
  json::object holds(const std::string& site) {
    json::object out;
    for (auto [key, object] : kube_[site]) {
      object.erase("status");
      out[key] = object;
    }
    return out;
  }

 private:
  // Persists what the replica asks to (before its messages leave), sends its messages, and
  // plays the bridge: writes what it asks into the site's Kubernetes, which reports back.
  // The sites that have a replica.
  std::vector<std::string> members() const {
    std::vector<std::string> out;
    for (const auto& [name, r] : replicas_) {
      out.push_back(name);
    }
    return out;
  }

  void settle(const std::string& site) {
    for (int i = 0; i < 100; ++i) {
      if (!replicas_.count(site)) {
        return;
      }
      GroupReplica& r = *replicas_[site];
      if (r.left()) {
        replicas_.erase(site);  // as the service drops it
        return;
      }
      // As the service does: a connection to each member it can reach (an added member).
      for (const PeerStatus& p : r.status().peers) {
        if (!p.connected && replicas_.count(p.site) && !cut_.count({site, p.site})) {
          r.connected(p.site);
        }
      }
      for (Record& rec : r.take_records()) {
        if (rec.value) {
          disk_[site][rec.key] = std::move(*rec.value);
        } else {
          disk_[site].erase(rec.key);
        }
      }
      for (PeerMessage& m : r.take_messages()) {
        ++sent_to_[m.peer];
        bytes_to_[m.peer] += m.bytes.size();
        if (!cut_.count({site, m.peer})) {
          links_[{site, m.peer}].push_back(std::move(m.bytes));
        }
      }
      std::vector<LocalWrite> writes = r.take_local_writes();
      if (writes.empty()) {
        return;
      }
      if (holding_.contains(site)) {
        for (LocalWrite& w : writes) {
          held_[site].push_back(std::move(w));
        }
        return;
      }
      for (LocalWrite& w : writes) {
        if (w.object) {
          (*w.object)["status"] = json::object{{"observedBy", site}};
          kube_[site][w.key] = *w.object;
        } else {
          kube_[site].erase(w.key);
        }
        r.local_change(w.key, w.object, crdt::Hlc::from(++wall_, 0));  // the watch event
      }
    }
    ADD_FAILURE() << site << ": the bridge never settled";
  }

  std::set<std::string> holding_;
  std::map<std::string, std::deque<LocalWrite>> held_;
  GroupSpec spec_;
  ReplicaOptions options_;
  std::map<std::string, std::unique_ptr<GroupReplica>> replicas_;
  std::map<std::string, std::map<std::string, std::string>> disk_;
  std::map<std::pair<std::string, std::string>, std::deque<std::string>> links_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<std::string, std::map<ObjectKey, json::object>> kube_;
  std::map<std::string, std::size_t> sent_to_;
  std::map<std::string, std::size_t> bytes_to_;
  std::uint64_t wall_ = 1'700'000'000'000;
};

const ObjectKey kApp = "/configmaps/team-a/app";
const ObjectKey kOld = "/configmaps/team-a/old";

TEST(GroupReplica, PartitionedEditsConvergeWithTheConflictShownAndOutsidersGetNothing) {
  std::mt19937 rng(1);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
  net.edit("paris", kApp, [](auto) { return config_map("app", {{"color", "red"}}); });
  net.edit("paris", kOld, [](auto) { return config_map("old", {{"k", "v"}}); });
  net.quiesce(rng);
  ASSERT_EQ(net.replicated("nantes"), net.replicated("paris"));

  net.cut("paris", "nantes");
  net.edit("paris", kApp, [](auto cm) {
    cm->at("data").as_object()["size"] = "m";
    cm->at("data").as_object()["color"] = "blue";
    return cm;
  });
  net.edit("nantes", kApp, [](auto cm) {
    cm->at("data").as_object()["shape"] = "round";
    cm->at("data").as_object()["color"] = "green";
    return cm;
  });
  net.edit("nantes", kOld, [](auto) { return std::nullopt; });
  net.quiesce(rng);
  EXPECT_NE(net.replicated("nantes"), net.replicated("paris"));  // cut: each on its own

  net.heal("paris", "nantes");
  net.quiesce(rng);
  const json::object paris = net.holds("paris");
  EXPECT_EQ(net.replicated("nantes"), net.replicated("paris"));
  ASSERT_TRUE(paris.contains(kApp));
  EXPECT_FALSE(paris.contains(kOld));
  const json::object& data = paris.at(kApp).at("data").as_object();
  EXPECT_EQ(data.at("size"), "m");
  EXPECT_EQ(data.at("shape"), "round");
  EXPECT_TRUE(paris.at(kApp)
                  .at("metadata")
                  .at("annotations")
                  .as_object()
                  .contains(crdt::kConflictsAnnotation));
  EXPECT_EQ(net.messages_to("rennes"), 0U);
  EXPECT_EQ(net.replica("paris").outbox_depth(), 0U);
  EXPECT_EQ(net.replica("nantes").outbox_depth(), 0U);
}

TEST(GroupReplica, TheEchoOfAWriteSupersededInFlightIsNotALocalChange) {
  std::mt19937 rng(3);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
  net.edit("paris", kApp, [](auto) { return config_map("app", {{"a", "1"}}); });
  net.quiesce(rng);
  ASSERT_TRUE(net.holds("nantes").contains(kApp));

  // nantes's Kubernetes lags: two merged versions are asked for before the first shows.
  net.hold_writes("nantes");
  net.edit("paris", kApp, [](auto cm) {
    cm->at("data").as_object()["b"] = "2";
    return cm;
  });
  net.quiesce(rng);
  net.edit("paris", kApp, [](auto cm) {
    cm->at("data").as_object().erase("a");
    return cm;
  });
  net.quiesce(rng);
  ASSERT_EQ(net.writes_in_flight("nantes"), 2U);
  net.apply_one_write("nantes");  // shows {a, b}: an echo, not nantes adding "a" back
  net.apply_one_write("nantes");
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("nantes"), net.replicated("paris"));
  EXPECT_FALSE(net.holds("paris").at(kApp).at("data").as_object().contains("a"));
  EXPECT_EQ(net.replica("nantes").status().last_seq, 0U);  // nantes made no change
}

TEST(GroupReplica, ASiteThatJoinsGetsEverythingAndOneThatLeavesHoldsNothingBack) {
  std::mt19937 rng(2);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
  net.edit("paris", kApp, [](auto) { return config_map("app", {{"color", "red"}}); });
  net.edit("nantes", kOld, [](auto) { return config_map("old", {{"k", "v"}}); });
  net.quiesce(rng);

  net.add_member("rennes", "paris");
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("rennes"), net.replicated("paris"));
  EXPECT_TRUE(net.holds("rennes").contains(kOld));
  EXPECT_EQ(net.replica("nantes").spec().members,
            (std::vector<std::string>{"nantes", "paris", "rennes"}));

  net.remove_member("nantes", "rennes");
  net.edit("paris", kApp, [](auto cm) {
    cm->at("data").as_object()["color"] = "blue";
    return cm;
  });
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("rennes"), net.replicated("paris"));
  EXPECT_FALSE(net.has_replica("nantes"));  // told, it left
  const GroupStatus status = net.replica("paris").status();
  EXPECT_EQ(status.outbox, 0U);  // nantes's silence holds nothing back
  ASSERT_EQ(status.peers.size(), 1U);
  EXPECT_EQ(status.peers[0].site, "rennes");
  EXPECT_EQ(status.peers[0].behind, 0U);
  const std::string bytes = "\x0a\x10namespace/team-a\x1a\x02\x08\x01";  // an Ack
  EXPECT_FALSE(
      net.replica("paris").receive("nantes", std::as_bytes(std::span(bytes.data(), bytes.size()))));
}

TEST(GroupReplica, ManyObjectsGoInPartsAndACutMidTransferResumes) {
  std::mt19937 rng(4);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}}, ReplicaOptions{4, 3});
  for (int i = 0; i < 40; ++i) {
    const std::string name = "cm" + std::to_string(i);
    net.edit(i % 2 == 0 ? "paris" : "nantes", "/configmaps/team-a/" + name, [&](auto) {
      return config_map(name, {{"i", std::to_string(i)}});
    });
  }
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("nantes"), net.replicated("paris"));

  // rennes joins: 40 full states, 3 per message; the link drops after a few of them.
  net.add_member("rennes", "nantes");
  for (int i = 0; i < 6; ++i) {
    net.deliver_one(rng);
  }
  net.cut("paris", "rennes");
  net.cut("nantes", "rennes");
  net.heal("paris", "rennes");
  net.heal("nantes", "rennes");
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("rennes"), net.replicated("paris"));
  EXPECT_EQ(net.holds("rennes").size(), 40U);
  for (const char* site : {"paris", "nantes", "rennes"}) {
    EXPECT_EQ(net.replica(site).outbox_depth(), 0U) << site;
  }
}

TEST(GroupReplica, AConnectionOnlyOneSideSawDropResumesBothWays) {
  std::mt19937 rng(5);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
  net.edit("paris", kApp, [](auto) { return config_map("app", {{"a", "1"}}); });
  net.quiesce(rng);
  net.reconnect_one_side("paris", "nantes");
  net.edit("paris", kApp, [](auto cm) {
    cm->at("data").as_object()["p"] = "paris";
    return cm;
  });
  net.edit("nantes", kApp, [](auto cm) {
    cm->at("data").as_object()["n"] = "nantes";
    return cm;
  });
  net.quiesce(rng);
  EXPECT_EQ(net.replicated("nantes"), net.replicated("paris"));
  EXPECT_TRUE(net.holds("nantes").at(kApp).at("data").as_object().contains("p"));
  EXPECT_EQ(net.replica("paris").outbox_depth(), 0U);
  EXPECT_EQ(net.replica("nantes").outbox_depth(), 0U);
}

// Both sides of a healed link send a Resume and answer the other's: what a site missed must
// still cross once, not once per Resume.
TEST(GroupReplica, AHealedLinkCarriesWhatTheOtherSideMissedOnce) {
  for (unsigned seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
    net.cut("paris", "nantes");
    constexpr int kObjects = 20;
    constexpr std::size_t kValue = 2000;  // bytes: the deltas dwarf the protocol's own
    for (int i = 0; i < kObjects; ++i) {
      const std::string name = "cm" + std::to_string(i);
      net.edit("paris", "/configmaps/team-a/" + name, [&](auto) {
        return config_map(name, {{"v", std::string(kValue, static_cast<char>('a' + i))}});
      });
    }
    const std::size_t before = net.bytes_to("nantes");
    net.heal("paris", "nantes");
    net.quiesce(rng);
    ASSERT_EQ(net.holds("nantes").size(), static_cast<std::size_t>(kObjects)) << seed;
    const std::size_t crossed = net.bytes_to("nantes") - before;
    EXPECT_GE(crossed, kObjects * kValue) << seed;
    EXPECT_LT(crossed, kObjects * kValue * 3 / 2) << seed;
  }
}

TEST(GroupReplica, StatusShowsLagWhileCutAndConflictsOnceMerged) {
  std::mt19937 rng(3);
  Network net(GroupSpec{"namespace/team-a", {"nantes", "paris"}});
  net.edit("paris", kApp, [](auto) { return config_map("app", {{"color", "red"}}); });
  net.quiesce(rng);
  net.cut("paris", "nantes");
  for (const char* color : {"blue", "green"}) {
    net.edit("paris", kApp, [&](auto cm) {
      cm->at("data").as_object()["color"] = color;
      return cm;
    });
  }
  net.edit("nantes", kApp, [](auto cm) {
    cm->at("data").as_object()["color"] = "black";
    return cm;
  });
  GroupStatus cut = net.replica("paris").status();
  EXPECT_EQ(cut.peers[0].behind, 2U);
  EXPECT_FALSE(cut.peers[0].connected);
  EXPECT_EQ(cut.outbox, 2U);
  EXPECT_TRUE(cut.conflicted.empty());

  net.heal("paris", "nantes");
  net.quiesce(rng);
  const GroupStatus healed = net.replica("paris").status();
  EXPECT_EQ(healed.peers[0].behind, 0U);
  EXPECT_EQ(healed.outbox, 0U);
  EXPECT_EQ(healed.conflicted, std::vector<std::string>{kApp});
}

TEST(GroupReplica, RefusesMessagesFromOutsidersAndMalformedBytes) {
  GroupReplica r("paris", GroupSpec{"namespace/team-a", {"nantes", "paris"}}, kube_list_shape);
  const std::string junk = "\x12\x05garbage";
  EXPECT_FALSE(r.receive("rennes", std::as_bytes(std::span(junk.data(), junk.size()))));
  EXPECT_FALSE(r.receive("nantes", std::as_bytes(std::span(junk.data(), junk.size()))));
  EXPECT_TRUE(r.take_local_writes().empty());
}

class Histories : public ::testing::TestWithParam<unsigned> {};

// Each site adds keys to one shared ConfigMap (a set), and edits others, through partitions
// and crashes; at the end every add made anywhere is present everywhere.
TEST_P(Histories, EveryAcknowledgedAddSurvivesPartitionsAndCrashes) {
  std::mt19937 rng(GetParam());
  const std::vector<std::string> sites = {"lyon", "nantes", "paris"};
  // Odd seeds: tiny messages, so that deltas and full states go in many parts.
  const ReplicaOptions options = GetParam() % 2 == 1 ? ReplicaOptions{3, 1} : ReplicaOptions{};
  Network net(GroupSpec{"namespace/team-a", sites}, options);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const ObjectKey set = "/configmaps/team-a/set";
  net.edit("paris", set, [](auto) { return config_map("set", {}); });
  net.quiesce(rng);
  std::set<std::string> added;
  for (int step = 0; step < 300; ++step) {
    const std::string& site = sites[static_cast<std::size_t>(pick(3))];
    const int action = pick(20);
    if (action < 10) {
      const std::string k = "k" + std::to_string(step);
      net.edit(site, set, [&](std::optional<json::object> cm) {
        if (!cm) {
          cm = config_map("set", {});
        }
        json::value& data = (*cm)["data"];
        if (!data.is_object()) {
          data = json::object();
        }
        data.as_object()[k] = site;
        return cm;
      });
      added.insert(k);
    } else if (action < 14) {
      const ObjectKey other = "/configmaps/team-a/o" + std::to_string(pick(3));
      net.edit(site, other, [&](std::optional<json::object> cm) -> std::optional<json::object> {
        if (cm && pick(4) == 0) {
          return std::nullopt;
        }
        json::object next = cm ? *cm : config_map("o", {});
        next["data"] = json::object{{"v", std::to_string(step)}};
        return next;
      });
    } else if (action < 16) {
      const std::string& other = sites[static_cast<std::size_t>(pick(3))];
      if (other != site) {
        net.cut(site, other);
      }
    } else if (action < 18) {
      const std::string& other = sites[static_cast<std::size_t>(pick(3))];
      if (other != site) {
        net.heal(site, other);
      }
    } else if (action == 18) {
      net.crash(site);
    } else {
      for (int i = pick(10); i >= 0 && net.deliver_one(rng); --i) {
      }
    }
  }
  for (const std::string& a : sites) {
    for (const std::string& b : sites) {
      if (a < b) {
        net.heal(a, b);
      }
    }
  }
  net.quiesce(rng);
  const json::object reference = net.holds("paris");
  for (const std::string& s : sites) {
    EXPECT_EQ(net.replicated(s), net.replicated("paris")) << s;
    EXPECT_EQ(net.replica(s).outbox_depth(), 0U) << s;
  }
  ASSERT_TRUE(reference.contains(set));
  const json::object& data = reference.at(set).at("data").as_object();
  for (const std::string& k : added) {
    EXPECT_TRUE(data.contains(k)) << k << " was lost";
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, Histories, ::testing::Range(1U, 21U));

}  // namespace
}  // namespace archipel::sharing
