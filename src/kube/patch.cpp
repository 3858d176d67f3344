#include "archipel/kube/patch.hpp"

#include "archipel/kube/schema.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <optional>
#include <vector>

namespace archipel::kube {
namespace {

using boost::json::array;
using boost::json::object;
using boost::json::value;
using Failure = PatchResult;

PatchResult fail(std::string message) {
  return PatchResult(boost::system::in_place_error, std::move(message));
}

// --- RFC 6902 -----------------------------------------------------------------------------------

// "/a/b~1c" → {"a", "b/c"}
std::optional<std::vector<std::string>> parse_pointer(std::string_view p) {
  std::vector<std::string> tokens;
  if (p.empty()) {
    return tokens;
  }
  if (p.front() != '/') {
    return std::nullopt;
  }
  std::size_t start = 1;
  for (;;) {
    const std::size_t slash = p.find('/', start);
    std::string token(p.substr(start, slash == std::string_view::npos ? p.npos : slash - start));
    std::string decoded;
    for (std::size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
        decoded += token[i + 1] == '0' ? '~' : '/';
        ++i;
      } else if (token[i] == '~') {
        return std::nullopt;
      } else {
        decoded += token[i];
      }
    }
    tokens.push_back(std::move(decoded));
    if (slash == std::string_view::npos) {
      return tokens;
    }
    start = slash + 1;
  }
}

std::optional<std::size_t> array_index(const std::string& token, std::size_t size, bool allow_end) {
  if (allow_end && token == "-") {
    return size;
  }
  if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0') ||
      !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const std::size_t i = std::stoul(token);
  if (i > size || (!allow_end && i == size)) {
    return std::nullopt;
  }
  return i;
}

value* resolve(value& root, const std::vector<std::string>& tokens, std::size_t count) {
  value* at = &root;
  for (std::size_t i = 0; i < count; ++i) {
    if (at->is_object()) {
      at = at->as_object().if_contains(tokens[i]);
    } else if (at->is_array()) {
      auto idx = array_index(tokens[i], at->as_array().size(), false);
      at = idx ? &at->as_array()[*idx] : nullptr;
    } else {
      at = nullptr;
    }
    if (at == nullptr) {
      return nullptr;
    }
  }
  return at;
}

std::optional<std::string> pointer_add(value& root, const std::vector<std::string>& t, value v) {
  if (t.empty()) {
    root = std::move(v);
    return std::nullopt;
  }
  value* parent = resolve(root, t, t.size() - 1);
  if (parent == nullptr) {
    return "the parent of the path does not exist";
  }
  if (parent->is_object()) {
    parent->as_object()[t.back()] = std::move(v);
  } else if (parent->is_array()) {
    auto idx = array_index(t.back(), parent->as_array().size(), true);
    if (!idx) {
      return "invalid array index '" + t.back() + "'";
    }
    parent->as_array().insert(parent->as_array().begin() + static_cast<std::ptrdiff_t>(*idx),
                              std::move(v));
  } else {
    return "the parent of the path is not an object or an array";
  }
  return std::nullopt;
}

std::optional<std::string> pointer_remove(value& root, const std::vector<std::string>& t,
                                          value* removed) {
  if (t.empty()) {
    return "cannot remove the whole document";
  }
  value* parent = resolve(root, t, t.size() - 1);
  if (parent != nullptr && parent->is_object()) {
    auto it = parent->as_object().find(t.back());
    if (it == parent->as_object().end()) {
      return "the path does not exist";
    }
    if (removed != nullptr) {
      *removed = it->value();
    }
    parent->as_object().erase(it);
    return std::nullopt;
  }
  if (parent != nullptr && parent->is_array()) {
    auto idx = array_index(t.back(), parent->as_array().size(), false);
    if (!idx) {
      return "invalid array index '" + t.back() + "'";
    }
    if (removed != nullptr) {
      *removed = parent->as_array()[*idx];
    }
    parent->as_array().erase(parent->as_array().begin() + static_cast<std::ptrdiff_t>(*idx));
    return std::nullopt;
  }
  return "the path does not exist";
}

// --- strategic merge patch ----------------------------------------------------------------------

constexpr std::string_view kSetOrder = "$setElementOrder/";
constexpr std::string_view kDeletePrimitive = "$deleteFromPrimitiveList/";

std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

// Removes the $-directives from a value that is inserted as is.
value strip(const value& v) {
  if (v.is_object()) {
    object out;
    for (const auto& kv : v.as_object()) {
      if (!kv.key().starts_with("$")) {
        out[kv.key()] = strip(kv.value());
      }
    }
    return out;
  }
  if (v.is_array()) {
    array out;
    for (const value& e : v.as_array()) {
      out.push_back(strip(e));
    }
    return out;
  }
  return v;
}

bool same_element(const value& a, const value& b, std::span<const std::string_view> keys) {
  if (!a.is_object() || !b.is_object() || keys.empty()) {
    return false;
  }
  const value* pa = a.as_object().if_contains(keys[0]);
  const value* pb = b.as_object().if_contains(keys[0]);
  if (pa == nullptr || pb == nullptr || *pa != *pb) {
    return false;
  }
  for (std::size_t i = 1; i < keys.size(); ++i) {  // secondary keys compare when both carry them
    const value* sa = a.as_object().if_contains(keys[i]);
    const value* sb = b.as_object().if_contains(keys[i]);
    if (sa != nullptr && sb != nullptr && *sa != *sb) {
      return false;
    }
  }
  return true;
}

class Strategic {
 public:
  explicit Strategic(std::string_view kind) : kind_(kind) {}

