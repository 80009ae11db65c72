// Block-style YAML subset reader (see yaml.h).
#include "formats/yaml.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "core/error.h"

namespace eight::yaml {

namespace {

using Json = nlohmann::json;

struct Line {
  int indent = 0;
  std::string text;  // without the indentation and the line break
  size_t number = 0;
};

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_seq_item(std::string_view t) {
  return t == "-" || (t.size() >= 2 && t[0] == '-' && t[1] == ' ');
}

class Parser {
 public:
  Parser(std::string_view text, std::string name, const Limits& limits)
      : name_(std::move(name)), limits_(limits) {
    if (text.size() > limits.max_bytes)
      fail("[yaml] ", name_, ": ", text.size(), " bytes is more than the ", limits.max_bytes,
           " a config may have");
    size_t number = 0;
    while (!text.empty()) {
      const size_t nl = text.find('\n');
      std::string_view raw = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
      ++number;
      int indent = 0;
      while (static_cast<size_t>(indent) < raw.size() && raw[indent] == ' ') ++indent;
      if (static_cast<size_t>(indent) < raw.size() && raw[indent] == '\t')
        fail("[yaml] ", name_, ":", number, ": a tab in the indentation");
      const std::string_view t = trim(raw);
      if (t.empty() || t[0] == '#') continue;
      if (t == "---" || t.substr(0, 4) == "--- ") {
        if (!lines_.empty()) fail("[yaml] ", name_, ":", number, ": a second YAML document");
        continue;
      }
      if (t == "...") break;
      if (t[0] == '%') fail("[yaml] ", name_, ":", number, ": YAML directives are not supported");
      lines_.push_back({indent, std::string(t), number});
    }
  }

  Json document() {
    if (lines_.empty()) return Json();
    Json v = node(lines_[0].indent, 0);
    if (pos_ < lines_.size()) error(lines_[pos_].number, "unexpected indentation");
    return v;
  }

 private:
  [[noreturn]] void error(size_t line, const std::string& what) const {
    fail("[yaml] ", name_, ":", line, ": ", what);
  }

  void count(size_t line) {
    if (++nodes_ > limits_.max_nodes) error(line, cat("more than ", limits_.max_nodes, " values"));
  }

  Json node(int indent, int depth) {
    if (depth > limits_.max_depth)
      error(lines_[pos_].number, cat("nested deeper than ", limits_.max_depth));
    count(lines_[pos_].number);
    return is_seq_item(lines_[pos_].text) ? sequence(indent, depth) : mapping(indent, depth);
  }

  // Where the key of a `key: value` line ends (the ':'), or npos when the line is no mapping
  // entry: a ':' followed by a space or the end, outside quotes, in a line not starting a flow
  // collection.
  size_t key_end(std::string_view t, size_t line) const {
    if (t.empty() || t[0] == '[' || t[0] == '{') return std::string_view::npos;
    size_t i = 0;
    if (t[0] == '\'' || t[0] == '"') {
      i = quoted_end(t, 0, line);
      while (i < t.size() && is_space(t[i])) ++i;
      return i < t.size() && t[i] == ':' && (i + 1 == t.size() || is_space(t[i + 1]))
                 ? i
                 : std::string_view::npos;
    }
    for (; i < t.size(); ++i) {
      if (t[i] == '#' && i > 0 && is_space(t[i - 1])) break;
      if (t[i] == ':' && (i + 1 == t.size() || is_space(t[i + 1]))) return i;
    }
    return std::string_view::npos;
  }

  // Index just past the closing quote of the quoted scalar starting at t[at].
  size_t quoted_end(std::string_view t, size_t at, size_t line) const {
    const char q = t[at];
    for (size_t i = at + 1; i < t.size(); ++i) {
      if (q == '"' && t[i] == '\\') {
        ++i;
      } else if (t[i] == q) {
        if (q == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
          ++i;
        } else {
          return i + 1;
        }
      }
    }
    error(line, "unterminated quoted string");
  }

