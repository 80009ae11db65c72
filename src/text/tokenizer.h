#pragma once
// Tokenizers built from a model file's GGUF tokenizer metadata (tokenizer.ggml.*), exact to the
// reference implementations (Hugging Face tokenizers / SentencePiece, as llama.cpp reproduces):
//   llama : SentencePiece-style BPE by token scores, byte fallback <0xNN>, "▁" space handling
//   gpt2  : byte-level BPE by merge rank, with the pre-tokenizer named by tokenizer.ggml.pre
//   bert  : WordPiece (greedy longest match) after BERT's basic pre-tokenization
//
//   auto tok = text::Tokenizer::from_gguf(gguf::File::open(path));
//   std::vector<int32_t> ids = tok.encode("Hello", /*add_special=*/true, /*parse_special=*/false);
//   std::string s = tok.decode(ids);
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace eight::gguf {
class File;
}

namespace eight::text {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class TokenizerKind { SPM, BPE, WPM };

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,*_token_id,add_*_token}.
  // Throws Error naming the key and numbers for anything inconsistent.
  static Tokenizer from_gguf(const gguf::File& file);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: BOS/EOS (and BERT's [CLS]/[SEP]) as the model's add_*_token keys say.
  // parse_special: control and unknown tokens written in the text (e.g. "<|im_end|>") become
  // their ids, as llama.cpp's tokenizer does (longest token first); otherwise they, and any
  // token that is BOS/EOS/end-of-generation, are tokenized as plain text. Other user-defined
  // tokens always match (as llama.cpp). Models named Phi-3 drop whitespace after their special
  // tokens, as llama.cpp does.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Chat prompts: only the template may write special tokens. protect_special() marks the
  // special-token text in a message's content (call it before the template runs: the marks
  // survive string filters such as trim); encode_chat() tokenizes the rendered prompt with the
  // template's special tokens parsed, marked text as plain text, and the marks removed.
  std::string protect_special(std::string_view content) const;
  std::vector<int32_t> encode_chat(std::string_view rendered, bool add_special) const;
  // Concatenated token bytes. Control tokens are rendered only when render_special.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;
  // The bytes one token contributes when decoding (may be part of a UTF-8 character).
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  TokenizerKind kind() const;
  const std::string& model_name() const;  // tokenizer.ggml.model
  const std::string& pre_name() const;    // tokenizer.ggml.pre
  int32_t size() const;
  const std::string& token_text(int32_t id) const;  // as stored in the vocabulary
  TokenType token_type(int32_t id) const;
  int32_t find(std::string_view token_text) const;  // -1 when absent

  int32_t bos() const;  // -1 when the model has none
  int32_t eos() const;
  int32_t eot() const;  // end of turn (<|eot_id|>, <|im_end|>, <|end|>, <|EOT|>, ...) or -1
  int32_t unk() const;
  bool add_bos() const;
  bool add_eos() const;
  // End-of-generation ids: EOS, EOT, EOM and the end-of-turn tokens present in the vocabulary.
  const std::vector<int32_t>& eog_ids() const;
  bool is_eog(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text without ever emitting half of a multi-byte UTF-8
// character: bytes of an incomplete character are held until the rest arrives.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(&tok), render_special_(render_special) {}
  // Returns the text that is complete after this token (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held (an incomplete character at the end of the stream, as raw bytes).
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool render_special_;
  bool first_ = true;
  std::string pending_;
};

// Length of the longest prefix of `s` that ends on a UTF-8 character boundary (an incomplete
// final character is excluded; invalid bytes count as complete so they never stall a stream).
size_t utf8_complete_prefix(std::string_view s);

}  // namespace eight::text
