// Checkpoint images between two sites over the peer channel (through a link emulator): every
// file arrives intact, and against a base only the changed blocks travel; a part naming a path,
// a part out of order, a file that does not match its digest and a delta without its base are
// refused, and nothing unchecked is kept.

#include "archipel/migrate/images.hpp"
#include "migrate.pb.h"
#include "peer/two_sites.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <fstream>
#include <random>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using boost::asio::awaitable;
using Result = boost::system::result<ImagesStats, std::string>;

constexpr const char* kMethod = "test.images";

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

peer::Bytes bytes_of(const google::protobuf::MessageLite& m) {
  peer::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

class Images : public peer::TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    base_ = fs::temp_directory_path() /
            ("archipel-images-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(base_ / "source");
    // paris receives into base_/received and keeps what receive_images said.
    paris_->handle(kMethod, [this](std::shared_ptr<peer::PeerStream> s, peer::Bytes) {
      return receive(std::move(s));
    });
    ASSERT_TRUE(peer::eventually([&] { return both(peer::PeerState::kReachable); }));
  }

  void TearDown() override {
    TwoSites::TearDown();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  awaitable<void> receive(std::shared_ptr<peer::PeerStream> s) {
    Result r = co_await receive_images(*s, base_ / "received", true, receiver_base_);
    const std::lock_guard lock(mu_);
    received_ = std::move(r);
  }

  // nantes sends base_/source to paris.
  Result send() {
    auto r = peer::run_on(io_, [this]() -> awaitable<Result> {
      auto stream = co_await nantes_->open("paris", kMethod, {}, 30s, false);
      if (!stream) {
        co_return stream.error().message;
      }
      co_return co_await send_images(**stream, base_ / "source", true, sender_base_);
    }());
    if (!r) {
      return std::string("timed out");
    }
    return *r;
  }

  // nantes sends these parts as they are (a broken or hostile sender), then reads the answer.
  wire::ImagesReceived send_parts(const std::vector<wire::ImagePart>& parts) {
    auto r = peer::run_on(io_, [&]() -> awaitable<wire::ImagesReceived> {
      wire::ImagesReceived answer;
      auto stream = co_await nantes_->open("paris", kMethod, {}, 30s, false);
      if (!stream) {
        co_return answer;
      }
      for (const auto& p : parts) {
        (void)co_await (*stream)->send(bytes_of(p));
      }
      (void)co_await (*stream)->send(bytes_of(wire::ImagePart{}), true);
      auto got = co_await (*stream)->receive();
      if (got && *got) {
        answer.ParseFromArray((*got)->data(), static_cast<int>((*got)->size()));
      }
      co_return answer;
    }());
    return r.value_or(wire::ImagesReceived{});
  }

  std::optional<Result> received() {
    const std::lock_guard lock(mu_);
    return received_;
  }

  fs::path base_;
  fs::path sender_base_;  // delta transfers: the earlier images each side holds
  fs::path receiver_base_;
  std::mutex mu_;
  std::optional<Result> received_;
};

TEST_F(Images, EveryFileArrivesIntact) {
  std::mt19937 rng(7);
  std::string big(3 * 1024 * 1024 + 17, '\0');  // several parts, the last one short
  for (char& c : big) {
    c = static_cast<char>(rng());
  }
  write(base_ / "source" / "pages-1.img", big);
  write(base_ / "source" / "core-1.img", "core");
  write(base_ / "source" / "empty.img", "");

  const Result sent = send();
  ASSERT_TRUE(sent.has_value()) << sent.error();
  EXPECT_EQ(sent->files, 3U);
  EXPECT_EQ(sent->bytes, big.size() + 4);
  ASSERT_TRUE(peer::eventually([&] { return received().has_value(); }));
  ASSERT_TRUE(received()->has_value()) << received()->error();
  EXPECT_EQ(read(base_ / "received" / "pages-1.img"), big);
  EXPECT_EQ(read(base_ / "received" / "core-1.img"), "core");
  EXPECT_TRUE(fs::exists(base_ / "received" / "empty.img"));
}

TEST_F(Images, APartNamingAPathIsRefusedAndNothingIsWrittenOutside) {
  wire::ImagePart evil;
  evil.set_file("../evil.img");
  evil.set_data("x");
  evil.set_last(true);
  const wire::ImagesReceived answer = send_parts({evil});
  EXPECT_FALSE(answer.ok());
  EXPECT_NE(answer.error().find("not a plain image name"), std::string::npos) << answer.error();
  EXPECT_FALSE(fs::exists(base_ / "evil.img"));
}

TEST_F(Images, AFileThatDoesNotMatchItsDigestIsNotKept) {
  wire::ImagePart part;
  part.set_file("pages-1.img");
  part.set_data("the pages");
  part.set_last(true);
  part.set_digest(std::string(32, '\0'));
  const wire::ImagesReceived answer = send_parts({part});
  EXPECT_FALSE(answer.ok());
  EXPECT_NE(answer.error().find("does not match its digest"), std::string::npos) << answer.error();
  EXPECT_FALSE(fs::exists(base_ / "received" / "pages-1.img"));
}

TEST_F(Images, APartOutOfOrderIsRefusedAndTheUnfinishedFileNotKept) {
  wire::ImagePart first;
  first.set_file("pages-1.img");
  first.set_data("abc");
  wire::ImagePart skipped;
  skipped.set_file("pages-1.img");
  skipped.set_offset(10);
  skipped.set_data("def");
  const wire::ImagesReceived answer = send_parts({first, skipped});
  EXPECT_FALSE(answer.ok());
  EXPECT_NE(answer.error().find("a part at 10 after 3 bytes"), std::string::npos) << answer.error();
  EXPECT_TRUE(peer::eventually([&] { return received().has_value(); }));
  EXPECT_FALSE(fs::exists(base_ / "received" / "pages-1.img"));
}

TEST_F(Images, AgainstABaseOnlyTheChangedBlocksTravelAndEachFileIsRebuilt) {
  std::mt19937 rng(11);
  std::string was(2 * 1024 * 1024, '\0');
  for (char& c : was) {
    c = static_cast<char>(rng());
  }
  std::string now = was;
  now[100] ^= 1;              // first block
  now[1024 * 1024 + 5] ^= 1;  // a block in the middle
  now += "grown by ten";      // past the end of the base
  const std::string shrunk = was.substr(0, 300000);
  sender_base_ = base_ / "sender-base";
  receiver_base_ = base_ / "receiver-base";
  for (const fs::path& dir : {sender_base_, receiver_base_}) {
    fs::create_directories(dir);
    write(dir / "pages-1.img", was);
    write(dir / "pages-2.img", was);
  }
  write(base_ / "source" / "pages-1.img", now);
  write(base_ / "source" / "pages-2.img", shrunk);
  write(base_ / "source" / "core-1.img", "new since the base");

  const Result sent = send();
  ASSERT_TRUE(sent.has_value()) << sent.error();
  EXPECT_EQ(sent->files, 3U);
  // Two changed 64 KiB blocks and the tail of pages-1, pages-2 cut short (no block changed),
  // core-1 whole.
  EXPECT_LE(sent->bytes, 3 * 65536U + 18);
  ASSERT_TRUE(peer::eventually([&] { return received().has_value(); }));
  ASSERT_TRUE(received()->has_value()) << received()->error();
  EXPECT_EQ(read(base_ / "received" / "pages-1.img"), now);
  EXPECT_EQ(read(base_ / "received" / "pages-2.img"), shrunk);
  EXPECT_EQ(read(base_ / "received" / "core-1.img"), "new since the base");
}

TEST_F(Images, ADeltaOfAFileTheReceiverHasNoBaseForIsRefused) {
  wire::ImagePart part;
  part.set_file("pages-1.img");
  part.set_data("changed");
  part.set_delta(true);
  const wire::ImagesReceived answer = send_parts({part});
  EXPECT_FALSE(answer.ok());
  EXPECT_NE(answer.error().find("which the base lacks"), std::string::npos) << answer.error();
  EXPECT_FALSE(fs::exists(base_ / "received" / "pages-1.img"));
}

}  // namespace
}  // namespace archipel::migrate
