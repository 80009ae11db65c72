// Whisper tokenizer: tiktoken-style rank merging over the vocabulary stored in the model file.
#include "runtime/speech/whisper_tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace eight::whisper {

namespace {

// GPT-2's pre-tokenizer, which OpenAI's whisper tokenizers ("gpt2" and "multilingual") use.
const text::Regex& gpt2_regex() {
  static const text::Regex re(
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
  return re;
}

}  // namespace

const std::vector<std::string>& whisper_language_codes() {
  static const std::vector<std::string> codes = {
      "en", "zh", "de", "es",  "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
      "it", "id", "hi", "fi",  "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
      "th", "ur", "hr", "bg",  "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
      "az", "sl", "kn", "et",  "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
      "gl", "mr", "pa", "si",  "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
      "am", "yi", "lo", "uz",  "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
      "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};
  return codes;
}

int whisper_language_index(std::string_view code) {
  const auto& codes = whisper_language_codes();
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] == code) return static_cast<int>(i);
  return -1;
}

WhisperTokenizer::WhisperTokenizer(const std::vector<std::string>& vocab,
                                   const SpecialTokens& special)
    : special_(special) {
  check(special.eot > 0, "[whisper tokenizer] bad special tokens (eot ", special.eot, ")");
  // Files may store fewer tokens than the layout has (test models store only the 256 bytes);
  // ids without stored bytes decode as "[_extra_token_ID]", as whisper.cpp names them, and
  // are never produced by encode().
  const size_t stored = std::min(vocab.size(), static_cast<size_t>(special.eot));
  pieces_.assign(vocab.begin(), vocab.begin() + static_cast<std::ptrdiff_t>(stored));
  for (size_t id = stored; id < static_cast<size_t>(special.eot); ++id)
    pieces_.push_back("[_extra_token_" + std::to_string(id) + "]");
  // Ranks 0..255 are the single bytes in GPT-2's byte-to-unicode order (printable ones first).
  // Some converters store undecodable bytes as U+FFFD; the byte is known from the rank.
  std::vector<int> byte_order;
  for (int b = '!'; b <= '~'; ++b) byte_order.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) byte_order.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) byte_order.push_back(b);
  for (int b = 0; b < 256; ++b)
    if (std::find(byte_order.begin(), byte_order.end(), b) == byte_order.end())
      byte_order.push_back(b);
  for (size_t id = 0; id < 256 && id < stored; ++id)
    if (pieces_[id] == "\xEF\xBF\xBD")
      pieces_[id] = std::string(1, static_cast<char>(byte_order[id]));
  ranks_.reserve(pieces_.size());
  // A piece stored twice keeps its lowest id, as a rank table would.
  for (size_t id = 0; id < stored; ++id) ranks_.emplace(pieces_[id], static_cast<int32_t>(id));
}

int32_t WhisperTokenizer::rank(std::string_view bytes) const {
  auto it = ranks_.find(std::string(bytes));
  return it == ranks_.end() ? -1 : it->second;
}

void WhisperTokenizer::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (int32_t whole = rank(word); whole >= 0) {
    out.push_back(whole);
    return;
  }
  // parts[i] = byte offset where part i starts; the last entry is the end.
  std::vector<size_t> parts(word.size() + 1);
  for (size_t i = 0; i <= word.size(); ++i) parts[i] = i;
  auto pair_rank = [&](size_t i) { return rank(word.substr(parts[i], parts[i + 2] - parts[i])); };
  while (parts.size() > 2) {
    int32_t best = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 2 < parts.size(); ++i) {
      const int32_t r = pair_rank(i);
      if (r >= 0 && (best < 0 || r < best)) {
        best = r;
        best_i = i;
      }
    }
    if (best < 0) break;
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best_i) + 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string_view piece = word.substr(parts[i], parts[i + 1] - parts[i]);
    const int32_t id = rank(piece);
    check(id >= 0, "[whisper tokenizer] no token for byte 0x", std::hex,
          static_cast<int>(static_cast<unsigned char>(piece[0])), " at offset ", std::dec,
          parts[i]);
    out.push_back(id);
  }
}

