#pragma once
// The CLIP tokenizer (OpenAI's SimpleTokenizer, as Hugging Face's CLIPTokenizer runs it): the text
// has runs of whitespace collapsed to one space, is trimmed and lower-cased, split by
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (whitespace between matches is dropped), and each piece is mapped to GPT-2's byte-level
// alphabet and merged by byte-pair ranks, its last symbol carrying the "</w>" word end.
//
// Not done (neither Hugging Face's tokenizer nor ours without ftfy): ftfy's mojibake repair and
// HTML unescaping. Also not done: NFC normalization (Hugging Face applies it; text in composed
// form, as nearly all text is, is unaffected). Lower-casing is Unicode's per-character mapping
// (glibc's C.UTF-8 table, plus U+0130 -> "i" U+0307), as Hugging Face's Lowercase normalizer does.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace eight::text {

class CLIPTokenizer {
 public:
  // OpenAI's merges file: the first line ("#version: ...") is skipped, then at most `limit`
  // merges "a b" are taken (0: all). SimpleTokenizer uses 48894 = 49152 - 256 - 2.
  static std::vector<std::string> parse_merges(const std::string& text, size_t limit = 0);
  static constexpr size_t kOpenAIMerges = 48894;
  // OpenAI's merges file as eight ships it (data/clip-bpe-merges.txt, built into the binary), and
  // the tokenizer it makes: the vocabulary of every CLIP text encoder (SDXL's single files carry
  // none).
  static std::string_view openai_merges_text();
  static const CLIPTokenizer& openai();

  // The vocabulary SimpleTokenizer derives from its merges: the 256 byte symbols, the same with
  // "</w>", every merge's concatenation in rank order, then <|startoftext|> and <|endoftext|>.
  static CLIPTokenizer from_merges(const std::vector<std::string>& merges);
  // An explicit vocabulary (vocab.json's token -> id, or a GGUF token list) with its merges.
  static CLIPTokenizer from_vocab(const std::vector<std::string>& tokens,
                                  const std::vector<std::string>& merges);
  static CLIPTokenizer from_vocab_json(const std::string& vocab_json,
                                       const std::string& merges_txt);
  // A Hugging Face tokenizer.json (model.type BPE with vocab and merges).
  static CLIPTokenizer from_tokenizer_json(const std::string& json_text);

  // <|startoftext|> ids... <|endoftext|>, truncated to max_length tokens (the last kept token is
  // then <|endoftext|>); max_length <= 0: no limit. Not padded.
  std::vector<int32_t> encode(std::string_view text, int max_length = 77) const;
  // The BPE ids of the text alone, without start/end tokens.
  std::vector<int32_t> encode_words(std::string_view text) const;
  // Text of ids: "</w>" becomes a space, byte symbols become bytes, special tokens are kept.
  std::string decode(const std::vector<int32_t>& ids) const;

  // The text cleanup applied before splitting (whitespace collapsed, trimmed, lower-cased).
  static std::string clean(std::string_view text);

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  size_t vocab_size() const { return tokens_.size(); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<std::string>& merges() const { return merges_; }

  CLIPTokenizer(CLIPTokenizer&&) noexcept;
  CLIPTokenizer& operator=(CLIPTokenizer&&) noexcept;
  ~CLIPTokenizer();

 private:
  CLIPTokenizer();
  void build(std::vector<std::string> tokens, std::vector<std::string> merges);
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_, merges_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_ranks_;
  int32_t byte_id_[256]{};          // a byte's symbol inside a word
  int32_t byte_end_id_[256]{};      // the same symbol ending a word ("</w>")
  uint8_t unicode_to_byte_[324]{};  // GPT-2 byte alphabet code point -> byte (all < 324)
  int32_t bos_ = -1, eos_ = -1;
  struct Splitter;
  std::unique_ptr<Splitter> splitter_;
};

// GPT-2's reversible byte -> printable code point map (bytes_to_unicode).
uint32_t clip_byte_to_codepoint(uint8_t b);

}  // namespace eight::text
