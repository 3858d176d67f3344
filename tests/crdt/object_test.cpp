// The object CRDT on the edits sites make to ConfigMaps and Deployments: what is replicated,
// how concurrent edits merge (maps, keyed lists, registers with conflicts), what a delete
// concurrent with an update leaves (nothing), and convergence under random delivery.

#include "archipel/crdt/object.hpp"

#include "archipel/sharing/schema.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace archipel::crdt {
namespace {

namespace json = boost::json;

// The Kubernetes merge-key table, as the sharing layer gives it to the CRDT.
Schema schema_of(std::string_view kind) {
  return [kind](std::string_view path) { return sharing::kube_list_shape(kind, path); };
}

json::object parse(std::string_view text) {
  return json::parse(text).as_object();
}

const std::vector<std::string> kSites = {"nantes", "paris", "rennes"};

// A site: its CRDT state and what its Kubernetes shows (the last materialised object).
struct Site {
  std::string name;
  Object state{kSites};
  std::uint64_t wall = 1000;

  Object write(const json::object& next, std::string_view kind = "Deployment") {
    std::optional<json::object> previous = state.materialize();
    return state.update(previous ? &*previous : nullptr, next, name, Hlc::from(++wall, 0),
                        schema_of(kind));
  }
  json::object shown() const { return state.materialize().value(); }
};

json::array& containers(json::object& deployment) {
  return deployment["spec"]
      .as_object()["template"]
      .as_object()["spec"]
      .as_object()["containers"]
      .as_array();
}

// Two sites write concurrently (each from what it showed), then receive each other's delta.
void concurrently(Site& one, const json::object& next_one, Site& other,
                  const json::object& next_other, std::string_view kind = "Deployment") {
  const Object from_one = one.write(next_one, kind);
  const Object from_other = other.write(next_other, kind);
  one.state.join(from_other);
  other.state.join(from_one);
}

const char* const kConfigMap = R"({
  "apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "app", "namespace": "team-a", "uid": "u-1", "resourceVersion": "7",
               "creationTimestamp": "2026-11-24T10:00:00Z", "labels": {"tier": "web"},
               "managedFields": [{"manager": "kubectl"}]},
  "data": {"color": "red", "size": "m"}
})";

const char* const kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "team-a", "generation": 3},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
           "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [
                                   {"name": "web", "image": "nginx:1.25",
                                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                    "env": [{"name": "A", "value": "1"}]},
                                   {"name": "sidecar", "image": "envoy:1"}],
                                 "volumes": [{"name": "scratch", "emptyDir": {}}]}}},
  "status": {"replicas": 2, "readyReplicas": 2}
})";

TEST(Object, ReplicatesIntentOnly) {
  Site paris{"paris"};
  paris.write(parse(kDeployment));
  const json::object shown = paris.shown();
  EXPECT_FALSE(shown.contains("status"));
  EXPECT_FALSE(shown.at("metadata").as_object().contains("generation"));
  EXPECT_EQ(shown.at("spec"), parse(kDeployment).at("spec"));

  Site nantes{"nantes"};
  nantes.write(parse(kConfigMap), "ConfigMap");
  EXPECT_EQ(nantes.shown(), parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "app", "namespace": "team-a", "labels": {"tier": "web"}},
      "data": {"color": "red", "size": "m"}})"));
}

TEST(Object, EmptyObjectsAndListsStay) {
  Site paris{"paris"};
  paris.write(parse(kDeployment));
  EXPECT_EQ(paris.shown().at("spec").at("template").at("spec").at("volumes"),
            json::parse(R"([{"name": "scratch", "emptyDir": {}}])"));
}

TEST(Object, ConcurrentEditsOfDifferentKeysBothStay) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kConfigMap)));
  json::object a = paris.shown(), b = nantes.shown();
  a["data"].as_object()["color"] = "blue";
  b["data"].as_object()["shape"] = "round";
  b["data"].as_object().erase("size");
  concurrently(paris, a, nantes, b);
  EXPECT_EQ(paris.shown(), nantes.shown());
  EXPECT_EQ(paris.shown().at("data"), json::parse(R"({"color": "blue", "shape": "round"})"));
}

