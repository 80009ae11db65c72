#include "text/json_schema_parts.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "core/error.h"
#include "text/jinja_value.h"

namespace eight::text {

namespace {

constexpr int kMaxDigits = 16;

int64_t pow10(int n) {
  int64_t v = 1;
  while (n-- > 0) v *= 10;
  return v;
}

// Equal-length decimal strings x ≤ y: the numbers between them, digit by digit.
std::string same_length_range(const std::string& x, const std::string& y) {
  if (x.size() == 1) return x == y ? cat("\"", x, "\"") : cat("[", x, "-", y, "]");
  if (x[0] == y[0]) return cat("\"", x[0], "\" ", same_length_range(x.substr(1), y.substr(1)));
  const std::string xr = x.substr(1), yr = y.substr(1);
  const bool x_zeros = xr.find_first_not_of('0') == std::string::npos;
  const bool y_nines = yr.find_first_not_of('9') == std::string::npos;
  std::vector<std::string> alts;
  if (!x_zeros)
    alts.push_back(cat("\"", x[0], "\" ", same_length_range(xr, std::string(xr.size(), '9'))));
  const char from = x_zeros ? x[0] : static_cast<char>(x[0] + 1);
  const char to = y_nines ? y[0] : static_cast<char>(y[0] - 1);
  if (from <= to)
    alts.push_back(cat(from == to ? cat("\"", from, "\"") : cat("[", from, "-", to, "]"), " [0-9]{",
                       xr.size(), "}"));
  if (!y_nines)
    alts.push_back(cat("\"", y[0], "\" ", same_length_range(std::string(yr.size(), '0'), yr)));
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += cat(i ? " | " : "", alts[i]);
  return out + ")";
}

// Non-negative integers in [a, b] (b < 0: up to kMaxDigits digits).
std::string nonneg_range(int64_t a, int64_t b) {
  const int64_t top = b < 0 ? pow10(kMaxDigits) - 1 : b;
  std::vector<std::string> alts;
  for (int len = 1; len <= kMaxDigits; ++len) {
    const int64_t x = std::max(a, len == 1 ? 0 : pow10(len - 1));
    const int64_t y = std::min(top, pow10(len) - 1);
    if (x <= y) alts.push_back(same_length_range(std::to_string(x), std::to_string(y)));
  }
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += cat(i ? " | " : "", alts[i]);
  return out + ")";
}

std::string class_char(uint32_t cp) {
  const bool plain =
      (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (plain) return std::string(1, static_cast<char>(cp));
  char buf[16];
  std::snprintf(buf, sizeof buf, cp <= 0xFF ? "\\x%02X" : cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", cp);
  return buf;
}

// The regex subset of JSON-schema `pattern`, turned into GBNF over the JSON-escaped string text.
class RegexToGbnf {
 public:
  RegexToGbnf(std::string_view re, std::string_view char_rule, std::string_view path)
      : re_(re), char_rule_(char_rule), path_(path) {}

  std::string run() {
    if (peek() == '^') ++pos_;
    std::string out = alternation();
    if (pos_ < re_.size()) bad(cat("unexpected '", re_[pos_], "'"));
    return out;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail("[json-schema] ", path_, ": pattern '", re_, "' at offset ", pos_, ": ", what);
  }
  char peek() const { return pos_ < re_.size() ? re_[pos_] : '\0'; }

  std::string alternation() {
    std::string out = cat("(", sequence());
    while (peek() == '|') {
      ++pos_;
      out += cat(" | ", sequence());
    }
    return out + ")";
  }

  std::string sequence() {
    std::string out;
    while (pos_ < re_.size() && peek() != '|' && peek() != ')') {
      if (peek() == '$' &&
          (pos_ + 1 == re_.size() || re_[pos_ + 1] == ')' || re_[pos_ + 1] == '|')) {
        ++pos_;
        continue;
      }
      std::string atom_text = atom();
      out += cat(" ", atom_text, quantifier());
    }
    return out.empty() ? "\"\"" : out;
  }

  std::string quantifier() {
    std::string q;
    const char c = peek();
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, c);
    } else if (c == '{') {
      const size_t close = re_.find('}', pos_);
      if (close == std::string_view::npos) bad("unterminated {");
      const std::string_view body = re_.substr(pos_ + 1, close - pos_ - 1);
      for (char d : body)
        if (!(d >= '0' && d <= '9') && d != ',') bad("malformed {m,n}");
      if (body.empty() || body[0] == ',') bad("{,n} needs a minimum in a regex");
      q = cat("{", body, "}");
      pos_ = close + 1;
    } else {
      return "";
    }
    if (peek() == '?') ++pos_;  // lazy: the same language
    if (peek() == '+') bad("possessive quantifiers are not supported");
    return q;
  }

  uint32_t utf8_char() {
    const unsigned char c = static_cast<unsigned char>(re_[pos_]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > re_.size()) bad("invalid UTF-8");
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int i = 1; i < n; ++i)
      cp = cp << 6 | (static_cast<unsigned char>(re_[pos_ + static_cast<size_t>(i)]) & 0x3F);
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  // A literal code point as it appears inside a JSON string.
  static std::string json_char(uint32_t cp) {
    if (cp == '"') return "\"\\\\\\\"\"";  // the two characters \"
    if (cp == '\\') return "\"\\\\\\\\\"";
    if (cp == '\n') return "\"\\\\n\"";
    if (cp == '\t') return "\"\\\\t\"";
    if (cp == '\r') return "\"\\\\r\"";
    if (cp < 0x20) bad_static();
    std::string s;
    jinja::utf8_append(s, cp);
    return gbnf_literal(s);
  }
  [[noreturn]] static void bad_static() {
    fail("[json-schema] pattern: control characters are not supported");
  }

  using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

  // A class whose members must be written unescaped in JSON: drop '"', '\' and controls.
  std::string emit_class(Ranges r, bool negated) {
    if (negated) {
      r.insert(r.end(), {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});
    } else {
      Ranges safe;
      for (auto [lo, hi] : r)
        for (auto [a, b] : Ranges{{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}})
          if (std::max(lo, a) <= std::min(hi, b))
            safe.emplace_back(std::max(lo, a), std::min(hi, b));
      if (safe.empty()) bad("a class of only characters JSON must escape");
      r = std::move(safe);
    }
    std::string out = negated ? "[^" : "[";
    for (auto [lo, hi] : r)
      out += lo == hi ? class_char(lo) : cat(class_char(lo), "-", class_char(hi));
    return out + "]";
  }

  // \d \w \s and their negations, as ranges (negated flag set for the capital letters).
  static bool shorthand(char e, Ranges& r, bool& negated) {
    switch (e) {
      case 'd':
      case 'D':
        r = {{'0', '9'}};
        break;
      case 'w':
      case 'W':
        r = {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}};
        break;
      case 's':
      case 'S':
        r = {{' ', ' '}};
        break;
      default:
        return false;
    }
    negated = e >= 'A' && e <= 'Z';
    return true;
  }

