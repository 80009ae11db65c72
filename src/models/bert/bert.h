#pragma once
// BERT sentence-embedding models as llama.cpp's converter writes them to GGUF (architecture
// `bert`: bge, all-MiniLM, e5, ...): token + position + token-type embeddings and a LayerNorm,
// then post-LN encoder layers (self-attention without a mask, GELU (erf) feed-forward), then the
// pooling `bert.pooling_type` names (1 mean, 2 CLS, 3 last token) and L2 normalisation, as
// transformers' BertModel followed by sentence-transformers' Pooling and Normalize.
//
//   auto m = bert::Model::load("bge-small-en-v1.5-f16.gguf");
//   std::vector<float> e = m->embed(m->tokenizer().encode("hello", true, false), pool);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

namespace eight::bert {

enum class Pooling : int { None = 0, Mean = 1, CLS = 2, Last = 3 };

struct Config {
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_ff = 0, n_ctx = 0, n_types = 0;
  float eps = 1e-12f;  // bert.attention.layer_norm_epsilon
  Pooling pooling = Pooling::Mean;
};

class Model {
 public:
  // Throws Error naming the missing key or tensor, or the shape that disagrees.
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> from_file(gguf::File file);
  ~Model();

  const Config& config() const;
  const text::Tokenizer& tokenizer() const;
  const gguf::File& file() const;
  // The last layer's hidden states F32 [T, n_embd] of one sequence (1 ≤ T ≤ n_ctx).
  Tensor hidden_states(const std::vector<int32_t>& ids, ThreadPool& pool) const;
  // Pooled as the model says, L2-normalised when normalize: [n_embd].
  std::vector<float> embed(const std::vector<int32_t>& ids, ThreadPool& pool,
                           bool normalize = true) const;

  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

const char* pooling_name(Pooling p);

}  // namespace eight::bert
