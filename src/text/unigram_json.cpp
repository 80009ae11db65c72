// Hugging Face tokenizer.json with a Unigram model (as transformers' T5 converter writes it):
// added tokens split out first (leftmost, longest), then the normalizers (Precompiled,
// Strip, Replace; Sequence of those), the Metaspace pre-tokenizer (optionally after
// WhitespaceSplit), the Viterbi per word, and TemplateProcessing's special tokens around.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/unigram_impl.h"

namespace eight::text {

namespace {

using Json = nlohmann::json;

std::string base64_decode(const std::string& s, const std::string& where) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(s.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const int v = value(c);
    check(v >= 0, "[tokenizer] ", where, ": precompiled_charsmap is not base64 (byte ",
          static_cast<int>(static_cast<uint8_t>(c)), ")");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// Rust's char::is_whitespace (Unicode White_Space), which tokenizers' Strip uses.
size_t whitespace_len(std::string_view s, bool at_end) {
  static const char* const kSpaces[] = {"\t",           "\n",           "\v",
                                        "\f",           "\r",           " ",
                                        "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80",
                                        "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82",
                                        "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85",
                                        "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88",
                                        "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8",
                                        "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
                                        "\xE3\x80\x80"};
  for (const char* w : kSpaces) {
    const std::string_view sp(w);
    if (s.size() >= sp.size() &&
        (at_end ? s.substr(s.size() - sp.size()) : s.substr(0, sp.size())) == sp)
      return sp.size();
  }
  return 0;
}

// A compiled regex for Replace, shared by the normalizer closures.
struct Pattern {
  pcre2_code* code = nullptr;
  explicit Pattern(const std::string& re, const std::string& where) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), PCRE2_UTF | PCRE2_UCP,
                         &err, &off, nullptr);
    check(code != nullptr, "[tokenizer] ", where, ": Replace pattern '", re,
          "' does not compile (at offset ", off, ")");
  }
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
  ~Pattern() { pcre2_code_free(code); }

  std::string replace_all(std::string_view s, const std::string& content) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    std::string out;
    size_t at = 0;
    while (at <= s.size()) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), at,
                                 PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      out.append(s.substr(at, ov[0] - at));
      out += content;
      if (ov[1] == ov[0]) {  // empty match: keep one character and move on
        if (ov[0] >= s.size()) {
          at = s.size() + 1;
          break;
        }
        const size_t len = std::max<size_t>(1, utf8_valid_char_len(s.substr(ov[0])));
        out.append(s.substr(ov[0], len));
        at = ov[0] + len;
      } else {
        at = ov[1];
      }
    }
    if (at < s.size()) out.append(s.substr(at));
    pcre2_match_data_free(md);
    return out;
  }
};

}  // namespace

std::string valid_utf8(std::string_view s) {
  std::string out;
  while (!s.empty()) {
    const size_t len = utf8_valid_char_len(s);
    out += len ? s.substr(0, len) : std::string_view("\xEF\xBF\xBD");
    s.remove_prefix(std::max<size_t>(len, 1));
  }
  return out;
}

namespace {

// tokenizers' Precompiled (spm_precompiled's normalize_string): per extended grapheme cluster
// (PCRE2's \X, UAX #29), a cluster under 6 bytes is replaced whole by the rule of its shortest
// matching prefix; otherwise, and when no rule matches, each character on its own.
std::string precompiled(const Charsmap& map, std::string_view s) {
  static const Pattern grapheme("\\X", "grapheme clusters");
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(grapheme.code, nullptr);
  std::string out;
  size_t at = 0;
  while (at < s.size()) {
    const int rc = pcre2_match(grapheme.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), at,
                               PCRE2_NO_UTF_CHECK, md, nullptr);
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t end =
        rc >= 0 && ov[1] > at ? ov[1] : at + std::max<size_t>(1, utf8_valid_char_len(s.substr(at)));
    const std::string_view g = s.substr(at, end - at);
    size_t used = 0;
    std::string_view r = g.size() < 6 ? map.match_shortest(g, &used) : std::string_view();
    if (used > 0) {
      out += r;
    } else {
      for (size_t i = 0; i < g.size();) {
        const size_t len = std::max<size_t>(1, utf8_valid_char_len(g.substr(i)));
        r = map.match_shortest(g.substr(i, len), &used);
        out += used > 0 ? r : g.substr(i, len);
        i += len;
      }
    }
    at = end;
  }
  pcre2_match_data_free(md);
  return out;
}

