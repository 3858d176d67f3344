#pragma once

// A site's identity: an Ed25519 key pair (libsodium). The secret key stays in the site's key
// file; peers pin the public key in their federation configuration. No certificate authority.

#include <boost/system/result.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace archipel::peer {

using PublicKey = std::array<std::uint8_t, 32>;
using SecretKey = std::array<std::uint8_t, 64>;

struct Identity {
  std::string site;
  PublicKey public_key{};
  SecretKey secret_key{};

  /// A fresh key pair for `site`.
  static Identity generate(std::string site);

  /// Writes DIR/<site>.key (secret, mode 0600) and DIR/<site>.pub (the line to paste into peers'
  /// configuration). Refuses to overwrite an existing key file.
  [[nodiscard]] boost::system::result<void, std::string> save(
      const std::filesystem::path& dir) const;

  /// Reads a key file written by save(); errors name the file and the problem.
  static boost::system::result<Identity, std::string> load(const std::filesystem::path& key_file);
};

/// Standard base64 of a public key, and back (nullopt-like error for anything not 32 bytes).
[[nodiscard]] std::string encode_public_key(const PublicKey& key);
[[nodiscard]] boost::system::result<PublicKey, std::string> decode_public_key(
    std::string_view text);

/// Initialises libsodium once (thread-safe); false if the library cannot be used.
[[nodiscard]] bool sodium_ready() noexcept;

}  // namespace archipel::peer
