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

/// Sends the regular files of `dir` over `stream` (which the caller opened), ends its half
/// unless `end_half` is false (the stream goes on with other messages), and waits for the
/// receiver's answer. With a `base` (an earlier images directory the receiver also holds, as
/// its own `base`), a file that the base has travels as the 64 KiB blocks that differ.
/// ImagesStats::bytes: the file bytes that travelled.
boost::asio::awaitable<boost::system::result<ImagesStats, std::string>> send_images(
    peer::PeerStream& stream, std::filesystem::path dir, bool end_half = true,
    std::filesystem::path base = {});

/// Receives a transfer into `dir` (created if missing) and answers the sender, ending its half
/// with the answer unless `end_half` is false. `base`: where the files a delta transfer
/// builds on are.
boost::asio::awaitable<boost::system::result<ImagesStats, std::string>> receive_images(
    peer::PeerStream& stream, std::filesystem::path dir, bool end_half = true,
    std::filesystem::path base = {});

}  // namespace archipel::migrate
