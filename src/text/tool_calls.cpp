#include "text/tool_calls.h"

#include <cctype>

#include <nlohmann/json.hpp>

namespace eight {

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>", kHermesClose = "</tool_call>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]", kPythonTag = "<|python_tag|>";
constexpr int kMaxDepth = 128;  // nesting deeper than any real arguments object

enum class Scan { Invalid, Partial, Complete };

// The result of scanning a JSON value at a position: Complete with `end` after it, Partial when
// the text ends inside a valid prefix (end = text size), Invalid with `end` at the first bad byte.
struct Span {
  Scan state;
  size_t end;
};

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_ws(std::string_view t, size_t p) {
  while (p < t.size() && is_ws(t[p])) ++p;
  return p;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view t) : t_(t) {}

  Span value(size_t p, int depth) {
    if (p >= t_.size()) return {Scan::Partial, t_.size()};
    if (depth > kMaxDepth) return {Scan::Invalid, p};
    const char c = t_[p];
    if (c == '"') return string(p);
    if (c == '{') return container(p, depth, '}', true);
    if (c == '[') return container(p, depth, ']', false);
    if (c == '-' || is_digit(c)) return number(p);
    for (std::string_view lit : {"true", "false", "null"}) {
      if (c != lit[0]) continue;
      size_t i = 0;
      while (i < lit.size() && p + i < t_.size() && t_[p + i] == lit[i]) ++i;
      if (i == lit.size()) return {Scan::Complete, p + i};
      return p + i == t_.size() ? Span{Scan::Partial, t_.size()} : Span{Scan::Invalid, p + i};
    }
    return {Scan::Invalid, p};
  }

  Span string(size_t p) {
    ++p;  // opening quote
    while (p < t_.size()) {
      const unsigned char c = static_cast<unsigned char>(t_[p]);
      if (c == '"') return {Scan::Complete, p + 1};
      if (c < 0x20) return {Scan::Invalid, p};
      if (c != '\\') {
        ++p;
        continue;
      }
      if (p + 1 >= t_.size()) return {Scan::Partial, t_.size()};
      const char e = t_[p + 1];
      if (e == 'u') {
        for (size_t i = 0; i < 4; ++i) {
          if (p + 2 + i >= t_.size()) return {Scan::Partial, t_.size()};
          if (!std::isxdigit(static_cast<unsigned char>(t_[p + 2 + i])))
            return {Scan::Invalid, p + 2 + i};
        }
        p += 6;
      } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
        p += 2;
      } else {
        return {Scan::Invalid, p + 1};
      }
    }
    return {Scan::Partial, t_.size()};
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; the text ending inside it is Partial.
  Span number(size_t p) {
    auto at_end = [&](size_t q) { return q >= t_.size(); };
    auto digits = [&](size_t& q) {
      const size_t s = q;
      while (!at_end(q) && is_digit(t_[q])) ++q;
      return q - s;
    };
    if (t_[p] == '-') ++p;
    if (at_end(p)) return {Scan::Partial, t_.size()};
    if (t_[p] == '0') {
      ++p;
    } else if (digits(p) == 0) {
      return {Scan::Invalid, p};
    }
    if (at_end(p)) return {Scan::Partial, t_.size()};
    if (t_[p] == '.') {
      ++p;
      const size_t n = digits(p);
      if (at_end(p)) return {Scan::Partial, t_.size()};
      if (n == 0) return {Scan::Invalid, p};
    }
    if (t_[p] == 'e' || t_[p] == 'E') {
      ++p;
      if (!at_end(p) && (t_[p] == '+' || t_[p] == '-')) ++p;
      const size_t n = digits(p);
      if (at_end(p)) return {Scan::Partial, t_.size()};
      if (n == 0) return {Scan::Invalid, p};
    }
    return {Scan::Complete, p};
  }

  Span container(size_t p, int depth, char close, bool object) {
    p = skip_ws(t_, p + 1);
    if (p >= t_.size()) return {Scan::Partial, t_.size()};
    if (t_[p] == close) return {Scan::Complete, p + 1};
    while (true) {
      if (object) {
        if (t_[p] != '"') return {Scan::Invalid, p};
        const Span k = string(p);
        if (k.state != Scan::Complete) return k;
        p = skip_ws(t_, k.end);
        if (p >= t_.size()) return {Scan::Partial, t_.size()};
        if (t_[p] != ':') return {Scan::Invalid, p};
        p = skip_ws(t_, p + 1);
      }
      const Span v = value(p, depth + 1);
      if (v.state != Scan::Complete) return v;
      p = skip_ws(t_, v.end);
      if (p >= t_.size()) return {Scan::Partial, t_.size()};
      if (t_[p] == close) return {Scan::Complete, p + 1};
      if (t_[p] != ',') return {Scan::Invalid, p};
      p = skip_ws(t_, p + 1);
      if (p >= t_.size()) return {Scan::Partial, t_.size()};
    }
  }

 private:
  std::string_view t_;
};

