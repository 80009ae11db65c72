#pragma once
// Whisper's text side of OpenAI's tiktoken tokenizer, rebuilt from a whisper.cpp file's stored
// vocabulary: token id = BPE rank, so encoding is tiktoken's byte-pair merge (repeatedly join the
// adjacent pair whose concatenation has the lowest rank) after GPT-2's pre-tokenizer regex.
// Decoding concatenates the stored bytes of text tokens; special tokens render as "<|...|>" only
// when asked (timestamps as "<|1.23|>").
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "formats/whisper_ggml.h"

namespace eight::whisper {

class WhisperTokenizer {
 public:
  WhisperTokenizer(const std::vector<std::string>& vocab, const SpecialTokens& special);

  // Text tokens for `text` (no special tokens). Throws Error if a byte has no token.
  std::vector<int32_t> encode(std::string_view text) const;
  // The same, but [] when the vocabulary cannot spell the text (files that store only part of
  // their vocabulary): for optional lists such as the suppressed symbols.
  std::vector<int32_t> encode_if_possible(std::string_view text) const;
  // Concatenated bytes of the text tokens (ids < eot); specials are skipped unless
  // with_specials, which renders them as "<|endoftext|>", "<|en|>", "<|0.50|>", ...
  std::string decode(const std::vector<int32_t>& ids, bool with_specials = false) const;
  // The bytes of one token ("" for special tokens).
  std::string_view piece(int32_t id) const;
  std::string special_name(int32_t id) const;

  const SpecialTokens& special() const { return special_; }
  int32_t n_text_tokens() const { return special_.eot; }
  bool is_text(int32_t id) const { return id >= 0 && id < special_.eot; }
  bool is_timestamp(int32_t id) const { return id >= special_.timestamp_begin; }

  // OpenAI's non_speech_tokens(): symbols and music notes that are never speech, as one token
  // alone or after a space (plus " -" and " '"), suppressed by default while decoding.
  std::vector<int32_t> non_speech_tokens() const;

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  int32_t rank(std::string_view bytes) const;

  std::vector<std::string> pieces_;  // index = token id (< eot)
  std::unordered_map<std::string, int32_t> ranks_;
  SpecialTokens special_;
};

// OpenAI's language codes in token order (en, zh, de, ...); v3 adds "yue" at index 99.
const std::vector<std::string>& whisper_language_codes();
// Index of a code in that list or -1.
int whisper_language_index(std::string_view code);

}  // namespace eight::whisper
