#pragma once

// Label and field selectors as the Kubernetes API accepts them in `labelSelector` and
// `fieldSelector` query parameters. Pure: parsing and matching only.

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace archipel::kube {

/// "app=web,tier!=db,env in (prod,staging),!legacy,release": every requirement must hold.
class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };

  /// Parses a selector; the error is a sentence for a 400 BadRequest. Empty text selects all.
  static boost::system::result<LabelSelector, std::string> parse(std::string_view text);

  /// Whether an object's metadata.labels satisfy every requirement.
  [[nodiscard]] bool matches(const boost::json::object& object) const;
  [[nodiscard]] bool empty() const noexcept { return requirements_.empty(); }
  [[nodiscard]] const std::vector<Requirement>& requirements() const noexcept {
    return requirements_;
  }

 private:
  std::vector<Requirement> requirements_;
};

/// "metadata.name=x,status.phase!=Running": equality and inequality on a fixed set of fields
/// (metadata.name, metadata.namespace, and status.phase for pods).
class FieldSelector {
 public:
  struct Requirement {
    std::string field;
    bool equals;
    std::string value;
  };

  /// `supported` lists the fields this resource may be selected on.
  static boost::system::result<FieldSelector, std::string> parse(
      std::string_view text, const std::vector<std::string_view>& supported);

  [[nodiscard]] bool matches(const boost::json::object& object) const;
  [[nodiscard]] bool empty() const noexcept { return requirements_.empty(); }

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace archipel::kube