  // Returns nullopt when the patch deletes the target ($patch: delete).
  std::optional<value> merge(value target, const value& patch, const std::string& path) {
    if (!patch.is_object()) {
      return strip(patch);
    }
    const object& p = patch.as_object();
    if (const value* d = p.if_contains("$patch"); d != nullptr && d->is_string()) {
      if (d->as_string() == "delete") {
        return std::nullopt;
      }
      if (d->as_string() == "replace") {
        return strip(patch);
      }
    }
    if (!target.is_object()) {
      target = object();
    }
    object& t = target.as_object();
    for (const auto& kv : p) {
      const std::string_view key = kv.key();
      if (key.starts_with("$")) {
        continue;
      }
      const value& v = kv.value();
      if (v.is_null()) {
        t.erase(key);
        continue;
      }
      const std::string sub = join(path, key);
      value* existing = t.if_contains(key);
      if (v.is_array()) {
        t[key] =
            merge_list(existing != nullptr && existing->is_array() ? existing->as_array() : array(),
                       v.as_array(), sub);
      } else if (v.is_object()) {
        auto merged = merge(existing != nullptr ? *existing : value(), v, sub);
        if (merged) {
          t[key] = std::move(*merged);
        } else {
          t.erase(key);
        }
      } else {
        t[key] = v;
      }
    }
    for (const auto& kv : p) {
      const std::string_view key = kv.key();
      if (key.starts_with(kDeletePrimitive) && kv.value().is_array()) {
        const std::string_view list = key.substr(kDeletePrimitive.size());
        if (value* l = t.if_contains(list); l != nullptr && l->is_array()) {
          array& items = l->as_array();
          for (const value& gone : kv.value().as_array()) {
            items.erase(std::remove(items.begin(), items.end(), gone), items.end());
          }
        }
      } else if (key.starts_with(kSetOrder) && kv.value().is_array()) {
        const std::string_view list = key.substr(kSetOrder.size());
        if (value* l = t.if_contains(list); l != nullptr && l->is_array()) {
          reorder(l->as_array(), kv.value().as_array(), join(path, list));
        }
      }
    }
    if (const value* retain = p.if_contains("$retainKeys");
        retain != nullptr && retain->is_array()) {
      for (auto it = t.begin(); it != t.end();) {
        const bool kept = std::any_of(retain->as_array().begin(), retain->as_array().end(),
                                      [&](const value& k) { return k == it->key(); });
        it = kept ? std::next(it) : t.erase(it);
      }
    }
    return target;
  }

 private:
  array merge_list(array target, const array& patch, const std::string& path) {
    const ListStrategy s = list_strategy(kind_, path);
    if (s.kind == ListStrategy::Kind::kSet) {
      for (const value& v : patch) {
        if (std::find(target.begin(), target.end(), v) == target.end()) {
          target.push_back(v);
        }
      }
      return target;
    }
    if (s.kind != ListStrategy::Kind::kMap) {
      return strip(value(patch)).as_array();  // atomic: replaced
    }
    // A list-level {"$patch": "replace"} element replaces the whole list.
    for (const value& e : patch) {
      if (e.is_object()) {
        const value* d = e.as_object().if_contains("$patch");
        if (d != nullptr && *d == "replace") {
          array out;
          for (const value& x : patch) {
            if (!(x.is_object() && x.as_object().contains("$patch"))) {
              out.push_back(strip(x));
            }
          }
          return out;
        }
      }
    }
    for (const value& e : patch) {
      auto match = std::find_if(target.begin(), target.end(),
                                [&](const value& t) { return same_element(t, e, s.keys); });
      const value* d = e.is_object() ? e.as_object().if_contains("$patch") : nullptr;
      if (d != nullptr && *d == "delete") {
        target.erase(std::remove_if(target.begin(), target.end(),
                                    [&](const value& t) { return same_element(t, e, s.keys); }),
                     target.end());
      } else if (match != target.end()) {
        auto merged = merge(*match, e, path);
        if (merged) {
          *match = std::move(*merged);
        } else {
          target.erase(match);
        }
      } else {
        target.push_back(strip(e));
      }
    }
    return target;
  }

