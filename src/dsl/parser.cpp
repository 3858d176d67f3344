// Recursive-descent parser for grammar/scope.ebnf. One function per production; recursion depth
// is bounded by kMaxNesting (counted at '('), so no input can exhaust the stack.

#include "archipel/dsl/scope.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <utility>

namespace archipel::dsl {

// Builds operator nodes in place, for the parser: no temporary operand vector, and the node is
// not moved through the normalising constructors.
class ScopeExprBuilder {
 public:
  // Makes `e` an operator node of `kind` whose first operand is what `e` was, and returns its
  // operand list for the parser to append to.
  static std::vector<ScopeExpr>& open(ScopeExpr& e, ScopeExpr::Kind kind) {
    ScopeExpr first = std::move(e);
    e.kind_ = kind;
    e.name_.clear();
    e.column_ = 0;
    e.operands_.clear();
    e.operands_.reserve(4);
    e.operands_.push_back(std::move(first));
    return e.operands_;
  }
  // Normalises once every operand is in.
  static void close(ScopeExpr& e) { e.flatten(); }
};

namespace {

enum class Tok : unsigned char {
  kWord,
  kLocal,
  kAnd,
  kOr,
  kOpen,
  kClose,
  kColon,
  kComma,
  kStar,
  kEnd,
  kBad
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;   // the token's bytes (for kBad: one whole UTF-8 sequence or byte)
  std::size_t column = 0;  // 1-based, in code points
  bool label = false;      // kWord: whether it is a DNS-1123 label
};

// Byte classes, as bits. Words are lexed generously (uppercase, '_', '-' first) so that a
// near-miss is reported as an invalid name, which says what a name may hold, rather than as a
// stray character. While a word is scanned its bits are or-ed, which tells whether it is a
// DNS-1123 label without a second pass.
enum ByteClass : std::uint8_t {
  kOther = 0,
  kSpace = 1,
  kWordByte = 2,    // may start and continue a word
  kInWordByte = 4,  // may continue a word ('.', between resource and group)
  kNotLabel = 8,    // not allowed in a DNS-1123 label
  kHyphen = 16,     // allowed inside a label, not at its ends
};

constexpr std::array<std::uint8_t, 256> kByteClass = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      t[static_cast<std::size_t>(c)] = kWordByte;
    } else if ((c >= 'A' && c <= 'Z') || c == '_') {
      t[static_cast<std::size_t>(c)] = kWordByte | kNotLabel;
    }
  }
  t['-'] = kWordByte | kHyphen;
  t['.'] = kInWordByte | kNotLabel;  // alone it is the receiving site
  t[' '] = kSpace;
  t['\t'] = kSpace;
  return t;
}();

std::uint8_t byte_class(char c) {
  return kByteClass[static_cast<unsigned char>(c)];
}

// Splits the input into tokens. Every token but kBad is ASCII, so the column (in code points) is
// the byte offset less the UTF-8 continuation bytes met so far, which only kBad tokens hold.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Token next() {
    const std::size_t size = text_.size();
    std::size_t pos = pos_;
    while (pos < size && byte_class(text_[pos]) == kSpace) {
      ++pos;
    }
    Token t;
    t.column = pos - continuations_ + 1;
    if (pos == size) {
      pos_ = pos;
      return t;
    }
    const std::size_t start = pos;
    const char c = text_[pos++];
    switch (c) {
      case '&': t.kind = Tok::kAnd; break;
      case '|': t.kind = Tok::kOr; break;
      case '(': t.kind = Tok::kOpen; break;
      case ')': t.kind = Tok::kClose; break;
      case ':': t.kind = Tok::kColon; break;
      case ',': t.kind = Tok::kComma; break;
      case '*': t.kind = Tok::kStar; break;
      case '.': t.kind = Tok::kLocal; break;
      default:
        if ((byte_class(c) & kWordByte) != 0) {
          std::uint8_t seen = byte_class(c);
          std::uint8_t last = seen;
          while (pos < size && (byte_class(text_[pos]) & (kWordByte | kInWordByte)) != 0) {
            last = byte_class(text_[pos++]);
            seen |= last;
          }
          t.kind = Tok::kWord;
          t.label = (seen & kNotLabel) == 0 && ((byte_class(c) | last) & kHyphen) == 0 &&
                    pos - start <= 63;
        } else {  // one whole UTF-8 sequence (or a lone byte), reported as it is
          t.kind = Tok::kBad;
          while (pos < size && pos - start < 4 &&
                 (static_cast<unsigned char>(text_[pos]) & 0xC0) == 0x80) {
            ++pos;
            ++continuations_;
          }
        }
    }
    t.text = text_.substr(start, pos - start);
    pos_ = pos;
    return t;
  }

  /// The first byte of the next token, without consuming it ('\0' at the end).
  char next_byte() const {
    std::size_t pos = pos_;
    while (pos < text_.size() && byte_class(text_[pos]) == kSpace) {
      ++pos;
    }
    return pos < text_.size() ? text_[pos] : '\0';
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t continuations_ = 0;
};

std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  out += text;
  out += '\'';
  return out;
}