TEST(Object, ConcurrentWritesOfOneFieldShowOneWinnerAndTheConflict) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kConfigMap), "ConfigMap"));
  json::object a = paris.shown(), b = nantes.shown();
  a["data"].as_object()["color"] = "blue";
  b["data"].as_object()["color"] = "green";
  paris.wall = nantes.wall = 2000;  // same millisecond: the greater site name wins
  concurrently(paris, a, nantes, b, "ConfigMap");
  ASSERT_EQ(paris.shown(), nantes.shown());
  const json::object shown = paris.shown();
  EXPECT_EQ(shown.at("data").at("color"), "blue");
  const json::value conflicts =
      json::parse(shown.at("metadata").at("annotations").at(kConflictsAnnotation).as_string());
  EXPECT_EQ(conflicts, json::parse(R"({"data.color": [{"site": "nantes", "value": "green"}]})"));

  // A later write that saw both settles it; the annotation goes away, and is never replicated.
  json::object settled = shown;
  settled["data"].as_object()["color"] = "green";
  nantes.state.join(paris.write(settled, "ConfigMap"));
  EXPECT_EQ(nantes.shown().at("data").at("color"), "green");
  EXPECT_FALSE(nantes.shown().at("metadata").as_object().contains("annotations"));
}

TEST(Object, LaterTimestampWinsWhateverTheSite) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kConfigMap), "ConfigMap"));
  json::object a = paris.shown(), b = nantes.shown();
  a["data"].as_object()["color"] = "blue";
  b["data"].as_object()["color"] = "green";
  nantes.wall = paris.wall + 5;
  Object from_paris = paris.write(a, "ConfigMap");
  Object from_nantes = nantes.write(b, "ConfigMap");
  paris.state.join(from_nantes);
  EXPECT_EQ(paris.shown().at("data").at("color"), "green");
}

TEST(Object, ContainersMergeByName) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kDeployment)));
  json::object a = paris.shown(), b = nantes.shown();
  containers(a)[0].as_object()["image"] = "nginx:1.27";  // paris upgrades web
  containers(b).push_back(json::parse(R"({"name": "log", "image": "fluentbit:3"})"));
  containers(b)[0].as_object()["env"].as_array().push_back(
      json::parse(R"({"name": "B", "value": "2"})"));  // nantes adds a container and a variable
  concurrently(paris, a, nantes, b);
  ASSERT_EQ(paris.shown(), nantes.shown());
  json::object shown = paris.shown();
  EXPECT_EQ(json::value(containers(shown)), json::parse(R"([
      {"name": "web", "image": "nginx:1.27",
       "ports": [{"containerPort": 80, "protocol": "TCP"}],
       "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
      {"name": "sidecar", "image": "envoy:1"},
      {"name": "log", "image": "fluentbit:3"}])"));
}

TEST(Object, RemovedContainerStaysRemovedWhenEditedConcurrently) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kDeployment)));
  json::object a = paris.shown(), b = nantes.shown();
  containers(a).erase(containers(a).begin() + 1);     // paris removes the sidecar
  containers(b)[1].as_object()["image"] = "envoy:2";  // nantes upgrades it meanwhile
  concurrently(paris, a, nantes, b);
  ASSERT_EQ(paris.shown(), nantes.shown());
  json::object shown = paris.shown();
  ASSERT_EQ(containers(shown).size(), 1U);  // no half sidecar holding only its new image
  EXPECT_EQ(containers(shown)[0].at("name"), "web");

  // Added again later: a new element, none of the old values.
  containers(shown).push_back(json::parse(R"({"name": "sidecar", "image": "envoy:3"})"));
  nantes.state.join(paris.write(shown));
  json::object again = nantes.shown();
  EXPECT_EQ(json::value(containers(again)[1]),
            json::parse(R"({"name": "sidecar", "image": "envoy:3"})"));
}

