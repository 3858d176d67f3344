// The wire format of object deltas and states: every delta and state of random histories
// comes back equal from its bytes; malformed bytes are errors that say what is wrong.

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
    ASSERT_EQ(round_trip(delta), delta) << delta;
  }
  for (const Object& state : h.halfway) {
    ASSERT_EQ(round_trip(state), state) << state;
  }
  ASSERT_EQ(round_trip(h.replicas[0].state), h.replicas[0].state);
}

INSTANTIATE_TEST_SUITE_P(Seeds, CodecHistories, ::testing::Range(1U, 11U));

// A valid message to break in each test below.
wire::Object valid_message() {
  const History h = run_history(7, 3, 60);
  wire::Object m;
  EXPECT_TRUE(m.ParseFromString(encode(h.replicas[0].state)));
  return m;
}

std::string decode_error(const wire::Object& m) {
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
  wire::Object m = valid_message();
  m.add_sites(m.sites(0));
  EXPECT_EQ(decode_error(m), "crdt message: a site appears twice in the site table");
}

TEST(Codec, RejectsAReplicaOutsideTheSiteTable) {
  wire::Object m = valid_message();
  first_leaf_with_value(*m.mutable_root()).mutable_value(0)->set_replica(9);
  EXPECT_NE(decode_error(m).find("outside the site table (at "), std::string::npos)
      << decode_error(m);
}

TEST(Codec, RejectsAValueThatIsNotJson) {
  wire::Object m = valid_message();
  first_leaf_with_value(*m.mutable_root()).mutable_value(0)->set_value("{not json");
  EXPECT_NE(decode_error(m).find("a value that is not JSON"), std::string::npos);
}

TEST(Codec, RejectsAnIncarnationIndexOutsideItsTable) {
  wire::Object m = valid_message();
  first_leaf_with_value(*m.mutable_root()).mutable_value(0)->add_scope(1000);
  EXPECT_NE(decode_error(m).find("incarnation index outside the table"), std::string::npos);
}

TEST(Codec, RejectsKeysOutOfOrderOrMissingChildren) {
  wire::Object m = valid_message();
  ASSERT_GE(m.root().keys_size(), 2);
  m.mutable_root()->mutable_keys()->SwapElements(0, 1);
  EXPECT_NE(decode_error(m).find("repeated or out of order"), std::string::npos);
  m = valid_message();
  m.mutable_root()->add_keys("zzz");
  EXPECT_NE(decode_error(m).find("as many keys as children"), std::string::npos);
}

TEST(Codec, RejectsNestingDeeperThanTheLimit) {
  wire::Object m;
  m.add_sites("paris");
  wire::Node* n = m.mutable_root();
  for (int depth = 0; depth < kMaxDepth + 2; ++depth) {
    n->add_keys("k");
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