  // $setElementOrder: the listed elements first, in that order; the others after, in place.
  void reorder(array& items, const array& order, const std::string& path) {
    const ListStrategy s = list_strategy(kind_, path);
    array out;
    std::vector<bool> taken(items.size(), false);
    for (const value& o : order) {
      for (std::size_t i = 0; i < items.size(); ++i) {
        const bool same =
            s.kind == ListStrategy::Kind::kMap ? same_element(items[i], o, s.keys) : items[i] == o;
        if (!taken[i] && same) {
          out.push_back(items[i]);
          taken[i] = true;
          break;
        }
      }
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!taken[i]) {
        out.push_back(items[i]);
      }
    }
    items = std::move(out);
  }

  std::string_view kind_;
};

}  // namespace

value apply_merge_patch(value target, const value& patch) {
  if (!patch.is_object()) {
    return patch;
  }
  if (!target.is_object()) {
    target = object();
  }
  object& t = target.as_object();
  for (const auto& kv : patch.as_object()) {
    if (kv.value().is_null()) {
      t.erase(kv.key());
    } else {
      value* existing = t.if_contains(kv.key());
      t[kv.key()] = apply_merge_patch(existing != nullptr ? *existing : value(), kv.value());
    }
  }
  return target;
}

PatchResult apply_json_patch(value target, const value& patch) {
  if (!patch.is_array()) {
    return fail("a JSON patch must be an array of operations");
  }
  for (const value& opv : patch.as_array()) {
    if (!opv.is_object()) {
      return fail("a JSON patch operation must be an object");
    }
    const object& op = opv.as_object();
    const value* name = op.if_contains("op");
    const value* pathv = op.if_contains("path");
    if (name == nullptr || !name->is_string() || pathv == nullptr || !pathv->is_string()) {
      return fail("a JSON patch operation needs \"op\" and \"path\"");
    }
    const std::string_view what = name->as_string();
    auto path = parse_pointer(pathv->as_string());
    if (!path) {
      return fail("invalid JSON pointer \"" + std::string(pathv->as_string()) + "\"");
    }
    const value* val = op.if_contains("value");
    std::optional<std::string> error;
    if (what == "add" || what == "replace" || what == "test") {
      if (val == nullptr) {
        return fail("\"" + std::string(what) + "\" needs a \"value\"");
      }
    }
    if (what == "add") {
      error = pointer_add(target, *path, *val);
    } else if (what == "remove") {
      error = pointer_remove(target, *path, nullptr);
    } else if (what == "replace") {
      value* at = resolve(target, *path, path->size());
      if (at == nullptr) {
        error = "the path does not exist";
      } else {
        *at = *val;
      }
    } else if (what == "test") {
      value* at = resolve(target, *path, path->size());
      if (at == nullptr || *at != *val) {
        error = "test failed";
      }
    } else if (what == "move" || what == "copy") {
      const value* fromv = op.if_contains("from");
      auto from =
          fromv != nullptr && fromv->is_string() ? parse_pointer(fromv->as_string()) : std::nullopt;
      if (!from) {
        return fail("\"" + std::string(what) + "\" needs a valid \"from\"");
      }
      value moved;
      if (what == "move") {
        error = pointer_remove(target, *from, &moved);
      } else {
        value* at = resolve(target, *from, from->size());
        if (at == nullptr) {
          error = "the \"from\" path does not exist";
        } else {
          moved = *at;
        }
      }
      if (!error) {
        error = pointer_add(target, *path, std::move(moved));
      }
    } else {
      return fail("unknown JSON patch operation \"" + std::string(what) + "\"");
    }
    if (error) {
      return fail(std::string(what) + " " + std::string(pathv->as_string()) + ": " + *error);
    }
  }
  return target;
}

PatchResult apply_strategic_merge_patch(value target, const value& patch, std::string_view kind) {
  if (!patch.is_object()) {
    return fail("a strategic merge patch must be a JSON object");
  }
  auto merged = Strategic(kind).merge(std::move(target), patch, "");
  if (!merged) {
    return fail("a strategic merge patch cannot delete the whole object");
  }
  return std::move(*merged);
}

}  // namespace archipel::kube