  uint32_t escaped_char(char e) {
    switch (e) {
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'b':
      case 'B':
        bad("word boundaries are not supported");
      case 'u': {
        if (pos_ + 4 > re_.size()) bad("\\u needs 4 hex digits");
        const uint32_t v =
            static_cast<uint32_t>(std::stoul(std::string(re_.substr(pos_, 4)), nullptr, 16));
        pos_ += 4;
        return v;
      }
      default:
        if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
          bad(cat("the escape \\", e, " is not supported"));
        return static_cast<uint8_t>(e);
    }
  }

  std::string atom() {
    const char c = peek();
    if (c == '(') {
      if (++depth_ > 256) bad("groups nested deeper than 256");
      ++pos_;
      if (peek() == '?') {
        if (re_.substr(pos_, 2) != "?:") bad("lookaround and named groups are not supported");
        pos_ += 2;
      }
      std::string inner = alternation();
      if (peek() != ')') bad("missing )");
      ++pos_;
      --depth_;
      return inner;
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return std::string(char_rule_);
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') bad(cat("'", c, "' follows nothing"));
    if (c == '^') bad("'^' is only supported at the start");
    if (c == '\\') {
      ++pos_;
      if (pos_ >= re_.size()) bad("trailing backslash");
      const char e = re_[pos_++];
      Ranges r;
      bool neg = false;
      if (shorthand(e, r, neg)) return emit_class(r, neg);
      return json_char(escaped_char(e));
    }
    return json_char(utf8_char());
  }

  std::string char_class() {
    ++pos_;
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    Ranges r;
    bool first = true;
    while (pos_ < re_.size() && (peek() != ']' || first)) {
      first = false;
      uint32_t lo;
      if (peek() == '\\') {
        ++pos_;
        if (pos_ >= re_.size()) bad("trailing backslash");
        const char e = re_[pos_++];
        Ranges sh;
        bool neg = false;
        if (shorthand(e, sh, neg)) {
          if (neg) bad("negated shorthand inside a class is not supported");
          r.insert(r.end(), sh.begin(), sh.end());
          continue;
        }
        lo = escaped_char(e);
      } else {
        lo = utf8_char();
      }
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < re_.size() && re_[pos_ + 1] != ']') {
        ++pos_;
        if (peek() == '\\') {
          ++pos_;
          if (pos_ >= re_.size()) bad("trailing backslash");
          hi = escaped_char(re_[pos_++]);
        } else {
          hi = utf8_char();
        }
        if (hi < lo) bad("reversed range");
      }
      r.emplace_back(lo, hi);
    }
    if (peek() != ']') bad("unterminated class");
    ++pos_;
    return emit_class(r, negated);
  }

  std::string_view re_, char_rule_, path_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

std::string gbnf_integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  const int64_t cap = pow10(kMaxDigits) - 1;
  check((!lo || (*lo >= -cap && *lo <= cap)) && (!hi || (*hi >= -cap && *hi <= cap)),
        "[json-schema] integer bounds beyond ", kMaxDigits, " digits are not supported");
  check(!lo || !hi || *lo <= *hi, "[json-schema] minimum ", lo.value_or(0), " is above maximum ",
        hi.value_or(0));
  std::vector<std::string> alts;
  // Negative part: -n for n in [max(1, -hi), -lo].
  if (!lo || *lo < 0) {
    const int64_t n_lo = hi && *hi < 0 ? -*hi : 1;
    alts.push_back(cat("\"-\" ", nonneg_range(n_lo, lo ? -*lo : -1)));
  }
  if (!hi || *hi >= 0)
    alts.push_back(nonneg_range(lo ? std::max<int64_t>(*lo, 0) : 0, hi ? *hi : -1));
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += cat(i ? " | " : "", alts[i]);
  return out + ")";
}

std::string gbnf_from_regex(std::string_view regex, std::string_view char_rule,
                            std::string_view path) {
  return RegexToGbnf(regex, char_rule, path).run();
}

std::string gbnf_literal(std::string_view bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace eight::text