void add_normalizer(UnigramTokenizer::Impl& m, const Json& n) {
  const std::string& where = m.name;
  check(n.is_object() && n.contains("type"), "[tokenizer] ", where, ": normalizer without a type");
  const std::string type = n["type"].get<std::string>();
  if (type == "Sequence") {
    for (const Json& sub : n.at("normalizers")) add_normalizer(m, sub);
  } else if (type == "Precompiled") {
    const Json& b = n.at("precompiled_charsmap");
    if (b.is_null()) return;
    auto map = std::make_shared<Charsmap>(
        Charsmap::parse(base64_decode(b.get<std::string>(), where), where));
    m.hf_normalizers.push_back([map](std::string_view s) { return precompiled(*map, s); });
  } else if (type == "Strip") {
    const bool left = n.value("strip_left", false), right = n.value("strip_right", false);
    m.hf_normalizers.push_back([left, right](std::string_view s) {
      while (left && !s.empty()) {
        const size_t k = whitespace_len(s, false);
        if (k == 0) break;
        s.remove_prefix(k);
      }
      while (right && !s.empty()) {
        const size_t k = whitespace_len(s, true);
        if (k == 0) break;
        s.remove_suffix(k);
      }
      return std::string(s);
    });
  } else if (type == "Replace") {
    const Json& p = n.at("pattern");
    const std::string content = n.at("content").get<std::string>();
    if (p.contains("String")) {
      const std::string from = p["String"].get<std::string>();
      check(!from.empty(), "[tokenizer] ", where, ": Replace with an empty string pattern");
      m.hf_normalizers.push_back([from, content](std::string_view s) {
        std::string out;
        for (size_t at = 0;;) {
          const size_t k = s.find(from, at);
          out.append(s.substr(at, k == std::string_view::npos ? s.npos : k - at));
          if (k == std::string_view::npos) return out;
          out += content;
          at = k + from.size();
        }
      });
    } else {
      auto re = std::make_shared<Pattern>(p.at("Regex").get<std::string>(), where);
      m.hf_normalizers.push_back(
          [re, content](std::string_view s) { return re->replace_all(s, content); });
    }
  } else {
    fail("[tokenizer] ", where, ": normalizer '", type,
         "' is not supported with a Unigram model (Precompiled, Strip, Replace, Sequence are)");
  }
}

void set_pre_tokenizer(UnigramTokenizer::Impl& m, const Json& p) {
  if (p.is_null()) {
    m.hf_prepend = false;
    m.hf_split = false;
    m.hf_replacement.clear();
    return;
  }
  const std::string type = p.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const Json& sub : p.at("pretokenizers")) set_pre_tokenizer(m, sub);
  } else if (type == "WhitespaceSplit") {
    m.hf_whitespace_split = true;
  } else if (type == "Metaspace") {
    m.hf_replacement = p.value("replacement", std::string("\xE2\x96\x81"));
    check(!m.hf_replacement.empty(), "[tokenizer] ", m.name, ": Metaspace with no replacement");
    const std::string scheme = p.contains("prepend_scheme")
                                   ? p["prepend_scheme"].get<std::string>()
                                   : (p.value("add_prefix_space", true) ? "always" : "never");
    check(scheme == "always" || scheme == "first" || scheme == "never", "[tokenizer] ", m.name,
          ": Metaspace prepend_scheme '", scheme, "'");
    m.hf_prepend = scheme != "never";
    m.hf_prepend_first_only = scheme == "first";
    m.hf_split = p.value("split", true);
  } else {
    fail("[tokenizer] ", m.name, ": pre-tokenizer '", type,
         "' is not supported with a Unigram model (Metaspace, WhitespaceSplit are)");
  }
}

void set_post_processor(UnigramTokenizer::Impl& m, const Json& p) {
  if (p.is_null()) return;
  check(p.at("type") == "TemplateProcessing", "[tokenizer] ", m.name, ": post-processor ",
        p.at("type").dump(), " is not supported (TemplateProcessing is)");
  bool after = false;
  for (const Json& item : p.at("single")) {
    if (item.contains("Sequence")) {
      after = true;
      continue;
    }
    const std::string id = item.at("SpecialToken").at("id").get<std::string>();
    for (const Json& x : p.at("special_tokens").at(id).at("ids")) {
      const int32_t v = x.get<int32_t>();
      (after ? m.post_suffix : m.post_prefix).push_back(v);
    }
  }
}

}  // namespace

