#pragma once
// Internals shared by the tokenizer files: the vocabulary and the per-kind encoders.
#include <array>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/tokenizer.h"

namespace eight::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A compiled PCRE2 pattern (UTF + UCP, JIT when available).
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) = delete;
  ~Regex();
  // Splits `text` into matches and the gaps between them (both kept, in order), as Hugging
  // Face's Split(behavior=Isolated) and llama.cpp's regex split do. Offsets are byte ranges.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code*
  std::string pattern_;
};

// The pre-tokenizer regexes of a tokenizer.ggml.pre name (applied in sequence; see
// pre_tokenizers.cpp). A registered name eight cannot split correctly throws Error; a name nobody
// registered gets GPT-2's regex and a warning.
std::vector<std::string> pre_tokenizer_patterns(const std::string& pre);
// True for the tokenizers whose whole pre-token is looked up before merging (Llama 3, Tekken...).
bool pre_tokenizer_ignores_merges(const std::string& pre);
// Every name pre_tokenizer_patterns maps to regexes.
std::vector<std::string> known_pre_tokenizers();
// `text` split by the name's regex sequence (compiled here: for tests and tools, not the encode
// path, which keeps its compiled regexes). Every byte is in exactly one piece, in order.
std::vector<std::string_view> pre_tokenize(const std::string& pre, std::string_view text);

struct Tokenizer::Impl {
  TokenizerKind kind = TokenizerKind::BPE;
  std::string model, pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  TokenMap token_to_id;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, cls = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // SPM: "▁" before the text
  std::vector<int32_t> eog;
  // Control, unknown and user-defined tokens, longest first, for splitting them out of the text
  // (llama.cpp's tokenizer_st_partition).
  std::vector<int32_t> special_tokens;
  // Split out only when special-token text is parsed: control and unknown tokens, and any token
  // that is BOS, EOS, ends generation or has the text of one (Phi-3's user-defined "</s>").
  std::vector<bool> gated;
  // Whitespace a special token swallows on its left / right (llama.cpp's LSTRIP / RSTRIP
  // attributes, which it sets from the model's name: Phi-3, jina-v2, modern-bert).
  std::vector<bool> lstrip, rstrip;

  struct Fragment {
    int32_t token;  // -1 for raw text
    std::string_view text;
  };
  // Splits text into raw fragments and special tokens, longest token first, left to right.
  // protect_special() marks sit inside special-token text, so marked occurrences never match.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_fragments(const std::vector<Fragment>& frags, bool add_special, bool unmark,
                        std::vector<int32_t>& out) const;

  // BPE: (left id << 32 | right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  bool ignore_merges = false;
  std::vector<Regex> pre_regexes;
  std::array<std::string, 256> byte_to_unicode;  // GPT-2's byte-level alphabet
  std::unordered_map<uint32_t, uint8_t> unicode_to_byte;
  // SPM byte fallback: the id of <0xNN>, or -1.
  std::array<int32_t, 256> byte_tokens{};

  // Word -> ids cache (BPE words repeat a lot in real text).
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  int32_t find(std::string_view s) const {
    auto it = token_to_id.find(s);
    return it == token_to_id.end() ? -1 : it->second;
  }

  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_spm_chunk(std::string_view text, std::vector<int32_t>& out) const;
  // SPM: no mergeable token has "▁" right after another character, so merges never cross the
  // start of a "▁word" and each such chunk can be encoded (and cached) on its own.
  bool spm_chunkable = false;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_wpm(std::string_view text, std::vector<int32_t>& out) const;
  void init_bpe();
  void init_spm();
  // special_tokens, gated and the strip attributes (model_name: general.name).
  void init_special(const std::string& model_name);
};

}  // namespace eight::text
