#include "archipel/peer/identity.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace archipel::peer {
namespace {

using Error = std::string;

template <class T>
boost::system::result<T, Error> fail(std::string message) {
  return boost::system::result<T, Error>(boost::system::in_place_error, std::move(message));
}

std::string to_base64(const std::uint8_t* data, std::size_t size) {
  std::string out(sodium_base64_encoded_len(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool from_base64(std::string_view text, std::uint8_t* out, std::size_t size) {
  std::size_t written = 0;
  return sodium_base642bin(out, size, text.data(), text.size(), nullptr, &written, nullptr,
                           sodium_base64_VARIANT_ORIGINAL) == 0 &&
         written == size;
}

constexpr std::string_view kSecretTag = "archipel-ed25519-secret";
constexpr std::string_view kPublicTag = "archipel-ed25519";

}  // namespace

bool sodium_ready() noexcept {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

Identity Identity::generate(std::string site) {
  Identity id;
  id.site = std::move(site);
  if (sodium_ready()) {
    crypto_sign_keypair(id.public_key.data(), id.secret_key.data());
  }
  return id;
}

boost::system::result<void, std::string> Identity::save(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto key = dir / (site + ".key");
  const auto pub = dir / (site + ".pub");
  if (std::filesystem::exists(key)) {
    return fail<void>(key.string() + " exists; remove it first to replace the identity");
  }
  {
    const mode_t old = umask(077);
    std::ofstream out(key);
    umask(old);
    out << kSecretTag << ' ' << site << ' ' << to_base64(secret_key.data(), secret_key.size())
        << '\n';
    if (!out) {
      return fail<void>("cannot write " + key.string());
    }
  }
  std::filesystem::permissions(
      key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  std::ofstream out(pub);
  out << kPublicTag << ' ' << site << ' ' << encode_public_key(public_key) << '\n';
  if (!out) {
    return fail<void>("cannot write " + pub.string());
  }
  return {};
}

boost::system::result<Identity, std::string> Identity::load(const std::filesystem::path& key_file) {
  if (!sodium_ready()) {
    return fail<Identity>("libsodium cannot be initialised");
  }
  std::ifstream in(key_file);
  if (!in) {
    return fail<Identity>("cannot read " + key_file.string());
  }
  std::string tag;
  Identity id;
  std::string encoded;
  in >> tag >> id.site >> encoded;
  if (tag != kSecretTag || id.site.empty() ||
      !from_base64(encoded, id.secret_key.data(), id.secret_key.size())) {
    return fail<Identity>(key_file.string() + ": not an archipel key file (expected '" +
                          std::string(kSecretTag) + " SITE BASE64', as archipel keygen writes)");
  }
  crypto_sign_ed25519_sk_to_pk(id.public_key.data(), id.secret_key.data());
  return id;
}

std::string encode_public_key(const PublicKey& key) {
  (void)sodium_ready();
  return to_base64(key.data(), key.size());
}

boost::system::result<PublicKey, std::string> decode_public_key(std::string_view text) {
  if (!sodium_ready()) {
    return fail<PublicKey>("libsodium cannot be initialised");
  }
  PublicKey key{};
  if (!from_base64(text, key.data(), key.size())) {
    return fail<PublicKey>(
        "expected a base64 Ed25519 public key (32 bytes), as in a .pub file "
        "written by archipel keygen");
  }
  return key;
}

}  // namespace archipel::peer
