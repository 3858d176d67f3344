// The wire format of object deltas and states: every delta and state of random histories
// comes back equal from its bytes, alone or many in one message; malformed bytes are errors
// that say what is wrong.

#include "archipel/crdt/codec.hpp"

#include "crdt.pb.h"
#include "crdt/history.hpp"

#include <gtest/gtest.h>

namespace archipel::crdt {
namespace {

using namespace history;  // NOLINT(google-build-using-namespace)

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// `o` without the sites its dots do not name (what a receiver gets).
Object canonical(const Object& o) {
  return Object::assemble(o.sites(), o.context(), o.root(), o.complete());
}

Object round_trip(const Object& o) {
  const std::string bytes = encode(o);
  auto decoded = decode(bytes_of(bytes));
  EXPECT_TRUE(decoded.has_value()) << decoded.error().message;
  return decoded.has_value() ? *decoded : Object();
}

class CodecHistories : public ::testing::TestWithParam<unsigned> {};

TEST_P(CodecHistories, DeltasAndStatesComeBackEqual) {
  const History h = run_history(GetParam(), 4, 200);
  for (const Object& delta : h.deltas) {
    ASSERT_EQ(round_trip(delta), canonical(delta)) << delta;
  }
  for (const Object& state : h.halfway) {
    ASSERT_EQ(round_trip(state), canonical(state)) << state;
  }
  ASSERT_EQ(round_trip(h.replicas[0].state), canonical(h.replicas[0].state));
}

TEST_P(CodecHistories, ManyObjectsInOneMessageComeBackEqualAndNamed) {
  const History a = run_history(GetParam(), 3, 120);
  const History b = run_history(GetParam() + 100, 5, 120);
  std::vector<Outgoing> out;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < 20; ++i) {
    keys.push_back("team-a/app-" + std::to_string(i));
  }
  for (std::size_t i = 0; i < 10; ++i) {
    out.push_back({keys[i], a.deltas[i]});
    out.push_back({keys[10 + i], b.deltas[i]});
  }
  out.push_back({"team-a/whole", b.replicas[0].state});
  const std::string bytes = encode(out);
  auto decoded = decode_all(bytes_of(bytes));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  ASSERT_EQ(decoded->size(), out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ((*decoded)[i].key, out[i].key);
    EXPECT_EQ((*decoded)[i].object, canonical(out[i].object)) << out[i].object;
  }
  EXPECT_FALSE(decode(bytes_of(bytes)).has_value());  // not one object
}

INSTANTIATE_TEST_SUITE_P(Seeds, CodecHistories, ::testing::Range(1U, 11U));

// A valid message to break in each test below.
wire::Batch valid_message() {
  const History h = run_history(7, 3, 60);
  wire::Batch m;
  EXPECT_TRUE(m.ParseFromString(encode(h.replicas[0].state)));
  return m;
}

std::string decode_error(const wire::Batch& m) {
  const std::string bytes = m.SerializeAsString();
  auto decoded = decode(bytes_of(bytes));
  return decoded.has_value() ? "decoded" : decoded.error().message;
}

wire::Node& first_leaf_with_value(wire::Node& n) {
  if (n.value_size() > 0) {
    return n;
  }
  for (wire::Node& child : *n.mutable_children()) {
    if (wire::Node& leaf = first_leaf_with_value(child); leaf.value_size() > 0) {
      return leaf;
    }
  }
  return n;
}

TEST(Codec, RejectsBytesThatAreNotAMessage) {
  const std::string junk = "\xff\xff\xff\xff garbage";
  EXPECT_FALSE(decode(bytes_of(junk)).has_value());
}

TEST(Codec, RejectsARepeatedSite) {
  wire::Batch m = valid_message();
  m.add_sites(m.sites(0));
  EXPECT_EQ(decode_error(m), "crdt message: a site appears twice in the site table");
}

TEST(Codec, RejectsAReplicaOutsideTheSiteTable) {
  wire::Batch m = valid_message();
  first_leaf_with_value(*m.mutable_objects(0)->mutable_root()).mutable_value(0)->set_replica(9);
  EXPECT_NE(decode_error(m).find("outside the site table (at "), std::string::npos)
      << decode_error(m);
}

TEST(Codec, RejectsAValueThatIsNotJson) {
  wire::Batch m = valid_message();
  first_leaf_with_value(*m.mutable_objects(0)->mutable_root())
      .mutable_value(0)
      ->set_json("{not json");
  EXPECT_NE(decode_error(m).find("a value that is not JSON"), std::string::npos);
  m = valid_message();
  first_leaf_with_value(*m.mutable_objects(0)->mutable_root()).mutable_value(0)->set_text("a\"b");
  EXPECT_NE(decode_error(m).find("a character JSON must escape"), std::string::npos);
}

TEST(Codec, RejectsAValueMissingOrAMarkWithAValue) {
  wire::Batch m = valid_message();
  first_leaf_with_value(*m.mutable_objects(0)->mutable_root()).mutable_value(0)->clear_content();
  EXPECT_NE(decode_error(m).find("a value missing"), std::string::npos);
  m = valid_message();
  m.mutable_objects(0)->mutable_root()->mutable_marks(0)->set_text("x");
  EXPECT_NE(decode_error(m).find("a mark with a value"), std::string::npos);
}

TEST(Codec, SendsStringsWithoutTheirQuotesAndOtherJsonAsIs) {
  Object o({"paris"});
  const auto created = boost::json::parse(
      R"({"kind": "ConfigMap", "data": {"plain": "blue", "escaped": "a\"b", "n": 3}})");
  (void)o.update(nullptr, created.as_object(), "paris", Hlc::from(5, 0),
                 [](std::string_view) { return ListShape{}; });
  wire::Batch m;
  ASSERT_TRUE(m.ParseFromString(encode(o)));
  const wire::Node& root = m.objects(0).root();
  const wire::Node& data = root.children(0);  // keys sorted: data, kind
  ASSERT_EQ(m.strings(static_cast<int>(root.keys(0))), "data");
  EXPECT_EQ(data.children(0).value(0).json(), R"("a\"b")");  // escaped
  EXPECT_EQ(data.children(1).value(0).json(), "3");          // n
  EXPECT_EQ(data.children(2).value(0).text(), "blue");       // plain
  EXPECT_EQ(round_trip(o), o);
}

