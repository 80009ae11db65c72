// GBNF, as llama.cpp's docs/grammars/README.md describes it: `name ::= alternatives`, one rule per
// line (newlines are allowed inside parentheses and after `|`), literals "..." and classes [...]
// with \x \u \U \t \n \r escapes, ranges and `^` negation, `.` for any character, groups, and the
// postfix operators * + ? {m} {m,} {m,n} {,n}. `#` starts a comment.
#include <algorithm>
#include <map>

#include "core/error.h"
#include "text/grammar.h"
#include "text/grammar_impl.h"

namespace eight::text {

namespace {

// Repetition counts beyond this are refused: {m,n} expands into n copies of its operand.
constexpr int64_t kMaxRepeat = 10000;
// The compiled grammar may hold at most this many elements (a guard against absurd input).
constexpr size_t kMaxElems = 4'000'000;
// Groups nest by recursion; deeper nesting than this is refused rather than overflowing the stack.
constexpr int kMaxNesting = 256;

using Seq = std::vector<GrammarElem>;
using Alts = std::vector<Seq>;

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  GrammarRules run(std::string_view root_name) {
    skip_space(true);
    while (pos_ < src_.size()) {
      parse_rule();
      skip_space(true);
    }
    check(!defs_.empty(), "[gbnf] the grammar has no rules");
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!defined_[r]) fail_at(first_use_[r], "rule '", names_[r], "' is used but never defined");
    auto root = ids_.find(std::string(root_name));
    check(root != ids_.end() && defined_[static_cast<size_t>(root->second)],
          "[gbnf] the grammar has no rule named '", root_name, "'");
    GrammarRules g;
    g.root = root->second;
    g.names = names_;
    g.classes = std::move(classes_);
    g.alts.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r)
      for (const Seq& seq : rules_[r]) {
        g.alts[r].push_back(static_cast<int32_t>(g.elems.size()));
        g.elems.insert(g.elems.end(), seq.begin(), seq.end());
        g.elems.push_back({GrammarElem::End, 0});
        check(g.elems.size() <= kMaxElems, "[gbnf] the grammar expands to more than ", kMaxElems,
              " elements");
      }
    grammar_finalize(g);
    return g;
  }

 private:
  template <class... A>
  [[noreturn]] void fail_at(size_t at, const A&... args) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) {
        ++col;
      }
    }
    fail("[gbnf] line ", line, ", column ", col, ": ", args...);
  }

  bool at_end() const { return pos_ >= src_.size(); }
  char peek() const { return at_end() ? '\0' : src_[pos_]; }

  // Skips spaces, tabs and comments; newlines too when `newlines`.
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ == start) fail_at(pos_, "expected a rule name");
    return std::string(src_.substr(start, pos_ - start));
  }

  int32_t rule_id(const std::string& name, size_t use_at) {
    auto [it, fresh] = ids_.emplace(name, static_cast<int32_t>(rules_.size()));
    if (fresh) {
      rules_.emplace_back();
      names_.push_back(name);
      defined_.push_back(false);
      first_use_.push_back(use_at);
    }
    return it->second;
  }

  int32_t new_rule(Alts alts) {
    const std::string name = cat("(", rules_.size(), ")");  // parentheses: never a GBNF name
    const int32_t id = rule_id(name, pos_);
    rules_[static_cast<size_t>(id)] = std::move(alts);
    defined_[static_cast<size_t>(id)] = true;
    return id;
  }

  void parse_rule() {
    const size_t start = pos_;
    const std::string name = parse_name();
    skip_space(false);
    if (src_.substr(pos_, 3) != "::=") fail_at(pos_, "expected '::=' after rule name '", name, "'");
    pos_ += 3;
    skip_space(true);  // the body may start on the next line
    Alts alts = parse_alternates(false);
    const int32_t id = rule_id(name, start);
    if (defined_[static_cast<size_t>(id)]) fail_at(start, "rule '", name, "' is defined twice");
    rules_[static_cast<size_t>(id)] = std::move(alts);
    defined_[static_cast<size_t>(id)] = true;
    defs_.push_back(id);
    if (!at_end() && peek() != '\n') fail_at(pos_, "unexpected '", peek(), "'");
  }

  Alts parse_alternates(bool nested) {
    Alts alts;
    alts.push_back(parse_sequence(nested));
    for (;;) {
      // A '|' may begin the next line of a top-level rule.
      const size_t save = pos_;
      skip_space(true);
      if (peek() != '|') {
        pos_ = save;
        break;
      }
      ++pos_;
      skip_space(true);
      alts.push_back(parse_sequence(nested));
    }
    return alts;
  }

  Seq parse_sequence(bool nested) {
    Seq seq;
    size_t last_start = SIZE_MAX;  // where the last atom began in seq (for postfix operators)
    for (;;) {
      skip_space(nested);
      if (at_end()) break;
      const char c = peek();
      const size_t atom_start = seq.size();
      if (c == '"') {
        ++pos_;
        while (!at_end() && peek() != '"') {
          if (peek() == '\n') fail_at(pos_, "unterminated string literal");
          const uint32_t cp = parse_char();
          seq.push_back(chars(CharClass{false, {{cp, cp}}}));
        }
        if (at_end()) fail_at(pos_, "unterminated string literal");
        ++pos_;
      } else if (c == '[') {
        seq.push_back(chars(parse_class()));
      } else if (c == '.') {
        ++pos_;
        seq.push_back(chars(CharClass{true, {}}));
      } else if (c == '(') {
        if (++depth_ > kMaxNesting) fail_at(pos_, "groups nested deeper than ", kMaxNesting);
        ++pos_;
        skip_space(true);
        Alts inner = parse_alternates(true);
        --depth_;
        skip_space(true);
        if (peek() != ')') fail_at(pos_, "expected ')'");
        ++pos_;
        seq.push_back({GrammarElem::Ref, new_rule(std::move(inner))});
      } else if (is_name_char(c)) {
        const size_t at = pos_;
        const std::string name = parse_name();
        skip_space(false);
        if (src_.substr(pos_, 3) == "::=")
          fail_at(at, "expected a newline before rule '", name, "'");
        seq.push_back({GrammarElem::Ref, rule_id(name, at)});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last_start == SIZE_MAX) fail_at(pos_, "'", c, "' follows nothing");
        apply_postfix(seq, last_start);
        continue;
      } else {
        break;  // '|', ')', newline or an error the caller reports
      }
      last_start = atom_start;
    }
    return seq;
  }

  GrammarElem chars(CharClass cls) {
    classes_.push_back(std::move(cls));
    return {GrammarElem::Chars, static_cast<int32_t>(classes_.size() - 1)};
  }

  int64_t parse_int() {
    int64_t v = 0;
    const size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > kMaxRepeat) fail_at(start, "repetition count above ", kMaxRepeat);
      ++pos_;
    }
    return pos_ == start ? -1 : v;
  }

  // Replaces seq[start..] (one atom) with its repetition.
  void apply_postfix(Seq& seq, size_t start) {
    const size_t op_at = pos_;
    const char op = src_[pos_++];
    int64_t lo = 0, hi = -1;  // hi < 0: unbounded
    if (op == '+') {
      lo = 1;
    } else if (op == '?') {
      hi = 1;
    } else if (op == '{') {
      skip_space(false);
      lo = parse_int();
      skip_space(false);
      if (peek() == ',') {
        ++pos_;
        skip_space(false);
        hi = parse_int();
        if (lo < 0 && hi < 0) fail_at(op_at, "'{,}' needs a count");
      } else {
        hi = lo;
      }
      lo = std::max<int64_t>(lo, 0);
      skip_space(false);
      if (peek() != '}') fail_at(pos_, "expected '}'");
      ++pos_;
      if (hi >= 0 && hi < lo) fail_at(op_at, "repetition {", lo, ",", hi, "} has max below min");
    }
    Seq atom(seq.begin() + static_cast<std::ptrdiff_t>(start), seq.end());
    seq.resize(start);
    const GrammarElem one =
        atom.size() == 1 ? atom[0] : GrammarElem{GrammarElem::Ref, new_rule({atom})};
    for (int64_t i = 0; i < lo; ++i) seq.push_back(one);
    if (hi < 0) {  // star ::= one star | ε  (a tail reference: the stack does not grow)
      const int32_t star = new_rule({});
      rules_[static_cast<size_t>(star)] = {{one, {GrammarElem::Ref, star}}, {}};
      seq.push_back({GrammarElem::Ref, star});
    } else if (hi > lo) {  // opt_k ::= one opt_{k-1} | ε
      int32_t opt = new_rule({{one}, {}});
      for (int64_t k = 1; k < hi - lo; ++k) opt = new_rule({{one, {GrammarElem::Ref, opt}}, {}});
      seq.push_back({GrammarElem::Ref, opt});
    }
    check(seq.size() <= kMaxElems, "[gbnf] repetition expands too far");
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) fail_at(pos_, "expected ", digits, " hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > 0x10FFFF) fail_at(pos_, "code point ", v, " is beyond U+10FFFF");
    return v;
  }

  // One character of a literal or class, escapes decoded, UTF-8 read as one code point.
  uint32_t parse_char() {
    if (at_end()) fail_at(pos_, "unexpected end of grammar");
    const unsigned char c = static_cast<unsigned char>(src_[pos_]);
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        case 't':
          return '\t';
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
        case '.':
          return static_cast<uint32_t>(e);
        default:
          fail_at(pos_ - 2, "unknown escape '\\", e, "'");
      }
    }
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > src_.size())
      fail_at(pos_, "invalid UTF-8 in the grammar");
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int i = 1; i < n; ++i) {
      const unsigned char b = static_cast<unsigned char>(src_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) fail_at(pos_, "invalid UTF-8 in the grammar");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  CharClass parse_class() {
    const size_t open = pos_++;
    CharClass cls;
    if (peek() == '^') {
      cls.negated = true;
      ++pos_;
    }
    while (!at_end() && peek() != ']') {
      if (peek() == '\n') break;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < src_.size() && src_[pos_ + 1] != ']' &&
          src_[pos_ + 1] != '\n') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail_at(pos_, "character range is reversed");
      }
      cls.ranges.emplace_back(lo, hi);
    }
    if (peek() != ']') fail_at(open, "unterminated character class");
    ++pos_;
    return cls;
  }

  std::string_view src_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<Alts> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::vector<int32_t> defs_;
  std::map<std::string, int32_t> ids_;
  std::vector<CharClass> classes_;
};

}  // namespace

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
  auto rules = std::make_shared<GrammarRules>(Parser(gbnf).run(root));
  return std::make_shared<const Grammar>(std::string(gbnf), std::move(rules));
}

Grammar::Grammar(std::string source, std::shared_ptr<const GrammarRules> rules)
    : source_(std::move(source)), rules_(std::move(rules)) {}

}  // namespace eight::text
