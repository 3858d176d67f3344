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

// Sends `file` as the blocks that differ from `base` (an earlier version the receiver holds);
// the bytes sent, or why not.
awaitable<boost::system::result<std::uint64_t, std::string>> send_delta(peer::PeerStream& stream,
                                                                        const fs::path& file,
                                                                        const fs::path& base) {
  constexpr std::size_t kBlock = 64 << 10;
  const std::string name = file.filename().string();
  std::ifstream now_in(file, std::ios::binary);
  std::ifstream was_in(base, std::ios::binary);
  if (!now_in || !was_in) {
    co_return "cannot read " + file.string() + " or " + base.string();
  }
  crypto_generichash_state hash;
  crypto_generichash_init(&hash, nullptr, 0, kDigest);
  std::vector<char> now(kBlock);
  std::vector<char> was(kBlock);
  std::string run;  // changed blocks not sent yet, from run_at
  std::uint64_t run_at = 0;
  std::uint64_t offset = 0;
  std::uint64_t sent = 0;
  for (;;) {
    now_in.read(now.data(), static_cast<std::streamsize>(kBlock));
    const auto n = static_cast<std::size_t>(now_in.gcount());
    was_in.read(was.data(), static_cast<std::streamsize>(kBlock));
    const auto m = static_cast<std::size_t>(was_in.gcount());
    if (now_in.bad() || was_in.bad()) {
      co_return "cannot read " + file.string() + " or " + base.string();
    }
    crypto_generichash_update(&hash, reinterpret_cast<const unsigned char*>(now.data()), n);
    const bool same = n == m && std::memcmp(now.data(), was.data(), n) == 0;
    if (!same) {
      if (run.empty()) {
        run_at = offset;
      }
      run.append(now.data(), n);
    }
    offset += n;
    if (!run.empty() && (same || run.size() >= kPart || n < kBlock)) {
      wire::ImagePart part;
      part.set_file(name);
      part.set_offset(run_at);
      part.set_data(run);
      part.set_delta(true);
      if (auto r = co_await stream.send(serialize(part)); !r) {
        co_return "sending " + name + ": " + r.error().message;
      }
      sent += run.size();
      run.clear();
    }
    if (n < kBlock) {
      break;
    }
  }
  std::array<unsigned char, kDigest> digest{};
  crypto_generichash_final(&hash, digest.data(), digest.size());
  wire::ImagePart last;
  last.set_file(name);
  last.set_offset(offset);
  last.set_delta(true);
  last.set_last(true);
  last.set_size(offset);
  last.set_digest(digest.data(), digest.size());
  if (auto r = co_await stream.send(serialize(last)); !r) {
    co_return "sending " + name + ": " + r.error().message;
  }
  co_return sent;
}

// BLAKE2b-256 of a whole file; empty when it cannot be read.
std::string digest_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return {};
  }
  crypto_generichash_state hash;
  crypto_generichash_init(&hash, nullptr, 0, kDigest);
  std::vector<char> buf(kPart);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    crypto_generichash_update(&hash, reinterpret_cast<const unsigned char*>(buf.data()),
                              static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    return {};
  }
  std::string out(kDigest, '\0');
  crypto_generichash_final(&hash, reinterpret_cast<unsigned char*>(out.data()), out.size());
  return out;
}

}  // namespace

awaitable<Result> send_images(peer::PeerStream& stream, fs::path dir, bool end_half,
                              fs::path base) {
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
    if (std::error_code e; !base.empty() && fs::is_regular_file(base / name, e)) {
      auto sent = co_await send_delta(stream, f, base / name);
      if (!sent) {
        co_return sent.error();
      }
      ++stats.files;
      stats.bytes += *sent;
      continue;
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
  if (auto sent = co_await stream.send(serialize(wire::ImagePart{}), end_half); !sent) {
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

awaitable<Result> receive_images(peer::PeerStream& stream, fs::path dir, bool end_half,
                                 fs::path base) {
  if (sodium_init() < 0) {
    co_return std::string("libsodium cannot be initialised");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    co_return "creating " + dir.string() + ": " + ec.message();
  }
  struct Open {
    std::fstream out;
    std::uint64_t written = 0;  // a delta: the end of the last part
    crypto_generichash_state hash{};
    bool delta = false;
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
      f.delta = part.delta();
      if (f.delta) {
        std::error_code e;
        if (base.empty() || !fs::is_regular_file(base / part.file(), e)) {
          error = "a delta of " + part.file() + ", which the base lacks";
          open.erase(it);
          break;
        }
        fs::copy_file(base / part.file(), dir / part.file(), e);
        f.out.open(dir / part.file(), std::ios::binary | std::ios::in | std::ios::out);
      } else {
        f.out.open(dir / part.file(), std::ios::binary | std::ios::out | std::ios::trunc);
      }
      crypto_generichash_init(&f.hash, nullptr, 0, kDigest);
      if (!f.out) {
        error = "cannot write " + (dir / part.file()).string();
        break;
      }
    }
    if (part.delta() != f.delta) {
      error = part.file() + ": whole parts and delta parts mixed";
      break;
    }
    if (f.delta) {
      if (part.offset() < f.written) {
        error = part.file() + ": a part at " + std::to_string(part.offset()) + " after " +
                std::to_string(f.written) + " bytes";
        break;
      }
      f.out.seekp(static_cast<std::streamoff>(part.offset()));
      f.out.write(part.data().data(), static_cast<std::streamsize>(part.data().size()));
      f.written = part.offset() + part.data().size();
      stats.bytes += part.data().size();
      if (!part.last()) {
        continue;
      }
      f.out.close();
      std::error_code e;
      if (part.size() < f.written) {
        error = part.file() + ": parts past its size";
      } else {
        fs::resize_file(dir / part.file(), part.size(), e);
        const std::string digest = e ? std::string() : digest_of(dir / part.file());
        if (digest.empty() || part.digest() != digest) {
          error = part.file() + " does not match its digest";
        }
      }
      if (!error.empty()) {
        fs::remove(dir / part.file(), e);
        open.erase(it);
        break;
      }
      ++stats.files;
      open.erase(it);
      continue;
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
  (void)co_await stream.send(serialize(answer), end_half);
  if (!error.empty()) {
    co_return error;
  }
  co_return stats;
}

}  // namespace archipel::migrate