void UnigramTokenizer::Impl::encode_hf(std::string_view raw, std::vector<int32_t>& out) const {
  const std::string valid = valid_utf8(raw);
  const std::string_view text = valid;
  auto encode_segment = [&](std::string_view seg, bool at_start) {
    std::string s(seg);
    for (const auto& f : hf_normalizers) s = f(s);
    if (s.empty()) return;  // tokenizers drops segments that normalize to nothing
    std::vector<std::string> words;
    if (hf_whitespace_split) {
      size_t i = 0;
      while (i < s.size()) {
        while (i < s.size() && whitespace_len(std::string_view(s).substr(i), false))
          i += whitespace_len(std::string_view(s).substr(i), false);
        size_t j = i;
        while (j < s.size() && !whitespace_len(std::string_view(s).substr(j), false)) ++j;
        if (j > i) words.push_back(s.substr(i, j - i));
        i = j;
      }
    } else {
      words.push_back(s);
    }
    for (size_t w = 0; w < words.size(); ++w) {
      std::string word;
      if (hf_replacement.empty()) {
        word = words[w];
      } else {
        for (char c : words[w]) c == ' ' ? word += hf_replacement : word += c;
        // prepend_scheme "first" adds the marker only to text at the start of the input.
        const bool first = at_start && w == 0;
        if (hf_prepend && (!hf_prepend_first_only || first) && word.rfind(hf_replacement, 0) != 0)
          word = hf_replacement + word;
      }
      if (word.empty()) continue;
      if (!hf_split || hf_replacement.empty()) {
        segment(word, out);
        continue;
      }
      // Split before every marker (MergedWithNext): "a▁▁b" -> "a", "▁", "▁b".
      size_t begin = 0;
      for (size_t k = word.find(hf_replacement,
                                hf_replacement.size() * (word.rfind(hf_replacement, 0) == 0));
           k != std::string::npos; k = word.find(hf_replacement, k + hf_replacement.size())) {
        if (k > begin) segment(std::string_view(word).substr(begin, k - begin), out);
        begin = k;
      }
      segment(std::string_view(word).substr(begin), out);
    }
  };
  size_t seg = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& a : added)  // longest first
      if (text.substr(i, a.first.size()) == a.first) {
        hit = &a;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > seg) encode_segment(text.substr(seg, i - seg), seg == 0);
    out.push_back(hit->second);
    i += hit->first.size();
    seg = i;
  }
  if (seg < text.size()) encode_segment(text.substr(seg), seg == 0);
}

UnigramTokenizer UnigramTokenizer::from_tokenizer_json(std::string_view text,
                                                       const std::string& name) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail("[tokenizer] ", name, " is not valid JSON: ", e.what());
  }
  auto m = std::make_shared<Impl>();
  m->name = name;
  m->source = "tokenizer.json";
  m->double_scores = true;
  try {
    const Json& model = j.at("model");
    check(model.value("type", std::string()) == "Unigram", "[tokenizer] ", name, ": model type ",
          model.value("type", std::string("(none)")),
          " is not Unigram (BPE and WordPiece tokenizer.json files import with "
          "`eight convert-tokenizer`)");
    for (const Json& v : model.at("vocab")) {
      check(v.is_array() && v.size() == 2, "[tokenizer] ", name,
            ": vocab entries must be [piece, score]");
      m->pieces.push_back(
          {v[0].get<std::string>(), static_cast<float>(v[1].get<double>()), TokenType::Normal});
    }
    m->unk = model.at("unk_id").is_null() ? -1 : model.at("unk_id").get<int32_t>();
    m->byte_fallback = model.value("byte_fallback", false);
    const auto n = static_cast<int64_t>(m->pieces.size());
    for (const Json& a : j.value("added_tokens", Json::array())) {
      const int64_t id = a.at("id").get<int64_t>();
      const std::string content = a.at("content").get<std::string>();
      check(id >= 0 && id < n, "[tokenizer] ", name, ": added token '", content, "' has id ", id,
            " outside the vocabulary of ", n);
      check(!content.empty(), "[tokenizer] ", name, ": empty added token");
      m->added.emplace_back(content, static_cast<int32_t>(id));
      if (a.value("special", false)) m->pieces[static_cast<size_t>(id)].type = TokenType::Control;
      if (content == "</s>") m->eos = static_cast<int32_t>(id);
      if (content == "<pad>") m->pad = static_cast<int32_t>(id);
    }
    std::stable_sort(m->added.begin(), m->added.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    if (!j.value("normalizer", Json()).is_null()) add_normalizer(*m, j["normalizer"]);
    set_pre_tokenizer(*m, j.value("pre_tokenizer", Json()));
    set_post_processor(*m, j.value("post_processor", Json()));
  } catch (const nlohmann::json::exception& e) {
    fail("[tokenizer] ", name, ": unexpected tokenizer.json layout: ", e.what());
  }
  // tokenizers' byte-fallback pieces are the vocabulary's <0xNN> entries.
  for (UnigramPiece& p : m->pieces)
    if (m->byte_fallback && p.type == TokenType::Normal && p.text.size() == 6 &&
        p.text.rfind("<0x", 0) == 0)
      p.type = TokenType::Byte;
  if (m->unk >= 0 && m->unk < static_cast<int32_t>(m->pieces.size()))
    m->pieces[static_cast<size_t>(m->unk)].type = TokenType::Unknown;
  for (int32_t id : m->post_prefix)
    check(id >= 0 && id < static_cast<int32_t>(m->pieces.size()), "[tokenizer] ", name,
          ": post-processor id ", id);
  for (int32_t id : m->post_suffix)
    check(id >= 0 && id < static_cast<int32_t>(m->pieces.size()), "[tokenizer] ", name,
          ": post-processor id ", id);
  m->finish();
  return UnigramTokenizer(std::move(m));
}

}  // namespace eight::text
