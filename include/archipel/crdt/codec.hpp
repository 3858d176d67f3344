#pragma once

// The wire format of object CRDT deltas and states (proto/crdt.proto): one message carries any
// number of objects (deltas, delta groups or full states), each named by a key, with one site
// table and one table of path keys for all of them.

#include "archipel/crdt/object.hpp"

#include <boost/system/result.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archipel::crdt {

/// Why bytes received were not a message of object deltas or states.
struct CodecError {
  std::string message;
};

/// An object to send, named for its receiver (the sharing layer's id of the object).
struct Outgoing {
  std::string_view key;
  const Object& object;
};

/// An object received.
struct Received {
  std::string key;
  Object object;
};

/// The message for `objects`.
[[nodiscard]] std::string encode(std::span<const Outgoing> objects);
/// The message for one object (key empty).
[[nodiscard]] std::string encode(const Object& object);

/// The objects `bytes` encode. Each comes with the sites its dots name, in name order (the
/// message's site table without the others). Anything malformed (not the message, a replica,
/// incarnation or string index outside its table, a repeated site, key or dot, a value that is not
/// JSON, nesting deeper than kMaxDepth) is an error; nothing is partially returned.
[[nodiscard]] boost::system::result<std::vector<Received>, CodecError> decode_all(
    std::span<const std::byte> bytes);
/// The one object `bytes` encode (an error if they hold another number of objects).
[[nodiscard]] boost::system::result<Object, CodecError> decode(std::span<const std::byte> bytes);

/// Deepest tree a decoded message may hold (Kubernetes objects stay far below it).
inline constexpr int kMaxDepth = 64;

}  // namespace archipel::crdt
