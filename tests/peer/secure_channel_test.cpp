// The channel's security, sans-IO: two channels wired back to back in memory, and an attacker
// with the wire in between.

#include "archipel/peer/secure_channel.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

namespace archipel::peer {
namespace {

Bytes bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

struct Federation {
  Identity paris = Identity::generate("paris");
  Identity nantes = Identity::generate("nantes");
  std::map<std::string, PublicKey, std::less<>> pinned = {{"paris", paris.public_key},
                                                          {"nantes", nantes.public_key}};

  KeyLookup keys() {
    return [this](std::string_view site) -> std::optional<PublicKey> {
      auto it = pinned.find(site);
      return it == pinned.end() ? std::nullopt : std::optional<PublicKey>(it->second);
    };
  }
};

// Moves bytes both ways until neither side has anything to say; returns the first error.
std::optional<ChannelError> pump(SecureChannel& a, SecureChannel& b,
                                 std::vector<Bytes>* to_a = nullptr,
                                 std::vector<Bytes>* to_b = nullptr) {
  for (int i = 0; i < 10; ++i) {
    Bytes ab = a.take_output();
    Bytes ba = b.take_output();
    if (ab.empty() && ba.empty()) {
      return std::nullopt;
    }
    if (!ab.empty()) {
      auto r = b.feed(ab);
      if (!r)
        return r.error();
      if (to_b)
        to_b->insert(to_b->end(), r->begin(), r->end());
    }
    if (!ba.empty()) {
      auto r = a.feed(ba);
      if (!r)
        return r.error();
      if (to_a)
        to_a->insert(to_a->end(), r->begin(), r->end());
    }
  }
  return std::nullopt;
}

TEST(SecureChannel, HandshakeAuthenticatesBothSitesAndCarriesFramesBothWays) {
  Federation f;
  auto a = SecureChannel::initiator(f.paris, "nantes", f.keys());
  auto b = SecureChannel::responder(f.nantes, f.keys());
  ASSERT_FALSE(pump(*a, *b));
  ASSERT_TRUE(a->established());
  ASSERT_TRUE(b->established());
  EXPECT_EQ(a->peer(), "nantes");
  EXPECT_EQ(b->peer(), "paris");
  ASSERT_TRUE(a->send(bytes("hello nantes")));
  ASSERT_TRUE(a->send(bytes("")));
  ASSERT_TRUE(b->send(bytes("hello paris")));
  std::vector<Bytes> to_a;
  std::vector<Bytes> to_b;
  ASSERT_FALSE(pump(*a, *b, &to_a, &to_b));
  EXPECT_EQ(to_b, (std::vector<Bytes>{bytes("hello nantes"), bytes("")}));
  EXPECT_EQ(to_a, (std::vector<Bytes>{bytes("hello paris")}));
}

TEST(SecureChannel, FramesArriveWhateverTheReadBoundaries) {
  Federation f;
  auto a = SecureChannel::initiator(f.paris, "nantes", f.keys());
  auto b = SecureChannel::responder(f.nantes, f.keys());
  ASSERT_FALSE(pump(*a, *b));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(a->send(bytes("frame " + std::to_string(i))));
  }
  const Bytes wire = a->take_output();
  std::vector<Bytes> got;
  std::mt19937 rng(7);
  for (std::size_t at = 0; at < wire.size();) {
    const std::size_t n = std::min<std::size_t>(wire.size() - at, 1 + rng() % 13);
    auto r = b->feed(std::span(wire).subspan(at, n));
    ASSERT_TRUE(r) << r.error().message;
    got.insert(got.end(), r->begin(), r->end());
    at += n;
  }
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got[19], bytes("frame 19"));
}

TEST(SecureChannel, ResponderRejectsAnImpostorHoldingTheWrongKey) {
  Federation f;
  const Identity impostor = Identity::generate("paris");  // claims paris, lacks paris's key
  auto a = SecureChannel::initiator(impostor, "nantes", f.keys());
  auto b = SecureChannel::responder(f.nantes, f.keys());
  auto e = pump(*a, *b);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, ChannelFault::kBadSignature);
  EXPECT_FALSE(b->established());
}

TEST(SecureChannel, InitiatorRejectsAResponderWithTheWrongKey) {
  Federation f;
  const Identity fake = Identity::generate("nantes");
  auto a = SecureChannel::initiator(f.paris, "nantes", f.keys());
  auto b = SecureChannel::responder(fake, f.keys());
  auto e = pump(*a, *b);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, ChannelFault::kBadSignature);
  EXPECT_FALSE(a->established());
}

