// CLIP's text tower (transformers' CLIPTextTransformer): token + position embeddings -> causal
// encoder -> final_layer_norm at the pooled token -> text_projection, L2-normalized. Texts are
// not padded: every text's tokens go through the matmuls together, attention runs per text, and
// causality makes this equal to the padded batch.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/clip/clip_internal.h"
#include "ops/get_rows.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::clip {

Tensor forward_text(const Model::Impl& m, const std::vector<std::vector<int32_t>>& ids,
                    ThreadPool& pool) {
  const Config& c = m.config;
  const TextWeights& w = m.text;
  const int64_t D = c.text.hidden, n = static_cast<int64_t>(ids.size());
  if (n == 0) return Tensor::empty({0, c.projection_dim}, DType::F32);
  int64_t total = 0;
  std::vector<int64_t> lens;
  for (const auto& t : ids) {
    check(!t.empty() && static_cast<int64_t>(t.size()) <= c.max_positions, "[clip] a text of ",
          t.size(), " tokens is outside [1, ", c.max_positions, "]");
    for (int32_t id : t)
      check(id >= 0 && id < w.token_embedding.size(0), "[clip] token id ", id,
            " is outside the vocabulary of ", w.token_embedding.size(0));
    lens.push_back(static_cast<int64_t>(t.size()));
    total += lens.back();
  }
  Tensor all_ids = Tensor::empty({total}, DType::I32);
  int64_t r = 0;
  for (const auto& t : ids) {
    std::memcpy(all_ids.data<int32_t>() + r, t.data(), t.size() * sizeof(int32_t));
    r += static_cast<int64_t>(t.size());
  }
  Tensor x = Tensor::empty({total, D}, DType::F32);  // [total, D]
  ops::get_rows(w.token_embedding, all_ids, x);
  r = 0;
  for (int64_t len : lens) {
    for (int64_t t = 0; t < len; ++t) {
      float* row = x.data<float>() + (r + t) * D;
      const float* pos = w.position_embedding.data<float>() + t * D;
      for (int64_t j = 0; j < D; ++j) row[j] += pos[j];
    }
    r += len;
  }
  run_tower(w.tower, x, lens, true, pool);

  // The pooled token: the first end-of-text token, or (eos_token_id 2 configs) the largest id.
  Tensor pooled = Tensor::empty({n, D}, DType::F32);
  r = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto& t = ids[static_cast<size_t>(i)];
    int64_t at = 0;
    if (m.pool_at_argmax) {
      at = std::max_element(t.begin(), t.end()) - t.begin();
    } else {
      auto it = std::find(t.begin(), t.end(), c.eos_token_id);
      at = it == t.end() ? 0 : it - t.begin();
    }
    std::memcpy(pooled.data<float>() + i * D, x.data<float>() + (r + at) * D,
                static_cast<size_t>(D) * sizeof(float));
    r += static_cast<int64_t>(t.size());
  }
  ops::layer_norm(pooled, pooled,
                  {.weight = &w.final_norm.weight,
                   .bias = &w.final_norm.bias,
                   .eps = static_cast<float>(c.text.eps)});
  Tensor out = ops::matmul(pooled, w.projection, pool);  // [n, projection_dim]
  normalize_rows(out);
  return out;
}

}  // namespace eight::clip
