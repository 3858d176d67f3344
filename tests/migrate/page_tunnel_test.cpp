// Post-copy's page traffic through the peer channel (src/migrate/page_tunnel.hpp): a connection
// to the destination's tunnel port reaches the page server the source exposes to that
// destination for that migration, bytes intact both ways and each direction ending on its own;
// a migration not exposed to the opening site is never connected; destroying the tunnel closes
// its connections.

#include "migrate/page_tunnel.hpp"
#include "peer/two_sites.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

namespace archipel::migrate {
namespace {

using namespace std::chrono_literals;

// A blocking loopback TCP listener on an ephemeral port.
int listen_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return -1;
  }
  port = ntohs(addr.sin_port);
  return fd;
}

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Everything until the other side ends its half (or the connection fails).
std::string read_all(int fd) {
  std::string out;
  std::array<char, 65536> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) {
      return out;
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
}

// Stands for CRIU's page server at paris: reads its one connection to the end, then answers
// with what it read, reversed (so that the answer differs from the request), and closes.
class ReversingServer {
 public:
  ReversingServer() {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      accepted_ = true;
      std::string got = read_all(c);
      received_ = got.size();
      std::reverse(got.begin(), got.end());
      write_all(c, got);
      ::close(c);
    });
  }
  ~ReversingServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  bool accepted() const { return accepted_; }
  std::size_t received() const { return received_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> accepted_{false};
  std::atomic<std::size_t> received_{0};
  std::thread thread_;
};

class PageTunnelTest : public peer::TwoSites {
 protected:
  void SetUp() override {
    TwoSites::SetUp();
    serve_pages(io_, *paris_, servers_);
    ASSERT_TRUE(peer::eventually([&] { return both(peer::PeerState::kReachable); }));
  }

  std::unique_ptr<PageTunnel> tunnel_to_paris(const std::string& migration) {
    auto tunnel = PageTunnel::open(io_, *nantes_, "paris", migration, 20s);
    EXPECT_TRUE(tunnel) << tunnel.error();
    return tunnel ? std::move(*tunnel) : nullptr;
  }

  std::shared_ptr<PageServers> servers_ = std::make_shared<PageServers>();
};

TEST_F(PageTunnelTest, BytesCrossToThePageServerAndBackIntact) {
  ReversingServer server;
  servers_->expose("nantes", "team-a/move-cart", server.port());
  auto tunnel = tunnel_to_paris("team-a/move-cart");
  ASSERT_TRUE(tunnel);

  std::string request(3 << 20, '\0');  // several relayed chunks and stream messages
  std::mt19937 random(7);
  for (char& c : request) {
    c = static_cast<char>(random());
  }
  const int fd = connect_loopback(tunnel->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(write_all(fd, request));
  ::shutdown(fd, SHUT_WR);  // the server answers once this half ends: it must cross too
  const std::string answer = read_all(fd);
  ::close(fd);

  EXPECT_EQ(server.received(), request.size());
  std::reverse(request.begin(), request.end());
  EXPECT_TRUE(answer == request) << "answer of " << answer.size() << " bytes differs";
}

TEST_F(PageTunnelTest, AMigrationExposedToAnotherSiteIsNotReached) {
  ReversingServer server;
  servers_->expose("rennes", "team-a/move-cart", server.port());
  auto tunnel = tunnel_to_paris("team-a/move-cart");
  ASSERT_TRUE(tunnel);

  const int fd = connect_loopback(tunnel->port());
  ASSERT_GE(fd, 0);
  write_all(fd, "page request");
  EXPECT_EQ(read_all(fd), "");  // closed without an answer
  ::close(fd);
  EXPECT_FALSE(server.accepted());
}

TEST_F(PageTunnelTest, AWithdrawnPageServerIsNotReached) {
  ReversingServer server;
  servers_->expose("nantes", "team-a/move-cart", server.port());
  servers_->withdraw("nantes", "team-a/move-cart");
  auto tunnel = tunnel_to_paris("team-a/move-cart");
  ASSERT_TRUE(tunnel);

  const int fd = connect_loopback(tunnel->port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_all(fd), "");
  ::close(fd);
  EXPECT_FALSE(server.accepted());
}

TEST_F(PageTunnelTest, DestroyingTheTunnelClosesItsOpenConnections) {
  ReversingServer server;  // answers only at the end of the request: the connection stays open
  servers_->expose("nantes", "team-a/move-cart", server.port());
  auto tunnel = tunnel_to_paris("team-a/move-cart");
  ASSERT_TRUE(tunnel);
  const std::uint16_t port = tunnel->port();

  const int fd = connect_loopback(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(write_all(fd, "page request"));
  ASSERT_TRUE(peer::eventually([&] { return server.received() == 0 && server.accepted(); }));
  tunnel.reset();
  EXPECT_EQ(read_all(fd), "");  // returns: the tunnel closed it
  ::close(fd);
  EXPECT_LT(connect_loopback(port), 0) << "the tunnel's port still accepts";
}

}  // namespace
}  // namespace archipel::migrate