TEST(SecureChannel, UnknownSitesAreRejected) {
  Federation f;
  const Identity lyon = Identity::generate("lyon");
  auto a = SecureChannel::initiator(lyon, "nantes", f.keys());
  auto b = SecureChannel::responder(f.nantes, f.keys());
  auto e = pump(*a, *b);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, ChannelFault::kUnknownPeer);
  // And a responder that is not the site dialled.
  auto c = SecureChannel::initiator(f.paris, "rennes", f.keys());
  auto d = SecureChannel::responder(f.nantes, f.keys());
  auto e2 = pump(*c, *d);
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->fault, ChannelFault::kUnknownPeer);
}

class EstablishedChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = SecureChannel::initiator(f_.paris, "nantes", f_.keys());
    b_ = SecureChannel::responder(f_.nantes, f_.keys());
    ASSERT_FALSE(pump(*a_, *b_));
  }
  Federation f_;
  std::unique_ptr<SecureChannel> a_;
  std::unique_ptr<SecureChannel> b_;
};

TEST_F(EstablishedChannel, TamperedFrameClosesTheChannel) {
  ASSERT_TRUE(a_->send(bytes("transfer 10")));
  Bytes wire = a_->take_output();
  wire[wire.size() - 3] ^= 0x01;
  auto r = b_->feed(wire);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kTampered);
  EXPECT_FALSE(b_->feed(Bytes{}));  // dead after an error
}

TEST_F(EstablishedChannel, ReplayedFrameIsRejected) {
  ASSERT_TRUE(a_->send(bytes("transfer 10")));
  const Bytes wire = a_->take_output();
  ASSERT_TRUE(b_->feed(wire));
  auto r = b_->feed(wire);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kTampered);
}

TEST_F(EstablishedChannel, ReorderedFramesAreRejected) {
  ASSERT_TRUE(a_->send(bytes("first")));
  const Bytes first = a_->take_output();
  ASSERT_TRUE(a_->send(bytes("second")));
  const Bytes second = a_->take_output();
  auto r = b_->feed(second);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kTampered);
  (void)first;
}

TEST_F(EstablishedChannel, TruncatedFrameWaitsAndNeverDeliversPartialData) {
  ASSERT_TRUE(a_->send(bytes("complete message")));
  const Bytes wire = a_->take_output();
  auto r = b_->feed(std::span(wire).first(wire.size() - 1));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  auto rest = b_->feed(std::span(wire).last(1));
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 1u);
}

TEST_F(EstablishedChannel, OversizedLengthPrefixClosesTheChannel) {
  const Bytes huge = {0x7f, 0xff, 0xff, 0xff};
  auto r = b_->feed(huge);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kOversized);
}

TEST(SecureChannel, MalformedHandshakeIsRejected) {
  Federation f;
  auto b = SecureChannel::responder(f.nantes, f.keys());
  const Bytes garbage = {0, 0, 0, 3, 1, 200, 7};
  auto r = b->feed(garbage);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kMalformed);
}

TEST(SecureChannel, SendingBeforeTheHandshakeIsRefused) {
  Federation f;
  auto a = SecureChannel::initiator(f.paris, "nantes", f.keys());
  auto r = a->send(bytes("too early"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fault, ChannelFault::kProtocol);
}

TEST(Identity, SavesAndLoadsAKeyPairAndRefusesToOverwrite) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("archipel-keys-" + std::to_string(std::random_device{}()));
  const Identity id = Identity::generate("paris");
  ASSERT_TRUE(id.save(dir));
  auto loaded = Identity::load(dir / "paris.key");
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->site, "paris");
  EXPECT_EQ(loaded->public_key, id.public_key);
  EXPECT_EQ(loaded->secret_key, id.secret_key);
  EXPECT_EQ(
      std::filesystem::status(dir / "paris.key").permissions() & std::filesystem::perms::group_read,
      std::filesystem::perms::none);
  EXPECT_FALSE(id.save(dir));
  auto pub = decode_public_key(encode_public_key(id.public_key));
  ASSERT_TRUE(pub);
  EXPECT_EQ(*pub, id.public_key);
  EXPECT_FALSE(decode_public_key("not base64!"));
  EXPECT_FALSE(decode_public_key("AAAA"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace archipel::peer
