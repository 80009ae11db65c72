#include "text/clip_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <locale.h>
#include <pcre2.h>
#include <wctype.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace eight::detail {
extern const unsigned char clip_bpe_merges_data[];
extern const size_t clip_bpe_merges_size;
}  // namespace eight::detail

namespace eight::text {
namespace {

constexpr const char* kPattern =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";
constexpr const char* kBos = "<|startoftext|>";
constexpr const char* kEos = "<|endoftext|>";

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes one UTF-8 code point at s[i]; malformed input yields U+FFFD and consumes one byte, so
// any byte string becomes valid UTF-8 for PCRE2.
uint32_t next_codepoint(std::string_view s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  int len = 0;
  uint32_t cp = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

// Unicode White_Space (what \s matches in Hugging Face's Rust regex).
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  // glibc's C.UTF-8 locale carries Unicode's simple lowercase mappings.
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  if (loc == static_cast<locale_t>(0)) return cp;
  return static_cast<uint32_t>(towlower_l(static_cast<wint_t>(cp), loc));
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// 256, 257, ... in byte order.
struct ByteAlphabet {
  uint32_t cp[256];
  ByteAlphabet() {
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      cp[b] = printable ? static_cast<uint32_t>(b) : 256 + n++;
    }
  }
};
const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

std::string byte_symbol(int b) {
  std::string s;
  append_utf8(byte_alphabet().cp[b], s);
  return s;
}

}  // namespace

uint32_t clip_byte_to_codepoint(uint8_t b) {
  return byte_alphabet().cp[b];
}

struct CLIPTokenizer::Splitter {
  pcre2_code* code = nullptr;
  Splitter() {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    check(code != nullptr, "[clip-tokenizer] cannot compile the split pattern (PCRE2 error ", err,
          ")");
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
  ~Splitter() { pcre2_code_free(code); }
  // re.findall: the matches only (the text between them is whitespace).
  void find_all(std::string_view text, std::vector<std::string_view>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    check(md != nullptr, "[clip-tokenizer] out of memory");
    size_t pos = 0;
    while (pos < text.size()) {
      const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                                 0, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) {  // the pattern never matches empty; guard anyway
        ++pos;
        continue;
      }
      out.push_back(text.substr(ov[0], ov[1] - ov[0]));
      pos = ov[1];
    }
    pcre2_match_data_free(md);
  }
};

CLIPTokenizer::CLIPTokenizer() = default;
CLIPTokenizer::CLIPTokenizer(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer& CLIPTokenizer::operator=(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer::~CLIPTokenizer() = default;

std::vector<std::string> CLIPTokenizer::parse_merges(const std::string& text, size_t limit) {
  std::vector<std::string> out;
  size_t pos = 0, line_no = 0;
  while (pos < text.size() && (limit == 0 || out.size() < limit)) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.starts_with("#version")) continue;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    check(sp != std::string::npos && sp > 0 && sp + 1 < line.size() &&
              line.find(' ', sp + 1) == std::string::npos,
          "[clip-tokenizer] merges line ", line_no, " is not two symbols: '", line, "'");
    out.push_back(std::move(line));
  }
  return out;
}

std::string_view CLIPTokenizer::openai_merges_text() {
  return {reinterpret_cast<const char*>(detail::clip_bpe_merges_data),
          detail::clip_bpe_merges_size};
}

const CLIPTokenizer& CLIPTokenizer::openai() {
  static const CLIPTokenizer tok =
      from_merges(parse_merges(std::string(openai_merges_text()), kOpenAIMerges));
  return tok;
}

CLIPTokenizer CLIPTokenizer::from_merges(const std::vector<std::string>& merges) {
  std::vector<std::string> tokens;
  tokens.reserve(512 + merges.size() + 2);
  // bytes_to_unicode's dict order: the printable bytes first, then the 68 remapped ones.
  std::vector<int> order;
  for (int b = 0; b < 256; ++b)
    if (byte_alphabet().cp[b] == static_cast<uint32_t>(b)) order.push_back(b);
  for (int b = 0; b < 256; ++b)
    if (byte_alphabet().cp[b] != static_cast<uint32_t>(b)) order.push_back(b);
  for (int b : order) tokens.push_back(byte_symbol(b));
  for (int b : order) tokens.push_back(byte_symbol(b) + "</w>");
  for (const auto& m : merges) {
    const size_t sp = m.find(' ');
    check(sp != std::string::npos, "[clip-tokenizer] merge '", m, "' has no space");
    tokens.push_back(m.substr(0, sp) + m.substr(sp + 1));
  }
  tokens.push_back(kBos);
  tokens.push_back(kEos);
  CLIPTokenizer t;
  t.build(std::move(tokens), merges);
  return t;
}

CLIPTokenizer CLIPTokenizer::from_vocab(const std::vector<std::string>& tokens,
                                        const std::vector<std::string>& merges) {
  CLIPTokenizer t;
  t.build(tokens, merges);
  return t;
}

CLIPTokenizer CLIPTokenizer::from_vocab_json(const std::string& vocab_json,
                                             const std::string& merges_txt) {
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(vocab_json);
  } catch (const nlohmann::json::exception& e) {
    fail("[clip-tokenizer] vocab.json is not valid JSON: ", e.what());
  }
  check(v.is_object(), "[clip-tokenizer] vocab.json is not an object of token -> id");
  check(v.size() < (1u << 24), "[clip-tokenizer] vocab.json has ", v.size(), " tokens");
  std::vector<std::string> tokens(v.size());
  std::vector<bool> seen(v.size(), false);
  for (auto it = v.begin(); it != v.end(); ++it) {
    check(it->is_number_integer(), "[clip-tokenizer] vocab.json: id of '", it.key(),
          "' is not an integer");
    const int64_t id = it->get<int64_t>();
    check(id >= 0 && id < static_cast<int64_t>(tokens.size()) && !seen[id],
          "[clip-tokenizer] vocab.json: id ", id, " of '", it.key(), "' is out of range [0, ",
          tokens.size(), ") or repeated");
    tokens[id] = it.key();
    seen[id] = true;
  }
  return from_vocab(tokens, parse_merges(merges_txt));
}

