#include "archipel/kube/selector.hpp"

#include <algorithm>
#include <cctype>

namespace archipel::kube {
namespace {

using Error = boost::system::result<LabelSelector, std::string>;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// Label keys: optional DNS-subdomain prefix and '/', then a name of [A-Za-z0-9._-], at most 63,
// alphanumeric at both ends. Values: empty or the same character set.
bool is_label_name(std::string_view s) {
  if (s.empty() || s.size() > 63) {
    return false;
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  return alnum(s.front()) && alnum(s.back()) && std::all_of(s.begin(), s.end(), [&](char c) {
           return alnum(c) || c == '-' || c == '_' || c == '.';
         });
}

bool is_label_key(std::string_view s) {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) {
    return is_label_name(s);
  }
  const std::string_view prefix = s.substr(0, slash);
  return !prefix.empty() && prefix.size() <= 253 &&
         std::all_of(prefix.begin(), prefix.end(),
                     [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                              c == '.';
                     }) &&
         is_label_name(s.substr(slash + 1));
}

bool is_label_value(std::string_view s) {
  return s.empty() || is_label_name(s);
}

// Splits on commas outside parentheses.
std::vector<std::string_view> split_requirements(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') {
      ++depth;
    } else if (text[i] == ')') {
      --depth;
    } else if (text[i] == ',' && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

const boost::json::object* labels_of(const boost::json::object& object) {
  const auto* metadata = object.if_contains("metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    return nullptr;
  }
  const auto* labels = metadata->as_object().if_contains("labels");
  return labels != nullptr && labels->is_object() ? &labels->as_object() : nullptr;
}

}  // namespace

boost::system::result<LabelSelector, std::string> LabelSelector::parse(std::string_view text) {
  LabelSelector selector;
  if (trim(text).empty()) {
    return selector;
  }
  auto fail = [&](std::string why) {
    return Error(boost::system::in_place_error, "unable to parse requirement: " + why +
                                                    " in selector \"" + std::string(text) + "\"");
  };
  for (std::string_view raw : split_requirements(text)) {
    std::string_view req = trim(raw);
    if (req.empty()) {
      return fail("empty requirement");
    }
    Requirement r;
    if (req.front() == '!') {
      r.key = std::string(trim(req.substr(1)));
      r.op = Op::kDoesNotExist;
    } else if (std::size_t pos = req.find("!="); pos != std::string_view::npos) {
      r.key = std::string(trim(req.substr(0, pos)));
      r.op = Op::kNotEquals;
      r.values.emplace_back(trim(req.substr(pos + 2)));
    } else if (std::size_t pos2 = req.find("=="); pos2 != std::string_view::npos) {
      r.key = std::string(trim(req.substr(0, pos2)));
      r.op = Op::kEquals;
      r.values.emplace_back(trim(req.substr(pos2 + 2)));
    } else if (std::size_t pos3 = req.find('='); pos3 != std::string_view::npos) {
      r.key = std::string(trim(req.substr(0, pos3)));
      r.op = Op::kEquals;
      r.values.emplace_back(trim(req.substr(pos3 + 1)));
    } else if (std::size_t open = req.find('('); open != std::string_view::npos) {
      const std::size_t close = req.rfind(')');
      if (close == std::string_view::npos || close < open || !trim(req.substr(close + 1)).empty()) {
        return fail("missing ')'");
      }
      std::string_view head = trim(req.substr(0, open));
      const std::size_t space = head.find_last_of(" \t");
      if (space == std::string_view::npos) {
        return fail("expected 'in' or 'notin' before '('");
      }
      const std::string_view op = head.substr(space + 1);
      if (op == "in") {
        r.op = Op::kIn;
      } else if (op == "notin") {
        r.op = Op::kNotIn;
      } else {
        return fail("unknown operator '" + std::string(op) + "'");
      }
      r.key = std::string(trim(head.substr(0, space)));
      for (std::string_view v : split_requirements(req.substr(open + 1, close - open - 1))) {
        r.values.emplace_back(trim(v));
      }
    } else {
      r.key = std::string(req);
      r.op = Op::kExists;
    }
    if (!is_label_key(r.key)) {
      return fail("invalid label key \"" + r.key + "\"");
    }
    for (const std::string& v : r.values) {
      if (!is_label_value(v)) {
        return fail("invalid label value \"" + v + "\"");
      }
    }
    selector.requirements_.push_back(std::move(r));
  }
  return selector;
}

bool LabelSelector::matches(const boost::json::object& object) const {
  const boost::json::object* labels = labels_of(object);
  for (const Requirement& r : requirements_) {
    const boost::json::value* v = labels != nullptr ? labels->if_contains(r.key) : nullptr;
    const bool present = v != nullptr && v->is_string();
    const std::string_view value = present ? std::string_view(v->as_string()) : std::string_view();
    const bool listed =
        present && std::find(r.values.begin(), r.values.end(), value) != r.values.end();
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!listed) {
          return false;
        }
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (listed) {
          return false;
        }
        break;
      case Op::kExists:
        if (!present) {
          return false;
        }
        break;
      case Op::kDoesNotExist:
        if (present) {
          return false;
        }
        break;
    }
  }
  return true;
}

boost::system::result<FieldSelector, std::string> FieldSelector::parse(
    std::string_view text, const std::vector<std::string_view>& supported) {
  using R = boost::system::result<FieldSelector, std::string>;
  FieldSelector selector;
  if (trim(text).empty()) {
    return selector;
  }
  for (std::string_view raw : split_requirements(text)) {
    std::string_view req = trim(raw);
    Requirement r;
    std::size_t pos = req.find("!=");
    std::size_t skip = 2;
    r.equals = pos == std::string_view::npos;
    if (r.equals) {
      pos = req.find("==");
      if (pos == std::string_view::npos) {
        pos = req.find('=');
        skip = 1;
      }
    }
    if (pos == std::string_view::npos) {
      return R(boost::system::in_place_error,
               "invalid field selector: \"" + std::string(req) + "\": expected FIELD=VALUE");
    }
    r.field = std::string(trim(req.substr(0, pos)));
    r.value = std::string(trim(req.substr(pos + skip)));
    if (std::find(supported.begin(), supported.end(), r.field) == supported.end()) {
      return R(boost::system::in_place_error, "field label not supported: " + r.field);
    }
    selector.requirements_.push_back(std::move(r));
  }
  return selector;
}

bool FieldSelector::matches(const boost::json::object& object) const {
  for (const Requirement& r : requirements_) {
    // "metadata.name" → object["metadata"]["name"]
    const boost::json::value* v = nullptr;
    const boost::json::object* at = &object;
    std::string_view path = r.field;
    while (at != nullptr) {
      const std::size_t dot = path.find('.');
      v = at->if_contains(path.substr(0, dot));
      if (dot == std::string_view::npos || v == nullptr) {
        break;
      }
      path.remove_prefix(dot + 1);
      at = v->is_object() ? &v->as_object() : nullptr;
      v = nullptr;
    }
    const std::string_view value =
        v != nullptr && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
    if ((value == r.value) != r.equals) {
      return false;
    }
  }
  return true;
}

}  // namespace archipel::kube
