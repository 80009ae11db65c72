#pragma once
// Text embeddings from a GGUF file: a BERT embedding model (architecture `bert`, pooled as its
// bert.pooling_type says) or a decoder LLM (llama, qwen2, phi3: the last token's final normed
// hidden state, as llama.cpp's LAST pooling), L2-normalised. Used by `eight embed` and the
// server's /v1/embeddings.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "text/tokenizer.h"

namespace eight {

class TextEmbedder {
 public:
  // Throws Error for a file that is neither (naming its architecture).
  static std::unique_ptr<TextEmbedder> load(const std::string& path);
  // True when the file's general.architecture is one this class embeds with (no tensors read).
  static bool handles(const std::string& path);
  virtual ~TextEmbedder() = default;

  virtual const text::Tokenizer& tokenizer() const = 0;
  virtual int64_t dim() const = 0;
  virtual int64_t max_tokens() const = 0;
  virtual std::string pooling() const = 0;  // "mean", "cls", "last"
  virtual std::string architecture() const = 0;
  // Token ids of a text as the model embeds it: BOS/EOS ([CLS]/[SEP]) as the model's metadata
  // says, special-token text in the text parsed (as HF tokenizers and llama.cpp do).
  std::vector<int32_t> tokenize(const std::string& text) const;
  // One normalised row per text: F32 [n, dim]. Throws Error when a text has more than
  // max_tokens() tokens.
  Tensor embed(const std::vector<std::string>& texts, ThreadPool& pool) const;
  virtual std::vector<float> embed_ids(const std::vector<int32_t>& ids, ThreadPool& pool) const = 0;
};

}  // namespace eight
