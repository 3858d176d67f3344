// Fuzz target for the object CRDT's decoder: any bytes from a peer must decode to an object or
// give a CodecError, never crash; what decodes encodes back to the same object, and joins into
// a state that can be materialised.

#include "archipel/crdt/codec.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>

namespace {

using namespace archipel::crdt;

// A state holding one object, to join what decodes into.
const Object& base_state() {
  static const Object state = [] {
    Object o({"nantes", "paris"});
    const auto created = boost::json::parse(
        R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
            "data": {"color": "red"}})");
    (void)o.update(nullptr, created.as_object(), "paris", Hlc::from(1000, 0),
                   [](std::string_view) { return ListShape{}; });
    return o;
  }();
  return state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto decoded = decode(std::as_bytes(std::span(data, size)));
  if (!decoded) {
    return 0;
  }
  const std::string again = encode(*decoded);
  auto twice = decode(std::as_bytes(std::span(again.data(), again.size())));
  if (!twice || !(*twice == *decoded)) {
    std::abort();  // what decodes must encode back to itself
  }
  Object state = base_state();
  state.join(*decoded);
  (void)state.materialize();
  Object fresh;
  fresh.join(*decoded);
  (void)fresh.materialize();
  return 0;
}
