#pragma once
// Checkpoint images between sites over a peer stream (proto/migrate.proto): every file of an
// images directory, in parts, each file checked against its BLAKE2b-256 digest at arrival. The
// receiver accepts only plain file names (no path), contiguous parts and matching digests; a
// transfer that breaks any of these fails, says why, and the receiver's directory holds no
// file it could not check.

#include "archipel/peer/stream.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace archipel::migrate {

struct ImagesStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

/// Sends the regular files of `dir` over `stream` (which the caller opened), ends its half, and
/// waits for the receiver's answer.
boost::asio::awaitable<boost::system::result<ImagesStats, std::string>> send_images(
    peer::PeerStream& stream, std::filesystem::path dir);

/// Receives a transfer into `dir` (created if missing) and answers the sender.
boost::asio::awaitable<boost::system::result<ImagesStats, std::string>> receive_images(
    peer::PeerStream& stream, std::filesystem::path dir);

}  // namespace archipel::migrate