  std::string unquote(std::string_view t, size_t line) const {
    std::string s;
    const char q = t[0];
    for (size_t i = 1; i + 1 < t.size(); ++i) {
      char c = t[i];
      if (q == '\'' && c == '\'') {
        ++i;  // '' inside '...' is one quote
      } else if (q == '"' && c == '\\') {
        if (++i + 1 >= t.size()) error(line, "a backslash at the end of a string");
        switch (t[i]) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case '0':
            c = '\0';
            break;
          case '"':
          case '\\':
          case '/':
          case ' ':
            c = t[i];
            break;
          default:
            error(line, cat("the escape \\", t[i], " is not supported"));
        }
      }
      s += c;
    }
    return s;
  }

  Json mapping(int indent, int depth) {
    Json obj = Json::object();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent &&
           !is_seq_item(lines_[pos_].text)) {
      const Line& ln = lines_[pos_];
      const std::string_view t = ln.text;
      const size_t colon = key_end(t, ln.number);
      if (colon == std::string_view::npos) error(ln.number, "expected 'key: value'");
      const std::string_view k = trim(t.substr(0, colon));
      const std::string key = k[0] == '\'' || k[0] == '"' ? unquote(k, ln.number) : std::string(k);
      const std::string rest(trim(t.substr(colon + 1)));
      const size_t number = ln.number;
      ++pos_;
      count(number);
      if (!rest.empty() && rest[0] != '#') {
        obj[key] = inline_value(rest, indent, number, depth);
      } else if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
        obj[key] = node(lines_[pos_].indent, depth + 1);
      } else if (pos_ < lines_.size() && lines_[pos_].indent == indent &&
                 is_seq_item(lines_[pos_].text)) {
        obj[key] = sequence(indent, depth + 1);  // PyYAML puts a list at its key's indent
      } else {
        obj[key] = nullptr;
      }
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      error(lines_[pos_].number, "unexpected indentation");
    return obj;
  }

