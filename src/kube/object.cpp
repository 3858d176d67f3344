#include "archipel/kube/object.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <random>

namespace archipel::kube {

boost::json::object& metadata(boost::json::object& object) {
  boost::json::value& m = object["metadata"];
  if (!m.is_object()) {
    m = boost::json::object();
  }
  return m.as_object();
}

const boost::json::value* find_path(const boost::json::object& object,
                                    std::initializer_list<const char*> path) {
  const boost::json::object* at = &object;
  const boost::json::value* v = nullptr;
  for (const char* key : path) {
    if (at == nullptr) {
      return nullptr;
    }
    v = at->if_contains(key);
    if (v == nullptr) {
      return nullptr;
    }
    at = v->is_object() ? &v->as_object() : nullptr;
  }
  return v;
}

std::string_view meta_string(const boost::json::object& object, std::string_view key) {
  const auto* m = object.if_contains("metadata");
  if (m == nullptr || !m->is_object()) {
    return {};
  }
  const auto* v = m->as_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
}

bool is_dns1123_label(std::string_view s) noexcept {
  if (s.empty() || s.size() > 63) {
    return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '-') {
      return false;
    }
  }
  return alnum(s.front()) && alnum(s.back());
}

bool is_dns1123_subdomain(std::string_view s) noexcept {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!is_dns1123_label(label)) {
      return false;
    }
    if (dot == std::string_view::npos) {
      return true;
    }
    start = dot + 1;
  }
  return false;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool parse_rfc3339(std::string_view text, std::chrono::system_clock::time_point& out) {
  std::tm tm{};
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::string human_duration(std::chrono::seconds d) {
  const long long s = d.count() < 0 ? 0 : d.count();
  if (s < 120) {
    return std::to_string(s) + "s";
  }
  const long long m = s / 60;
  if (m < 10) {
    return std::to_string(m) + "m" + (s % 60 ? std::to_string(s % 60) + "s" : "");
  }
  if (m < 180) {
    return std::to_string(m) + "m";
  }
  const long long h = m / 60;
  if (h < 48) {
    return std::to_string(h) + "h";
  }
  return std::to_string(h / 24) + "d";
}

namespace {
std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}
}  // namespace

std::string random_uuid() {
  const std::uint64_t a = rng()();
  const std::uint64_t b = rng()();
  std::array<unsigned char, 16> bytes{};
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(a >> (8 * i));
    bytes[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(b >> (8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);  // variant 1
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out += '-';
    }
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 0xF];
  }
  return out;
}

std::string random_suffix() {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 5; ++i) {
    out += kAlphabet[rng()() % kAlphabet.size()];
  }
  return out;
}

namespace {
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) {
      v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    }
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) {
    return false;
  }
  unsigned v = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      if (i + 2 < text.size()) {
        return false;
      }
      ++pad;
      continue;
    }
    if (pad > 0) {
      return false;
    }
    const std::size_t d = kBase64.find(c);
    if (d == std::string_view::npos) {
      return false;
    }
    v = (v << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xFF);
    }
  }
  return pad <= 2;
}

}  // namespace archipel::kube
