#pragma once

// Prints an object CRDT's state for test failures: sites, context, and the tree with every
// entry's dot and incarnations.

#include "archipel/crdt/object.hpp"

#include <ostream>
#include <string>

namespace archipel::crdt {

inline void print_register(const char* what, const MvRegister& reg, std::ostream& os) {
  if (reg.empty()) {
    return;
  }
  os << ' ' << what << '{';
  for (const MvRegister::Value& v : reg.values()) {
    os << ' ' << v.dot.replica << ':' << v.dot.counter;
    if (!v.scope.empty()) {
      os << '<';
      for (Dot d : v.scope) {
        os << d.replica << ':' << d.counter << ' ';
      }
      os << '>';
    }
    if (!v.value.empty()) {
      os << '=' << v.value;
    }
  }
  os << " }";
}

inline void print_node(const Node& node, int depth, std::ostream& os) {
  os << (node.shape == Node::Shape::kFields ? "" : " list") << (node.cleared ? " cleared" : "");
  print_register("value", node.value, os);
  print_register("marks", node.marks, os);
  print_register("order", node.order, os);
  os << '\n';
  for (const auto& [key, child] : node.children) {
    os << std::string(static_cast<std::size_t>(depth) * 2 + 2, ' ') << key << ':';
    print_node(child, depth + 1, os);
  }
}

inline std::ostream& operator<<(std::ostream& out, const Object& object) {
  std::ostream* os = &out;
  *os << (object.complete() ? "state" : "delta") << " sites";
  for (const std::string& s : object.sites()) {
    *os << ' ' << s;
  }
  *os << " context";
  for (ReplicaIndex r = 0; r < object.sites().size(); ++r) {
    *os << ' ' << object.context().base(r);
  }
  for (Dot d : object.context().cloud()) {
    *os << " +" << d.replica << ':' << d.counter;
  }
  *os << "\n  root:";
  print_node(object.root(), 0, *os);
  return out;
}

}  // namespace archipel::crdt