CLIPTokenizer CLIPTokenizer::from_tokenizer_json(const std::string& json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail("[clip-tokenizer] tokenizer.json is not valid JSON: ", e.what());
  }
  const auto model = j.find("model");
  check(j.is_object() && model != j.end() && model->is_object() && model->contains("vocab") &&
            model->contains("merges"),
        "[clip-tokenizer] tokenizer.json has no BPE model with vocab and merges");
  std::string merges_txt;
  for (const auto& m : (*model)["merges"]) {
    // Older files write "a b", newer ones ["a", "b"].
    if (m.is_string())
      merges_txt += m.get<std::string>() + "\n";
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      merges_txt += m[0].get<std::string>() + " " + m[1].get<std::string>() + "\n";
    else
      fail("[clip-tokenizer] tokenizer.json: malformed merge ", m.dump());
  }
  return from_vocab_json((*model)["vocab"].dump(), merges_txt);
}

void CLIPTokenizer::build(std::vector<std::string> tokens, std::vector<std::string> merges) {
  tokens_ = std::move(tokens);
  merges_ = std::move(merges);
  check(tokens_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
        "[clip-tokenizer] too many tokens");
  token_to_id_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i)
    token_to_id_.emplace(tokens_[i], static_cast<int32_t>(i));
  auto find = [&](const std::string& s) {
    auto it = token_to_id_.find(s);
    return it == token_to_id_.end() ? -1 : it->second;
  };
  bos_ = find(kBos);
  eos_ = find(kEos);
  check(bos_ >= 0 && eos_ >= 0, "[clip-tokenizer] the vocabulary lacks ", kBos, " or ", kEos);
  for (int b = 0; b < 256; ++b) {
    byte_id_[b] = find(byte_symbol(b));
    byte_end_id_[b] = find(byte_symbol(b) + "</w>");
    unicode_to_byte_[byte_alphabet().cp[b]] = static_cast<uint8_t>(b);
  }
  merge_ranks_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const std::string& m = merges_[r];
    const size_t sp = m.find(' ');
    check(sp != std::string::npos, "[clip-tokenizer] merge ", r, " '", m, "' has no space");
    const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    const int32_t ia = find(a), ib = find(b), iab = find(a + b);
    check(ia >= 0 && ib >= 0 && iab >= 0, "[clip-tokenizer] merge ", r, " '", m,
          "' uses or makes a token the vocabulary lacks");
    const uint64_t key = (static_cast<uint64_t>(ia) << 32) | static_cast<uint32_t>(ib);
    merge_ranks_.emplace(key, std::make_pair(static_cast<int32_t>(r), iab));  // first rank wins
  }
  splitter_ = std::make_unique<Splitter>();
}

