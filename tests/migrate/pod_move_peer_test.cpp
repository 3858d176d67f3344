// A pod moved with its images over the peer channel (through a link emulator), checksummed:
// the cart leaves paris's embedded cluster and runs at nantes's with every item.
//
// Real CRIU (root); skipped without one, failed instead under CI=true.

#include "archipel/migrate/images.hpp"
#include "archipel/migrate/pod_move.hpp"
#include "eventually.hpp"
#include "migrate/criu_support.hpp"
#include "migrate/embedded_site.hpp"
#include "peer/two_sites.hpp"

#include <random>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using archipel::testing::eventually;
using boost::asio::awaitable;
using testing::EmbeddedSite;
using testing::http;

constexpr const char* kImages = "test.migrate.images";

class PodMoveOverPeers : public peer::TwoSites {
 protected:
  void SetUp() override {
    testing::require_criu(criu_);
    if (!criu_) {
      return;
    }
    TwoSites::SetUp();
    dir_ = fs::temp_directory_path() /
           ("archipel-pod-move-peer-test-" + std::to_string(std::random_device{}()));
    paris_site_ = std::make_unique<EmbeddedSite>("paris", dir_ / "paris");
    nantes_site_ = std::make_unique<EmbeddedSite>("nantes", dir_ / "nantes");
    port_ = static_cast<std::uint16_t>(20000 + std::random_device{}() % 20000);
    // nantes receives images into the directory the request names.
    nantes_->handle(
        kImages, [](std::shared_ptr<peer::PeerStream> s, peer::Bytes request) -> awaitable<void> {
          (void)co_await receive_images(*s, std::string(request.begin(), request.end()));
        });
    ASSERT_TRUE(peer::eventually([&] { return both(peer::PeerState::kReachable); }));
  }

  void TearDown() override {
    paris_site_.reset();
    nantes_site_.reset();
    if (criu_) {
      TwoSites::TearDown();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // paris sends `from` to nantes, which keeps it in `to`.
  boost::system::result<void, std::string> transfer(const fs::path& from, const fs::path& to) {
    auto r = peer::run_on(io_, [&]() -> awaitable<boost::system::result<ImagesStats, std::string>> {
      const std::string where = to.string();
      auto stream = co_await paris_->open("nantes", kImages,
                                          peer::Bytes(where.begin(), where.end()), 60s, false);
      if (!stream) {
        co_return stream.error().message;
      }
      co_return co_await send_images(**stream, from);
    }());
    if (!r) {
      return std::string("the transfer timed out");
    }
    if (!*r) {
      return r->error();
    }
    transferred_ = **r;
    return {};
  }

  std::optional<Criu> criu_;
  fs::path dir_;
  std::unique_ptr<EmbeddedSite> paris_site_;
  std::unique_ptr<EmbeddedSite> nantes_site_;
  std::uint16_t port_ = 0;
  ImagesStats transferred_;
};

TEST_F(PodMoveOverPeers, TheCartMovesWithItsImagesOverThePeerChannel) {
  const json::object pod{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", "cart"},
                                {"namespace", "default"},
                                {"annotations", json::object{{kMigrateAnnotation, "criu"}}}}},
      {"spec",
       json::object{{"containers",
                     json::array{json::object{
                         {"name", "cart"},
                         {"image", "cart"},
                         {"command", json::array{CART_BIN, "--port", std::to_string(port_)}}}}}}}};
  ASSERT_TRUE(paris_site_->put_pod(pod).has_value());
  ASSERT_TRUE(eventually([&] { return http(port_, "GET", "/healthz") == "\"ok\""; }));
  ASSERT_TRUE(eventually([&] { return paris_site_->running_pid("cart") != 0; }));
  for (const char* item : {"apple", "pear", "pear"}) {
    ASSERT_FALSE(http(port_, "POST", std::string("/items/") + item).empty());
  }

  MoveRequest r{.namespace_name = "default", .pod = "cart", .work = dir_ / "move"};
  r.transfer = [this](const fs::path& from, const fs::path& to) { return transfer(from, to); };
  auto moved = move_pod(*criu_, *paris_site_, *nantes_site_, r);
  ASSERT_TRUE(moved.has_value()) << moved.error();

  EXPECT_GT(transferred_.files, 0U);
  EXPECT_GT(transferred_.bytes, 0U);  // the images went through the channel
  ASSERT_TRUE(eventually([&] { return nantes_site_->running_pid("cart") == moved->pid; }));
  std::string cart;
  ASSERT_TRUE(eventually([&] { return !(cart = http(port_, "GET", "/items")).empty(); }));
  EXPECT_NE(cart.find("\"apple\":1,\"pear\":2"), std::string::npos) << cart;
  EXPECT_TRUE(eventually([&] { return !paris_site_->get_pod("default", "cart").has_value(); }));
}

}  // namespace
}  // namespace archipel::migrate