std::vector<int32_t> WhisperTokenizer::encode(std::string_view text) const {
  std::vector<std::string_view> words;
  gpt2_regex().split(text, words);
  std::vector<int32_t> out;
  for (std::string_view w : words) merge_word(w, out);
  return out;
}

std::vector<int32_t> WhisperTokenizer::encode_if_possible(std::string_view text) const {
  try {
    return encode(text);
  } catch (const Error&) {
    return {};
  }
}

std::string_view WhisperTokenizer::piece(int32_t id) const {
  if (!is_text(id)) return {};
  return pieces_[id];
}

std::string WhisperTokenizer::special_name(int32_t id) const {
  const SpecialTokens& s = special_;
  if (id == s.eot) return "<|endoftext|>";
  if (id == s.sot) return "<|startoftranscript|>";
  if (id > s.sot && id <= s.sot + s.n_languages) {
    const auto& codes = whisper_language_codes();
    const size_t i = static_cast<size_t>(id - s.sot - 1);
    return i < codes.size() ? "<|" + codes[i] + "|>" : "<|lang" + std::to_string(i) + "|>";
  }
  if (id == s.translate) return "<|translate|>";
  if (id == s.transcribe) return "<|transcribe|>";
  if (id == s.solm) return "<|startoflm|>";
  if (id == s.prev) return "<|startofprev|>";
  if (id == s.nospeech) return "<|nospeech|>";
  if (id == s.notimestamps) return "<|notimestamps|>";
  if (id >= s.timestamp_begin) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "<|%.2f|>", (id - s.timestamp_begin) * 0.02);
    return buf;
  }
  return "";
}

std::string WhisperTokenizer::decode(const std::vector<int32_t>& ids, bool with_specials) const {
  std::string out;
  for (int32_t id : ids) {
    if (is_text(id))
      out += pieces_[id];
    else if (with_specials)
      out += special_name(id);
  }
  return out;
}

std::vector<int32_t> WhisperTokenizer::non_speech_tokens() const {
  // decoding.py's list: single symbols, then multi-character ones; music notes always count.
  static const char* const kSymbols[] = {
      "\"",  "#",  "(",  ")",   "*",   "+",   "/",   ":",  ";",   "<",  "=",  ">",
      "@",   "[",  "\\", "]",   "^",   "_",   "`",   "{",  "|",   "}",  "~",  "「",
      "」",  "『", "』", "<<",  ">>",  "<<<", ">>>", "--", "---", "-(", "-[", "('",
      "(\"", "((", "))", "(((", ")))", "[[",  "]]",  "{{", "}}",  "♪♪", "♪♪♪"};
  static const char* const kMusic[] = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
  std::vector<int32_t> out;
  auto add = [&](int32_t id) {
    for (int32_t x : out)
      if (x == id) return;
    out.push_back(id);
  };
  for (const char* s : {" -", " '"}) {
    const auto ids = encode_if_possible(s);
    if (!ids.empty()) add(ids[0]);
  }
  // The symbol alone and after a space. (Built with append: GCC 12 warns falsely on " " + s.)
  auto both = [](const char* sym) {
    std::string spaced(1, ' ');
    spaced.append(sym);
    return std::array<std::string, 2>{std::string(sym), spaced};
  };
  for (const char* s : kSymbols)
    for (const std::string& t : both(s)) {
      const auto ids = encode_if_possible(t);
      if (ids.size() == 1) add(ids[0]);
    }
  for (const char* s : kMusic)
    for (const std::string& t : both(s)) {
      const auto ids = encode_if_possible(t);
      if (!ids.empty()) add(ids[0]);
    }
  return out;
}

}  // namespace eight::whisper