  Json sequence(int indent, int depth) {
    Json arr = Json::array();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent &&
           is_seq_item(lines_[pos_].text)) {
      Line& ln = lines_[pos_];
      count(ln.number);
      size_t skip = 1;
      while (skip < ln.text.size() && ln.text[skip] == ' ') ++skip;
      const std::string rest = ln.text.substr(skip);
      if (rest.empty()) {
        ++pos_;
        arr.push_back(pos_ < lines_.size() && lines_[pos_].indent > indent
                          ? node(lines_[pos_].indent, depth + 1)
                          : Json());
      } else if (is_seq_item(rest) || key_end(rest, ln.number) != std::string_view::npos) {
        // "- key: v" / "- - x": a collection that starts on the item's line; its other lines
        // are indented to where it starts.
        ln.indent += static_cast<int>(skip);
        ln.text = rest;
        arr.push_back(node(ln.indent, depth + 1));
      } else {
        const size_t number = ln.number;
        ++pos_;
        arr.push_back(inline_value(rest, indent, number, depth));
      }
    }
    return arr;
  }

  // The value written after "key:" or "- ", with its continuation lines (more indented).
  Json inline_value(std::string text, int indent, size_t line, int depth) {
    const bool quoted = text[0] == '\'' || text[0] == '"';
    while (pos_ < lines_.size() && lines_[pos_].indent > indent) {
      if (!quoted && key_end(lines_[pos_].text, lines_[pos_].number) != std::string_view::npos)
        error(lines_[pos_].number, "a mapping where a value continues (bad indentation?)");
      text += ' ';
      text += lines_[pos_++].text;
    }
    size_t at = 0;
    Json v = flow_value(text, at, line, depth, false);
    while (at < text.size() && is_space(text[at])) ++at;
    if (at < text.size() && text[at] != '#')
      error(line, cat("unexpected text after the value: '", text.substr(at), "'"));
    return v;
  }

  // A scalar or flow collection at text[at]; `in_flow`: inside [...] / {...}, where ',' ']' '}'
  // end a plain scalar.
  Json flow_value(std::string_view text, size_t& at, size_t line, int depth, bool in_flow) {
    if (depth > limits_.max_depth) error(line, cat("nested deeper than ", limits_.max_depth));
    count(line);
    while (at < text.size() && is_space(text[at])) ++at;
    if (at == text.size()) return Json();
    const char c = text[at];
    if (c == '&' || c == '*' || c == '!' || c == '|' || c == '>' || c == '@' || c == '`')
      error(line, cat("'", c, "' (anchors, aliases, tags, block scalars) is not supported"));
    if (c == '\'' || c == '"') {
      const size_t end = quoted_end(text, at, line);
      std::string s = unquote(text.substr(at, end - at), line);
      at = end;
      return s;
    }
    if (c == '[' || c == '{') {
      const bool list = c == '[';
      Json out = list ? Json::array() : Json::object();
      ++at;
      for (;;) {
        while (at < text.size() && is_space(text[at])) ++at;
        if (at == text.size()) error(line, "unterminated flow collection");
        if (text[at] == (list ? ']' : '}')) {
          ++at;
          return out;
        }
        Json item = flow_value(text, at, line, depth + 1, true);
        while (at < text.size() && is_space(text[at])) ++at;
        if (!list) {
          if (at == text.size() || text[at] != ':') error(line, "expected ':' in a flow mapping");
          ++at;
          Json v = flow_value(text, at, line, depth + 1, true);
          out[item.is_string() ? item.get<std::string>() : item.dump()] = std::move(v);
        } else {
          out.push_back(std::move(item));
        }
        while (at < text.size() && is_space(text[at])) ++at;
        if (at < text.size() && text[at] == ',')
          ++at;
        else if (at == text.size() || text[at] != (list ? ']' : '}'))
          error(line, "expected ',' or the end of a flow collection");
      }
    }
    size_t end = at;
    while (end < text.size()) {
      const char e = text[end];
      if (in_flow && (e == ',' || e == ']' || e == '}')) break;
      if (in_flow && e == ':' && (end + 1 == text.size() || is_space(text[end + 1]))) break;
      if (e == '#' && end > at && is_space(text[end - 1])) break;
      ++end;
    }
    const std::string_view plain = trim(text.substr(at, end - at));
    at = end;
    return resolve(plain);
  }

  // YAML 1.1 resolution of a plain scalar as PyYAML does it (floats need a '.').
  static Json resolve(std::string_view s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Json();
    for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
      if (s == t) return true;
    for (const char* f : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
      if (s == f) return false;
    const std::string str(s);
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    const bool negative = s[0] == '-';
    const std::string_view body = s.substr(i);
    if (body == ".inf" || body == ".Inf" || body == ".INF")
      return negative ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
    size_t digits = 0, dots = 0;
    for (; i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'); ++i)
      (s[i] == '.' ? dots : digits)++;
    if (digits == 0 || dots > 1) return str;
    if (i == s.size() && dots == 0) {
      errno = 0;
      char* endp = nullptr;
      const long long v = std::strtoll(str.c_str(), &endp, 10);
      if (errno == 0 && endp == str.c_str() + str.size()) return static_cast<int64_t>(v);
      return std::strtod(str.c_str(), nullptr);  // too big for int64: keep the magnitude
    }
    if (dots == 0) return str;  // "1e5" is a string in YAML 1.1
    if (i < s.size()) {         // exponent: [eE][-+]?digits
      if (s[i] != 'e' && s[i] != 'E') return str;
      size_t j = i + 1;
      if (j < s.size() && (s[j] == '-' || s[j] == '+')) ++j;
      if (j == s.size()) return str;
      for (; j < s.size(); ++j)
        if (!std::isdigit(static_cast<unsigned char>(s[j]))) return str;
    }
    return std::strtod(str.c_str(), nullptr);
  }

  std::string name_;
  Limits limits_;
  std::vector<Line> lines_;
  size_t pos_ = 0, nodes_ = 0;
};

}  // namespace

nlohmann::json parse(std::string_view text, const std::string& name, const Limits& limits) {
  return Parser(text, name, limits).document();
}

}  // namespace eight::yaml