TEST(Codec, RejectsAnIncarnationIndexOutsideItsTable) {
  wire::Batch m = valid_message();
  first_leaf_with_value(*m.mutable_objects(0)->mutable_root()).mutable_value(0)->add_scope(1000);
  EXPECT_NE(decode_error(m).find("incarnation index outside the table"), std::string::npos);
}

TEST(Codec, RejectsKeysOutOfOrderOrMissingChildren) {
  wire::Batch m = valid_message();
  wire::Node* root = m.mutable_objects(0)->mutable_root();
  ASSERT_GE(root->keys_size(), 2);
  root->mutable_keys()->SwapElements(0, 1);
  EXPECT_NE(decode_error(m).find("repeated or out of order"), std::string::npos);
  m = valid_message();
  m.mutable_objects(0)->mutable_root()->add_keys(0);
  EXPECT_NE(decode_error(m).find("as many keys as children"), std::string::npos);
  m = valid_message();
  m.mutable_objects(0)->mutable_root()->set_keys(0, 9999);
  EXPECT_NE(decode_error(m).find("key index outside the string table"), std::string::npos);
}

TEST(Codec, RejectsNestingDeeperThanTheLimit) {
  wire::Batch m;
  m.add_sites("paris");
  m.add_strings("k");
  wire::Node* n = m.add_objects()->mutable_root();
  for (int depth = 0; depth < kMaxDepth + 2; ++depth) {
    n->add_keys(0);
    n = n->add_children();
  }
  EXPECT_NE(decode_error(m).find("nested deeper than"), std::string::npos) << decode_error(m);
}

TEST(Codec, TruncatedMessagesAreErrorsOrObjectsThatCanBeShown) {
  const Object state = run_history(3, 3, 40).replicas[0].state;
  const std::string bytes = encode(state);
  std::size_t errors = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = decode(bytes_of(bytes.substr(0, n)));
    if (decoded.has_value()) {
      Object joined = state;
      joined.join(*decoded);
      (void)joined.materialize();
    } else {
      ++errors;
    }
  }
  EXPECT_GT(errors, bytes.size() / 2);  // most cuts fall inside a field
}

}  // namespace
}  // namespace archipel::crdt