// One call object {"name": "...", "arguments"|"parameters": ..., other keys ignored}.
struct CallScan {
  Scan state = Scan::Invalid;
  size_t end = 0;  // as Span::end
  bool has_name = false;
  std::string name;
  bool has_args = false, args_complete = false;
  size_t args_begin = 0, args_end = 0;

  // The arguments written so far (the call is known to exist).
  std::string arguments(std::string_view t) const {
    if (has_args) return std::string(t.substr(args_begin, args_end - args_begin));
    return state == Scan::Partial ? std::string() : std::string("{}");
  }
};

CallScan scan_call(std::string_view t, size_t p) {
  JsonScanner js(t);
  CallScan c;
  auto stop = [&](Scan s, size_t end) {
    c.state = s;
    c.end = end;
    if (c.has_args && !c.args_complete) c.args_end = end;
    return c;
  };
  if (p >= t.size()) return stop(Scan::Partial, t.size());
  if (t[p] != '{') return stop(Scan::Invalid, p);
  p = skip_ws(t, p + 1);
  if (p >= t.size()) return stop(Scan::Partial, t.size());
  if (t[p] == '}') return stop(Scan::Complete, p + 1);
  while (true) {
    if (t[p] != '"') return stop(Scan::Invalid, p);
    const Span k = js.string(p);
    if (k.state != Scan::Complete) return stop(k.state, k.end);
    std::string key;
    try {
      key = nlohmann::json::parse(t.substr(p, k.end - p)).get<std::string>();
    } catch (const nlohmann::json::exception&) {
      return stop(Scan::Invalid, p);  // invalid UTF-8 or a lone surrogate
    }
    p = skip_ws(t, k.end);
    if (p >= t.size()) return stop(Scan::Partial, t.size());
    if (t[p] != ':') return stop(Scan::Invalid, p);
    p = skip_ws(t, p + 1);
    const bool is_args = (key == "arguments" || key == "parameters") && !c.has_args;
    if (is_args && p < t.size()) {
      c.has_args = true;
      c.args_begin = p;
    }
    const Span v = js.value(p, 1);
    if (is_args && v.state == Scan::Complete) {
      c.args_complete = true;
      c.args_end = v.end;
    }
    if (v.state != Scan::Complete) return stop(v.state, v.end);
    if (key == "name" && !c.has_name) {
      if (t[p] != '"') return stop(Scan::Invalid, p);
      try {
        c.name = nlohmann::json::parse(t.substr(p, v.end - p)).get<std::string>();
      } catch (const nlohmann::json::exception&) {
        return stop(Scan::Invalid, p);
      }
      if (c.name.empty()) return stop(Scan::Invalid, p);
      c.has_name = true;
    }
    p = skip_ws(t, v.end);
    if (p >= t.size()) return stop(Scan::Partial, t.size());
    if (t[p] == '}') return stop(Scan::Complete, p + 1);
    if (t[p] != ',') return stop(Scan::Invalid, p);
    p = skip_ws(t, p + 1);
    if (p >= t.size()) return stop(Scan::Partial, t.size());
  }
}

bool starts_with(std::string_view t, size_t p, std::string_view s) {
  return t.substr(p, s.size()) == s;
}

// Whether t[p:] is a proper, non-empty prefix of s (the text may still become s).
bool proper_prefix(std::string_view t, size_t p, std::string_view s) {
  const std::string_view rest = t.substr(p);
  return !rest.empty() && rest.size() < s.size() && s.substr(0, rest.size()) == rest;
}

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

bool all_ws(std::string_view s) {
  return rstrip(s).empty();
}

// Accumulates the parse. Content comes in segments (the text between calls): a segment followed
// by a call loses its trailing whitespace; the last segment is kept whole in a final parse (but
// dropped when it is only whitespace after calls), and without its trailing whitespace in a
// partial one (a call may still follow).
class Builder {
 public:
  Builder(std::string_view text, bool final) : t_(text), final_(final) {}

  void segment_before_call(std::string_view seg) { out_.content += rstrip(seg); }
  void last_segment(std::string_view seg) {
    if (!final_)
      out_.content += rstrip(seg);
    else if (!(all_ws(seg) && !out_.calls.empty()))
      out_.content += seg;
  }
  void call(const CallScan& c) { out_.calls.push_back({c.name, c.arguments(t_)}); }
  bool has_calls() const { return !out_.calls.empty(); }
  bool final() const { return final_; }
  ParsedOutput take() { return std::move(out_); }

 private:
  std::string_view t_;
  bool final_;
  ParsedOutput out_;
};

