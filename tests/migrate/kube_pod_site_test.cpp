// A site's pods as migrations write them (KubePodSite, against an embedded cluster): a pod that
// arrives from another site lands in its namespace even when this site has not got it yet.

#include "archipel/kube/object.hpp"
#include "archipel/migrate/pod_move.hpp"
#include "migrate/embedded_site.hpp"

#include <random>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class KubePodSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("archipel-kube-pod-site-" + std::to_string(std::random_device{}()));
    site_ = std::make_unique<testing::EmbeddedSite>("nantes", dir_);
  }
  void TearDown() override {
    site_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A pod its runtime leaves alone (as a migration's destination creates it before the restore).
  static json::object pod(const std::string& ns, const std::string& name) {
    return json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", json::object{{"name", name},
                                  {"namespace", ns},
                                  {"annotations", json::object{{kRestoringAnnotation, "true"}}}}},
        {"spec", json::object{{"containers",
                               json::array{json::object{{"name", "cart"},
                                                        {"image", "local"},
                                                        {"command", json::array{"/bin/true"}}}}}}}};
  }

  fs::path dir_;
  std::unique_ptr<testing::EmbeddedSite> site_;
};

TEST_F(KubePodSiteTest, APodLandsInANamespaceThisSiteHasNotGotYet) {
  ASSERT_EQ(site_->call("GET", "/api/v1/namespaces/shop").status, 404);
  auto put = site_->put_pod(pod("shop", "cart"));
  ASSERT_TRUE(put) << put.error();
  EXPECT_EQ(site_->call("GET", "/api/v1/namespaces/shop").status, 200);
  auto got = site_->get_pod("shop", "cart");
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(kube::meta_string(*got, "namespace"), "shop");
}

TEST_F(KubePodSiteTest, APodIntoAnExistingNamespaceIsCreatedThere) {
  auto put = site_->put_pod(pod("default", "cart"));
  ASSERT_TRUE(put) << put.error();
  EXPECT_TRUE(site_->get_pod("default", "cart"));
}

TEST_F(KubePodSiteTest, APodWithoutANamespaceIsRefused) {
  json::object p = pod("default", "cart");
  p["metadata"].as_object().erase("namespace");
  EXPECT_FALSE(site_->put_pod(p));
}

}  // namespace
}  // namespace archipel::migrate
