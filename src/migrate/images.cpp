#include "archipel/migrate/images.hpp"

#include "migrate.pb.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

namespace archipel::migrate {
namespace {

namespace fs = std::filesystem;
using boost::asio::awaitable;
using Result = boost::system::result<ImagesStats, std::string>;

constexpr std::size_t kPart = 1 << 20;
constexpr std::size_t kDigest = crypto_generichash_BYTES;  // 32: BLAKE2b-256

// A name CRIU gives an image: letters, digits, '.', '-', '_' (no path, not "." or "..").
bool plain_name(const std::string& n) {
  if (n.empty() || n.size() > 255 || n == "." || n == "..") {
    return false;
  }
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

peer::Bytes serialize(const google::protobuf::MessageLite& m) {
  peer::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

}  // namespace

awaitable<Result> send_images(peer::PeerStream& stream, fs::path dir) {
  if (sodium_init() < 0) {
    co_return std::string("libsodium cannot be initialised");
  }
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) {
      files.push_back(e.path());
    }
  }
  if (ec) {
    co_return "reading " + dir.string() + ": " + ec.message();
  }
  std::sort(files.begin(), files.end());
  ImagesStats stats;
  std::vector<char> buf(kPart);
  for (const fs::path& f : files) {
    const std::string name = f.filename().string();
    if (!plain_name(name)) {
      co_return "cannot send " + f.string() + ": not a plain image name";
    }
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      co_return "cannot read " + f.string();
    }
    crypto_generichash_state hash;
    crypto_generichash_init(&hash, nullptr, 0, kDigest);
    std::uint64_t offset = 0;
    for (;;) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto n = static_cast<std::size_t>(in.gcount());
      if (in.bad()) {
        co_return "cannot read " + f.string();
      }
      crypto_generichash_update(&hash, reinterpret_cast<const unsigned char*>(buf.data()), n);
      wire::ImagePart part;
      part.set_file(name);
      part.set_offset(offset);
      part.set_data(buf.data(), n);
      offset += n;
      const bool last = in.eof();
      if (last) {
        std::array<unsigned char, kDigest> digest{};
        crypto_generichash_final(&hash, digest.data(), digest.size());
        part.set_last(true);
        part.set_digest(digest.data(), digest.size());
      }
      if (auto sent = co_await stream.send(serialize(part)); !sent) {
        co_return "sending " + name + ": " + sent.error().message;
      }
      if (last) {
        break;
      }
    }
    ++stats.files;
    stats.bytes += offset;
  }
  if (auto sent = co_await stream.send(serialize(wire::ImagePart{}), true); !sent) {
    co_return "ending the transfer: " + sent.error().message;
  }
  auto answer = co_await stream.receive();
  if (!answer) {
    co_return "waiting for the receiver: " + answer.error().message;
  }
  wire::ImagesReceived got;
  if (!*answer || !got.ParseFromArray((*answer)->data(), static_cast<int>((*answer)->size()))) {
    co_return std::string("the receiver did not answer the transfer");
  }
  if (!got.ok()) {
    co_return "the receiver refused the images: " + got.error();
  }
  co_return stats;
}

awaitable<Result> receive_images(peer::PeerStream& stream, fs::path dir) {
  if (sodium_init() < 0) {
    co_return std::string("libsodium cannot be initialised");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    co_return "creating " + dir.string() + ": " + ec.message();
  }
  struct Open {
    std::ofstream out;
    std::uint64_t written = 0;
    crypto_generichash_state hash{};
  };
  std::map<std::string, Open> open;
  ImagesStats stats;
  std::string error;
  for (;;) {
    auto message = co_await stream.receive();
    if (!message) {
      error = "the transfer broke: " + message.error().message;
      break;
    }
    if (!*message) {
      error = "the sender ended before the end of the transfer";
      break;
    }
    wire::ImagePart part;
    if (!part.ParseFromArray((*message)->data(), static_cast<int>((*message)->size()))) {
      error = "a malformed part";
      break;
    }
    if (part.file().empty()) {
      if (!open.empty()) {
        error = "the transfer ended in the middle of " + open.begin()->first;
      }
      break;
    }
    if (!plain_name(part.file())) {
      error = "a part for \"" + part.file() + "\", which is not a plain image name";
      break;
    }
    auto [it, fresh] = open.try_emplace(part.file());
    Open& f = it->second;
    if (fresh) {
      if (fs::exists(dir / part.file())) {
        error = part.file() + " sent twice";
        break;
      }
      f.out.open(dir / part.file(), std::ios::binary | std::ios::trunc);
      crypto_generichash_init(&f.hash, nullptr, 0, kDigest);
      if (!f.out) {
        error = "cannot write " + (dir / part.file()).string();
        break;
      }
    }
    if (part.offset() != f.written) {
      error = part.file() + ": a part at " + std::to_string(part.offset()) + " after " +
              std::to_string(f.written) + " bytes";
      break;
    }
    f.out.write(part.data().data(), static_cast<std::streamsize>(part.data().size()));
    crypto_generichash_update(&f.hash, reinterpret_cast<const unsigned char*>(part.data().data()),
                              part.data().size());
    f.written += part.data().size();
    if (!part.last()) {
      continue;
    }
    std::array<unsigned char, kDigest> digest{};
    crypto_generichash_final(&f.hash, digest.data(), digest.size());
    f.out.close();
    if (!f.out || part.digest().size() != kDigest ||
        std::memcmp(part.digest().data(), digest.data(), kDigest) != 0) {
      error = part.file() + " does not match its digest";
      fs::remove(dir / part.file(), ec);
      open.erase(it);
      break;
    }
    ++stats.files;
    stats.bytes += f.written;
    open.erase(it);
  }
  for (auto& [name, f] : open) {  // files left unchecked are not kept
    f.out.close();
    fs::remove(dir / name, ec);
  }
  wire::ImagesReceived answer;
  answer.set_ok(error.empty());
  answer.set_error(error);
  answer.set_files(stats.files);
  answer.set_bytes(stats.bytes);
  (void)co_await stream.send(serialize(answer), true);
  if (!error.empty()) {
    co_return error;
  }
  co_return stats;
}

}  // namespace archipel::migrate
