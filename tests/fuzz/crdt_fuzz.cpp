// Fuzz target for the object CRDT's decoder: any bytes from a peer must decode to an object or
// give a CodecError, never crash; what decodes encodes back to the same object, and joins into
// a state that can be materialised.

#include "archipel/crdt/codec.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>
#include <vector>

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
  auto decoded = decode_all(std::as_bytes(std::span(data, size)));
  if (!decoded) {
    return 0;
  }
  std::vector<Outgoing> out;
  for (const Received& r : *decoded) {
    out.push_back({r.key, r.object});
  }
  const std::string again = encode(out);
  auto twice = decode_all(std::as_bytes(std::span(again.data(), again.size())));
  if (!twice || twice->size() != decoded->size()) {
    std::abort();  // what decodes must encode back to itself
  }
  for (std::size_t i = 0; i < decoded->size(); ++i) {
    const Object& object = (*decoded)[i].object;
    if (!((*twice)[i].object == object) || (*twice)[i].key != (*decoded)[i].key) {
      std::abort();
    }
    Object state = base_state();
    state.join(object);
    (void)state.materialize();
    Object fresh;
    fresh.join(object);
    (void)fresh.materialize();
  }
  return 0;
}