std::string CLIPTokenizer::clean(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  size_t i = 0;
  while (i < text.size()) {
    const uint32_t cp = next_codepoint(text, i);
    if (is_white_space(cp)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping: "i" + U+0307
      out += 'i';
      append_utf8(0x307, out);
      continue;
    }
    append_utf8(to_lower(cp), out);
  }
  return out;
}

void CLIPTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece == kBos) return out.push_back(bos_);
  if (piece == kEos) return out.push_back(eos_);
  // word: symbol ids; the last byte carries the word end.
  std::vector<int32_t> word(piece.size());
  for (size_t k = 0; k < piece.size(); ++k) {
    const auto b = static_cast<uint8_t>(piece[k]);
    const int32_t id = k + 1 == piece.size() ? byte_end_id_[b] : byte_id_[b];
    word[k] = id >= 0 ? id : eos_;  // Hugging Face maps symbols outside the vocabulary to unk
  }
  // Repeatedly merge every occurrence of the lowest-ranked adjacent pair (SimpleTokenizer.bpe).
  while (word.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), best_id = -1;
    int32_t left = -1, right = -1;
    for (size_t k = 0; k + 1 < word.size(); ++k) {
      const uint64_t key =
          (static_cast<uint64_t>(word[k]) << 32) | static_cast<uint32_t>(word[k + 1]);
      auto it = merge_ranks_.find(key);
      if (it != merge_ranks_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_id = it->second.second;
        left = word[k];
        right = word[k + 1];
      }
    }
    if (best_id < 0) break;
    size_t w = 0;
    for (size_t k = 0; k < word.size(); ++k) {
      if (k + 1 < word.size() && word[k] == left && word[k + 1] == right) {
        word[w++] = best_id;
        ++k;
      } else {
        word[w++] = word[k];
      }
    }
    word.resize(w);
  }
  out.insert(out.end(), word.begin(), word.end());
}

std::vector<int32_t> CLIPTokenizer::encode_words(std::string_view text) const {
  const std::string cleaned = clean(text);
  std::vector<std::string_view> pieces;
  splitter_->find_all(cleaned, pieces);
  std::vector<int32_t> ids;
  for (const auto& p : pieces) encode_piece(p, ids);
  return ids;
}

std::vector<int32_t> CLIPTokenizer::encode(std::string_view text, int max_length) const {
  check(max_length <= 0 || max_length >= 2, "[clip-tokenizer] max_length ", max_length,
        " leaves no room for the start and end tokens");
  std::vector<int32_t> words = encode_words(text);
  if (max_length > 0 && words.size() + 2 > static_cast<size_t>(max_length))
    words.resize(static_cast<size_t>(max_length) - 2);
  std::vector<int32_t> ids;
  ids.reserve(words.size() + 2);
  ids.push_back(bos_);
  ids.insert(ids.end(), words.begin(), words.end());
  ids.push_back(eos_);
  return ids;
}

std::string CLIPTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string joined;
  for (int32_t id : ids) {
    check(id >= 0 && static_cast<size_t>(id) < tokens_.size(), "[clip-tokenizer] id ", id,
          " is outside the vocabulary of ", tokens_.size());
    if (id == bos_ || id == eos_) {
      joined += tokens_[id];
      continue;
    }
    std::string_view t = tokens_[id];
    const bool word_end = t.ends_with("</w>");
    if (word_end) t.remove_suffix(4);
    size_t i = 0;
    while (i < t.size()) {
      const uint32_t cp = next_codepoint(t, i);
      if (cp < 324) joined += static_cast<char>(unicode_to_byte_[cp]);
    }
    if (word_end) joined += ' ';
  }
  while (!joined.empty() && joined.back() == ' ') joined.pop_back();
  return joined;
}

}  // namespace eight::text