// How a token is named in messages.
std::string describe(const Token& t) {
  if (t.kind == Tok::kEnd) {
    return "the end";
  }
  const auto b = static_cast<unsigned char>(t.text.front());
  if (t.kind == Tok::kBad && (b < 0x20 || b == 0x7f)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", b);
    return quote(hex);
  }
  return quote(t.text);
}

struct Failure {
  errc code;
  std::string message;
  std::size_t column;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : lexer_(text) { advance(); }

  // The parse functions build into an out-parameter and return false on the first error (kept
  // in failure_): the tree is built in place rather than moved up through every level.
  bool scope(Scope& s) {
    if (at_binding_start()) {
      return bindings(s);
    }
    s.bindings.resize(1);
    s.bindings.front().resource.plural = "*";
    if (!expr(0, s.bindings.front().expr)) {
      return false;
    }
    if (cur_.kind != Tok::kEnd) {
      return fail_after_operand(0);
    }
    return true;
  }

  Failure& failure() { return *failure_; }
  bool at_end() const { return cur_.kind == Tok::kEnd; }

 private:
  // bindings = binding { "," binding }
  bool bindings(Scope& s) {
    s.bindings.reserve(4);
    boost::container::small_vector<std::size_t, 8> columns;  // where each resource was written
    for (;;) {
      const Token resource_token = cur_;
      Binding& binding = s.bindings.emplace_back();
      if (!resource_pattern(binding.resource)) {
        return false;
      }
      for (std::size_t i = 0; i + 1 < s.bindings.size(); ++i) {
        if (s.bindings[i].resource == binding.resource) {
          return fail(errc::duplicate_binding,
                      "resource " + describe(resource_token) + " is bound twice (first at column " +
                          std::to_string(columns[i]) + ")",
                      resource_token.column);
        }
      }
      if (cur_.kind != Tok::kColon) {
        return fail(errc::expected_binding,
                    "expected ':' after resource " + describe(resource_token), cur_.column);
      }
      advance();
      if (!expr(0, binding.expr)) {
        return false;
      }
      columns.push_back(resource_token.column);
      if (cur_.kind == Tok::kEnd) {
        return true;
      }
      if (cur_.kind != Tok::kComma) {
        return fail_after_operand(0);
      }
      advance();
      if (!at_binding_start()) {
        return fail(errc::expected_binding,
                    "expected 'resource: expression' after ',' (e.g. 'pods: paris')", cur_.column);
      }
    }
  }

  bool at_binding_start() const {
    if (cur_.kind == Tok::kStar) {
      return true;
    }
    if (cur_.kind != Tok::kWord) {
      return false;
    }
    return lexer_.next_byte() == ':';
  }

  // resource = "*" | label { "." label }
  bool resource_pattern(ResourcePattern& r) {
    if (cur_.kind == Tok::kStar) {
      advance();
      r.plural = "*";
      return true;
    }
    const std::string_view text = cur_.text;
    const std::size_t dot = text.find('.');
    r.plural = text.substr(0, dot);
    r.group = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    bool valid = dot == std::string_view::npos ? cur_.label : is_dns1123_label(r.plural);
    for (std::size_t begin = dot; valid && begin != std::string_view::npos;) {
      const std::size_t end = text.find('.', begin + 1);
      valid = is_dns1123_label(text.substr(begin + 1, end - begin - 1));
      begin = end;
    }
    if (!valid) {
      return fail(errc::invalid_resource_name,
                  "invalid resource " + describe(cur_) +
                      " (a lowercase plural such as 'pods' or 'deployments.apps', or '*')",
                  cur_.column);
    }
    advance();
    return true;
  }

  // expr = term { "|" term }
  bool expr(std::size_t depth, ScopeExpr& out) {
    if (!term(depth, out) || cur_.kind != Tok::kOr) {
      return failure_ == std::nullopt;
    }
    std::vector<ScopeExpr>& operands = ScopeExprBuilder::open(out, ScopeExpr::Kind::kAnyOf);
    while (cur_.kind == Tok::kOr) {
      advance();
      if (!term(depth, operands.emplace_back())) {
        return false;
      }
    }
    ScopeExprBuilder::close(out);
    return true;
  }

  // term = factor { "&" factor }
  bool term(std::size_t depth, ScopeExpr& out) {
    if (!factor(depth, out) || cur_.kind != Tok::kAnd) {
      return failure_ == std::nullopt;
    }
    std::vector<ScopeExpr>& operands = ScopeExprBuilder::open(out, ScopeExpr::Kind::kAllOf);
    while (cur_.kind == Tok::kAnd) {
      advance();
      if (!factor(depth, operands.emplace_back())) {
        return false;
      }
    }
    ScopeExprBuilder::close(out);
    return true;
  }

