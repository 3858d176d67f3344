#pragma once

// The wire format of object CRDT deltas and states (proto/crdt.proto): one message per object
// delta, delta group or full state, with its own site table.

#include "archipel/crdt/object.hpp"

#include <boost/system/result.hpp>

#include <span>
#include <string>

namespace archipel::crdt {

/// Why bytes received were not an object delta or state.
struct CodecError {
  std::string message;
};

/// The message for `object` (a delta, a delta group or a full state).
[[nodiscard]] std::string encode(const Object& object);

/// The object `bytes` encode. Anything malformed (not the message, a replica or incarnation
/// index outside its table, a repeated site, key or dot, a value that is not JSON, nesting
/// deeper than kMaxDepth) is an error; nothing is partially applied.
[[nodiscard]] boost::system::result<Object, CodecError> decode(std::span<const std::byte> bytes);

/// Deepest tree a decoded message may hold (Kubernetes objects stay far below it).
inline constexpr int kMaxDepth = 64;

}  // namespace archipel::crdt