TEST(Object, DeleteConcurrentWithUpdateWinsAndNothingComesBack) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kConfigMap), "ConfigMap"));
  json::object b = nantes.shown();
  b["data"].as_object()["color"] = "blue";
  b["data"].as_object()["new"] = "x";
  Object deleted = paris.state.erase("paris");
  Object updated = nantes.write(b, "ConfigMap");
  paris.state.join(updated);
  nantes.state.join(deleted);
  EXPECT_FALSE(paris.state.materialize().has_value());
  EXPECT_FALSE(nantes.state.materialize().has_value());
  EXPECT_EQ(paris.state, nantes.state);

  // Re-created: only what the new create wrote.
  nantes.state.join(paris.write(parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "app", "namespace": "team-a"}, "data": {"size": "l"}})"),
                                "ConfigMap"));
  EXPECT_EQ(nantes.shown().at("data"), json::parse(R"({"size": "l"})"));
}

TEST(Object, UpdateArrivingAfterTheDeleteIsDropped) {
  Site paris{"paris"}, nantes{"nantes"}, rennes{"rennes"};
  const Object created = paris.write(parse(kConfigMap), "ConfigMap");
  nantes.state.join(created);
  json::object b = nantes.shown();
  b["data"].as_object()["color"] = "blue";
  const Object updated = nantes.write(b, "ConfigMap");
  const Object deleted = paris.state.erase("paris");
  // rennes receives the delete, then the create, then the concurrent update.
  rennes.state.join(deleted);
  rennes.state.join(created);
  rennes.state.join(updated);
  EXPECT_FALSE(rennes.state.materialize().has_value());
  EXPECT_TRUE(rennes.state.root().empty());
}

TEST(Object, SiteTablesInDifferentOrdersJoin) {
  Object a({"paris", "nantes"});
  Object b({"nantes", "paris"});
  const Schema schema = schema_of("ConfigMap");
  const Object delta = a.update(nullptr, parse(kConfigMap), "paris", Hlc::from(1, 0), schema);
  b.join(delta);
  EXPECT_EQ(a.materialize(), b.materialize());
  const json::object shown = *b.materialize();
  json::object next = shown;
  next["data"].as_object()["color"] = "blue";
  a.join(b.update(&shown, next, "nantes", Hlc::from(2, 0), schema));
  EXPECT_EQ(a.materialize(), b.materialize());
  EXPECT_EQ(a.materialize()->at("data").at("color"), "blue");
}

TEST(Object, ConflictsReadTheSameWhateverTheSiteTable) {
  const Schema schema = schema_of("ConfigMap");
  Object a({"paris", "nantes", "rennes"});
  Object b({"rennes", "nantes", "paris"});
  b.join(a.update(nullptr, parse(kConfigMap), "paris", Hlc::from(1, 0), schema));
  a.join(b);
  std::vector<Object> writes;
  for (std::string_view site : {"rennes", "nantes", "paris"}) {
    Object replica = site == "paris" ? a : b;
    const json::object shown = *replica.materialize();
    json::object next = shown;
    next["data"].as_object()["color"] = std::string(site);
    writes.push_back(replica.update(&shown, next, site, Hlc::from(2, 0), schema));
  }
  for (const Object& w : writes) {
    a.join(w);
    b.join(w);
  }
  ASSERT_EQ(a.materialize(), b.materialize());
  EXPECT_EQ(
      json::parse(
          a.materialize()->at("metadata").at("annotations").at(kConflictsAnnotation).as_string()),
      json::parse(R"({"data.color": [{"site": "nantes", "value": "nantes"},
                                           {"site": "paris", "value": "paris"}]})"));
}

TEST(Object, ForgettableOnlyOnceDeletedAndSeenEverywhere) {
  Site paris{"paris"}, nantes{"nantes"};
  nantes.state.join(paris.write(parse(kConfigMap), "ConfigMap"));
  const std::vector<DotContext> before = {paris.state.context(), nantes.state.context()};
  EXPECT_FALSE(paris.state.forgettable(before));  // it exists
  nantes.state.join(paris.state.erase("paris"));
  const std::vector<DotContext> after = {paris.state.context(), nantes.state.context()};
  EXPECT_TRUE(paris.state.forgettable(after));

  Object late({"nantes", "paris", "rennes"});  // a replica that has not seen everything
  const std::vector<DotContext> with_late = {paris.state.context(), late.context()};
  EXPECT_FALSE(paris.state.forgettable(with_late));
}

}  // namespace
}  // namespace archipel::crdt
