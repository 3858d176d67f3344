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

  // Lexes the next token into `t`.
  void next(Token& t) {
    const std::size_t size = text_.size();
    std::size_t pos = pos_;
    while (pos < size && byte_class(text_[pos]) == kSpace) {
      ++pos;
    }
    t.column = pos - continuations_ + 1;
    t.label = false;
    if (pos == size) {
      t.kind = Tok::kEnd;
      t.text = {};
      pos_ = pos;
      return;
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

}  // namespace

// The parser, a friend of Scope: it appends nodes to the scope being built.
class ScopeParser {
 public:
  // Names are spans of the source: it is copied first, so the scope's views are valid while
  // it is being built.
  ScopeParser(std::string_view text, Scope& scope) : text_(text), scope_(scope), lexer_(text) {
    scope_.source_ = text;
    advance();
  }

  // Parses the whole text into the scope; false on the first error (see failure()).
  bool parse() { return scope(); }

  Failure& failure() { return *failure_; }
  bool at_end() const { return cur().kind == Tok::kEnd; }

 private:
  // The parse functions return false on the first error (kept in failure_); an expression's
  // result is the index of its node in the scope.
  bool scope() {
    if (at_binding_start()) {
      return bindings();
    }
    Scope::BindingNode& binding = scope_.bindings_.emplace_back();
    binding.wildcard = true;
    if (!expr(0, binding.root)) {
      return false;
    }
    if (cur().kind != Tok::kEnd) {
      return fail_after_operand(0);
    }
    return true;
  }

  // bindings = binding { "," binding }
  bool bindings() {
    auto& bindings = scope_.bindings_;
    boost::container::small_vector<std::size_t, 8> columns;  // where each resource was written
    for (;;) {
      const std::string_view resource_text = cur().text;
      const std::size_t resource_column = cur().column;
      if (!resource_pattern(bindings.emplace_back())) {
        return false;
      }
      const std::size_t index = bindings.size() - 1;
      for (std::size_t i = 0; i < index; ++i) {
        if (scope_.binding(i).resource == scope_.binding(index).resource) {
          return fail(errc::duplicate_binding,
                      "resource " + quote(resource_text) + " is bound twice (first at column " +
                          std::to_string(columns[i]) + ")",
                      resource_column);
        }
      }
      if (cur().kind != Tok::kColon) {
        return fail(errc::expected_binding, "expected ':' after resource " + quote(resource_text),
                    cur().column);
      }
      advance();
      if (!expr(0, bindings[index].root)) {
        return false;
      }
      columns.push_back(resource_column);
      if (cur().kind == Tok::kEnd) {
        return true;
      }
      if (cur().kind != Tok::kComma) {
        return fail_after_operand(0);
      }
      advance();
      if (!at_binding_start()) {
        return fail(errc::expected_binding,
                    "expected 'resource: expression' after ',' (e.g. 'pods: paris')", cur().column);
      }
    }
  }

  bool at_binding_start() const {
    if (cur().kind == Tok::kStar) {
      return true;
    }
    if (cur().kind != Tok::kWord) {
      return false;
    }
    return lexer_.next_byte() == ':';
  }

  // resource = "*" | label { "." label }
  bool resource_pattern(Scope::BindingNode& binding) {
    if (cur().kind == Tok::kStar) {
      advance();
      binding.wildcard = true;
      return true;
    }
    const std::string_view text = cur().text;
    const std::size_t dot = text.find('.');
    const std::string_view plural = text.substr(0, dot);
    binding.plural = span(plural);
    if (dot != std::string_view::npos) {
      binding.group = span(text.substr(dot + 1));
    }
    bool valid = dot == std::string_view::npos ? cur().label : is_dns1123_label(plural);
    for (std::size_t begin = dot; valid && begin != std::string_view::npos;) {
      const std::size_t end = text.find('.', begin + 1);
      valid = is_dns1123_label(text.substr(begin + 1, end - begin - 1));
      begin = end;
    }
    if (!valid) {
      return fail(errc::invalid_resource_name,
                  "invalid resource " + describe(cur()) +
                      " (a lowercase plural such as 'pods' or 'deployments.apps', or '*')",
                  cur().column);
    }
    advance();
    return true;
  }

  // expr = term { "|" term }
  bool expr(std::size_t depth, std::uint32_t& out) {
    return chain(depth, out, Tok::kOr, ScopeExpr::Kind::kAnyOf, &ScopeParser::term);
  }

  // term = factor { "&" factor }
  bool term(std::size_t depth, std::uint32_t& out) {
    return chain(depth, out, Tok::kAnd, ScopeExpr::Kind::kAllOf, &ScopeParser::factor);
  }

  // operand { op operand }: one operand is returned as is; several become one operator node,
  // into which operands of its own kind (parenthesised) are spliced (associativity).
  bool chain(std::size_t depth, std::uint32_t& out, Tok op, ScopeExpr::Kind kind,
             bool (ScopeParser::*operand)(std::size_t, std::uint32_t&)) {
    if (!(this->*operand)(depth, out) || cur().kind != op) {
      return failure_ == std::nullopt;
    }
    const auto node = static_cast<std::uint32_t>(scope_.nodes_.size());
    scope_.nodes_.emplace_back().kind = kind;
    std::uint32_t last = Scope::kNone;
    append(node, last, out);
    while (cur().kind == op) {
      advance();
      std::uint32_t next = Scope::kNone;
      if (!(this->*operand)(depth, next)) {
        return false;
      }
      append(node, last, next);
    }
    out = node;
    return true;
  }

  // Appends `operand` to the operator node `op` whose last operand is `last`.
  void append(std::uint32_t op, std::uint32_t& last, std::uint32_t operand) {
    auto& nodes = scope_.nodes_;
    std::uint32_t first = operand;
    std::uint32_t count = 1;
    std::uint32_t end = operand;
    if (nodes[operand].kind == nodes[op].kind) {  // splice its operands instead
      first = nodes[operand].first;
      count = nodes[operand].count;
      end = first;
      while (nodes[end].next != Scope::kNone) {
        end = nodes[end].next;
      }
    }
    if (last == Scope::kNone) {
      nodes[op].first = first;
    } else {
      nodes[last].next = first;
    }
    nodes[op].count += count;
    last = end;
  }

  // factor = site | "(" expr ")"
  bool factor(std::size_t depth, std::uint32_t& out) {
    switch (cur().kind) {
      case Tok::kWord: {
        if (!cur().label) {
          return fail(errc::invalid_site_name,
                      "invalid site name " + describe(cur()) +
                          " (a DNS-1123 label: at most 63 lowercase letters, digits and '-')",
                      cur().column);
        }
        if (++sites_ > kMaxSites) {
          return fail(errc::too_many_sites,
                      "more than " + std::to_string(kMaxSites) + " site names", cur().column);
        }
        const Scope::Span name = span(cur().text);
        out = add_leaf(ScopeExpr::Kind::kSite, name.offset, name.size);
        advance();
        return true;
      }
      case Tok::kLocal: {
        if (++sites_ > kMaxSites) {
          return fail(errc::too_many_sites,
                      "more than " + std::to_string(kMaxSites) + " site names", cur().column);
        }
        out = add_leaf(ScopeExpr::Kind::kLocal, Scope::kNone, 0);
        advance();
        return true;
      }
      case Tok::kOpen: {
        const std::size_t open_column = cur().column;
        if (depth + 1 > kMaxNesting) {
          return fail(errc::too_deep,
                      "parentheses nested deeper than " + std::to_string(kMaxNesting) + " levels",
                      open_column);
        }
        advance();
        if (!expr(depth + 1, out)) {
          return false;
        }
        if (cur().kind != Tok::kClose) {
          if (cur().kind == Tok::kEnd) {
            return fail(errc::unbalanced_parenthesis,
                        "missing ')' (opened at column " + std::to_string(open_column) + ")",
                        cur().column);
          }
          return fail_after_operand(depth + 1);
        }
        advance();
        return true;
      }
      case Tok::kBad: return fail_unexpected_character();
      case Tok::kClose:
        if (prev().kind == Tok::kOpen) {
          return fail(errc::expected_site, "empty parentheses", cur().column);
        }
        [[fallthrough]];
      default: {
        std::string where = prev().kind == Tok::kEnd ? "" : " after " + describe(prev());
        return fail(errc::expected_site, "expected a site name or '('" + where, cur().column);
      }
    }
  }

  std::uint32_t add_leaf(ScopeExpr::Kind kind, std::uint32_t first, std::uint32_t count) {
    // Field by field into the array: a Node built aside and copied in would be read back with
    // wide loads right after narrow stores, which stalls.
    const auto node = static_cast<std::uint32_t>(scope_.nodes_.size());
    Scope::Node& n = scope_.nodes_.emplace_back();
    n.kind = kind;
    n.column = static_cast<std::uint32_t>(cur().column);
    n.first = first;
    n.count = count;
    return node;
  }

  // Where a piece of the input (a view into text_) is in the scope's source.
  Scope::Span span(std::string_view piece) const {
    return {static_cast<std::uint32_t>(piece.data() - text_.data()),
            static_cast<std::uint32_t>(piece.size())};
  }

  // The token after a complete operand is not one that may follow it.
  bool fail_after_operand(std::size_t depth) {
    switch (cur().kind) {
      case Tok::kBad: return fail_unexpected_character();
      case Tok::kClose:
        return fail(errc::unbalanced_parenthesis, "')' without a matching '('", cur().column);
      case Tok::kWord:
      case Tok::kLocal:
      case Tok::kOpen:
        return fail(errc::expected_operator,
                    "expected '&' or '|' between " + describe(prev()) + " and " + describe(cur()),
                    cur().column);
      case Tok::kComma:
        if (depth == 0) {
          return fail(errc::expected_operator,
                      "unexpected ','; ',' separates bindings such as 'pods: paris, *: .' "
                      "(use '&' for all of several sites)",
                      cur().column);
        }
        break;
      case Tok::kColon:
        return fail(errc::expected_operator,
                    "unexpected ':'; a binding 'resource: expression' starts the scope or "
                    "follows a ','",
                    cur().column);
      default: break;
    }
    return fail(errc::expected_operator,
                std::string("expected '&', '|'") + (depth > 0 ? " or ')'" : " or the end") +
                    " after " + describe(prev()),
                cur().column);
  }

  bool fail_unexpected_character() {
    return fail(errc::unexpected_character, "unexpected character " + describe(cur()),
                cur().column);
  }

  bool fail(errc code, std::string message, std::size_t column) {
    if (!failure_) {
      failure_ = Failure{code, std::move(message), column};
    }
    return false;
  }

  // The current and previous tokens live in two slots that swap roles: a token is written once,
  // by the lexer, and never copied.
  void advance() {
    current_ ^= 1U;
    lexer_.next(tokens_[current_]);
  }
  const Token& cur() const { return tokens_[current_]; }
  const Token& prev() const { return tokens_[current_ ^ 1U]; }

  std::string_view text_;
  Scope& scope_;
  Lexer lexer_;
  std::array<Token, 2> tokens_;
  unsigned current_ = 0;
  std::size_t sites_ = 0;
  std::optional<Failure> failure_;
};

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
  // The Scope is built in place in the result, which is returned by name (never moved).
  boost::system::result<Scope, ScopeError> result;
  Scope& scope = *result;
  ScopeParser parser(text, scope);
  if (parser.at_end()) {
    result = ScopeError{errc::empty_expression,
                        "empty scope expression (name a site, e.g. 'paris', or '.' for this site)",
                        0, std::string(text)};
  } else if (!parser.parse()) {
    Failure& f = parser.failure();
    f.message += " at column " + std::to_string(f.column);
    result = ScopeError{f.code, std::move(f.message), f.column, std::string(text)};
  }
  return result;
}

}  // namespace archipel::dsl