ParsedOutput parse_hermes(std::string_view t, bool final) {
  Builder b(t, final);
  std::string seg;
  size_t pos = 0;
  while (true) {
    const size_t k = t.find(kHermesOpen, pos);
    if (k == std::string_view::npos) {
      std::string_view rest = t.substr(pos);
      if (!final) {  // hold back a tail that may be the start of the marker
        for (size_t n = std::min(rest.size(), kHermesOpen.size() - 1); n > 0; --n)
          if (rest.substr(rest.size() - n) == kHermesOpen.substr(0, n)) {
            rest.remove_suffix(n);
            break;
          }
      }
      seg += rest;
      b.last_segment(seg);
      return b.take();
    }
    seg += t.substr(pos, k - pos);
    const size_t body = skip_ws(t, k + kHermesOpen.size());
    const CallScan c = scan_call(t, body);
    if (!c.has_name && c.state == Scan::Partial) {
      if (final) seg += t.substr(k);
      b.last_segment(seg);
      return b.take();
    }
    if (!c.has_name) {  // not a call: the marker is plain text
      seg += kHermesOpen;
      pos = k + kHermesOpen.size();
      continue;
    }
    b.segment_before_call(seg);
    seg.clear();
    b.call(c);
    if (c.state == Scan::Partial) return b.take();
    pos = c.end;
    if (c.state == Scan::Complete) {
      const size_t q = skip_ws(t, c.end);
      if (starts_with(t, q, kHermesClose))
        pos = q + kHermesClose.size();
      else if (!final && (q == t.size() || proper_prefix(t, q, kHermesClose)))
        return b.take();
    }
  }
}

// Llama 3, Mistral and Generic: calls only at the start of the output, after an optional marker;
// `list`: the calls are a JSON array (Mistral).
ParsedOutput parse_leading(std::string_view t, bool final, std::string_view marker, bool list) {
  Builder b(t, final);
  size_t q = skip_ws(t, 0);
  if (!final && (q == t.size() || proper_prefix(t, q, marker))) return b.take();
  if (!marker.empty() && starts_with(t, q, marker)) q = skip_ws(t, q + marker.size());
  if (!final && q == t.size()) return b.take();
  if (list) {
    if (q >= t.size() || t[q] != '[') {
      b.last_segment(t);
      return b.take();
    }
    q = skip_ws(t, q + 1);
    if (!final && q == t.size()) return b.take();
  }
  while (true) {
    const CallScan c = scan_call(t, q);
    if (!c.has_name) {
      if (c.state == Scan::Partial && !final) return b.take();
      // Not a call: everything (no calls yet) or everything after the last call is content.
      b.last_segment(b.has_calls() ? t.substr(q) : t);
      return b.take();
    }
    b.call(c);
    if (c.state != Scan::Complete) {
      if (c.state == Scan::Invalid) b.last_segment(t.substr(c.end));
      return b.take();
    }
    size_t p = skip_ws(t, c.end);
    if (p < t.size() && t[p] == (list ? ',' : ';')) p = skip_ws(t, p + 1);
    if (p >= t.size()) return b.take();
    if (list && t[p] == ']') {
      b.last_segment(t.substr(p + 1));
      return b.take();
    }
    if (t[p] != '{') {
      b.last_segment(t.substr(c.end));
      return b.take();
    }
    q = p;
  }
}

bool contains(const std::string& s, std::string_view what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

const char* tool_format_name(ToolFormat f) {
  switch (f) {
    case ToolFormat::Llama3:
      return "llama3";
    case ToolFormat::Mistral:
      return "mistral";
    case ToolFormat::Hermes:
      return "hermes";
    default:
      return "generic";
  }
}

ToolFormat detect_tool_format(const std::string& tmpl,
                              const std::function<bool(std::string_view)>& has_token) {
  if (contains(tmpl, kHermesOpen)) return ToolFormat::Hermes;
  if (contains(tmpl, kMistralMarker)) return ToolFormat::Mistral;
  if (contains(tmpl, kPythonTag) || (contains(tmpl, "ipython") && contains(tmpl, "tool_call")))
    return ToolFormat::Llama3;
  if (template_uses_tools(tmpl)) return ToolFormat::Generic;
  if (has_token(kHermesOpen)) return ToolFormat::Hermes;
  if (has_token(kMistralMarker)) return ToolFormat::Mistral;
  if (has_token(kPythonTag)) return ToolFormat::Llama3;
  return ToolFormat::Generic;
}

bool template_uses_tools(const std::string& tmpl) {
  return contains(tmpl, "tools");
}

bool extends(const ParsedOutput& a, const ParsedOutput& b) {
  if (!b.content.starts_with(a.content) || b.calls.size() < a.calls.size()) return false;
  for (size_t i = 0; i < a.calls.size(); ++i)
    if (a.calls[i].name != b.calls[i].name ||
        !b.calls[i].arguments.starts_with(a.calls[i].arguments))
      return false;
  return true;
}

ParsedOutput parse_tool_output(ToolFormat f, std::string_view text, bool final) {
  switch (f) {
    case ToolFormat::Hermes:
      return parse_hermes(text, final);
    case ToolFormat::Mistral:
      return parse_leading(text, final, kMistralMarker, true);
    case ToolFormat::Llama3:
      return parse_leading(text, final, kPythonTag, false);
    default:
      return parse_leading(text, final, "", false);
  }
}

}  // namespace eight