  // factor = site | "(" expr ")"
  bool factor(std::size_t depth, ScopeExpr& out) {
    switch (cur_.kind) {
      case Tok::kWord: {
        if (!cur_.label) {
          return fail(errc::invalid_site_name,
                      "invalid site name " + describe(cur_) +
                          " (a DNS-1123 label: at most 63 lowercase letters, digits and '-')",
                      cur_.column);
        }
        if (++sites_ > kMaxSites) {
          return fail(errc::too_many_sites,
                      "more than " + std::to_string(kMaxSites) + " site names", cur_.column);
        }
        out.set_site(cur_.text, cur_.column);
        advance();
        return true;
      }
      case Tok::kLocal: {
        if (++sites_ > kMaxSites) {
          return fail(errc::too_many_sites,
                      "more than " + std::to_string(kMaxSites) + " site names", cur_.column);
        }
        out = ScopeExpr::local(cur_.column);
        advance();
        return true;
      }
      case Tok::kOpen: {
        const Token open = cur_;
        if (depth + 1 > kMaxNesting) {
          return fail(errc::too_deep,
                      "parentheses nested deeper than " + std::to_string(kMaxNesting) + " levels",
                      open.column);
        }
        advance();
        if (!expr(depth + 1, out)) {
          return false;
        }
        if (cur_.kind != Tok::kClose) {
          if (cur_.kind == Tok::kEnd) {
            return fail(errc::unbalanced_parenthesis,
                        "missing ')' (opened at column " + std::to_string(open.column) + ")",
                        cur_.column);
          }
          return fail_after_operand(depth + 1);
        }
        advance();
        return true;
      }
      case Tok::kBad: return fail_unexpected_character();
      case Tok::kClose:
        if (prev_.kind == Tok::kOpen) {
          return fail(errc::expected_site, "empty parentheses", cur_.column);
        }
        [[fallthrough]];
      default: {
        std::string where = prev_.kind == Tok::kEnd ? "" : " after " + describe(prev_);
        return fail(errc::expected_site, "expected a site name or '('" + where, cur_.column);
      }
    }
  }

  // The token after a complete operand is not one that may follow it.
  bool fail_after_operand(std::size_t depth) {
    switch (cur_.kind) {
      case Tok::kBad: return fail_unexpected_character();
      case Tok::kClose:
        return fail(errc::unbalanced_parenthesis, "')' without a matching '('", cur_.column);
      case Tok::kWord:
      case Tok::kLocal:
      case Tok::kOpen:
        return fail(errc::expected_operator,
                    "expected '&' or '|' between " + describe(prev_) + " and " + describe(cur_),
                    cur_.column);
      case Tok::kComma:
        if (depth == 0) {
          return fail(errc::expected_operator,
                      "unexpected ','; ',' separates bindings such as 'pods: paris, *: .' "
                      "(use '&' for all of several sites)",
                      cur_.column);
        }
        break;
      case Tok::kColon:
        return fail(errc::expected_operator,
                    "unexpected ':'; a binding 'resource: expression' starts the scope or "
                    "follows a ','",
                    cur_.column);
      default: break;
    }
    return fail(errc::expected_operator,
                std::string("expected '&', '|'") + (depth > 0 ? " or ')'" : " or the end") +
                    " after " + describe(prev_),
                cur_.column);
  }

  bool fail_unexpected_character() {
    return fail(errc::unexpected_character, "unexpected character " + describe(cur_), cur_.column);
  }

  bool fail(errc code, std::string message, std::size_t column) {
    if (!failure_) {
      failure_ = Failure{code, std::move(message), column};
    }
    return false;
  }

  void advance() {
    prev_ = cur_;
    cur_ = lexer_.next();
  }

  Lexer lexer_;
  Token cur_;
  Token prev_;
  std::size_t sites_ = 0;
  std::optional<Failure> failure_;
};

}  // namespace

boost::system::result<Scope, ScopeError> parse_scope(std::string_view text) {
  // Whitespace is free (the canonical form adds some), so the limit counts the other bytes;
  // kMaxRawBytes bounds the work on whitespace padding.
  const auto blanks =
      text.size() <= kMaxExpressionBytes
          ? 0
          : static_cast<std::size_t>(std::count_if(text.begin(), text.end(),
                                                   [](char c) { return c == ' ' || c == '\t'; }));
  if (text.size() > kMaxRawBytes || text.size() - blanks > kMaxExpressionBytes) {
    return ScopeError{errc::too_long,
                      "scope expression is " + std::to_string(text.size() - blanks) +
                          " bytes long without whitespace (" + std::to_string(text.size()) +
                          " with); the limits are " + std::to_string(kMaxExpressionBytes) +
                          " and " + std::to_string(kMaxRawBytes),
                      0, std::string(text.substr(0, 120))};
  }
  Parser parser(text);
  if (parser.at_end()) {
    return ScopeError{errc::empty_expression,
                      "empty scope expression (name a site, e.g. 'paris', or '.' for this site)", 0,
                      std::string(text)};
  }
  // A default Scope, built in place and returned by name only (so that it is never moved).
  boost::system::result<Scope, ScopeError> result;
  if (parser.scope(*result)) {
    result->source = text;
  } else {
    Failure& f = parser.failure();
    f.message += " at column " + std::to_string(f.column);
    result = ScopeError{f.code, std::move(f.message), f.column, std::string(text)};
  }
  return result;
}

}  // namespace archipel::dsl
