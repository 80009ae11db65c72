#pragma once
// Scaled dot-product attention over a KV cache, without materializing the score matrix
// (flash-attention style online softmax), with grouped-query heads, causal masking by absolute
// position and an optional sliding window.
//
//   // q: [Tq, n_head, d] f32; k, v: [Tk, n_kv_head, d] f32, f16 or q8_0; out: [Tq, n_head, d]
//   // (f32/f16 k and v may be head-major caches [n_kv_head, Tk, d] viewed as .permute({1, 0, 2}))
//   ops::attention(q, k_cache.slice(0, 0, n_past + T), v_cache..., out, pool,
//                  {.pos0 = n_past});
//
// Query t is at absolute position pos0 + t and, when causal, sees keys 0..pos0 + t; with
// window > 0 only the last `window` of those. n_head must be a multiple of n_kv_head (head h
// reads kv head h / (n_head / n_kv_head)). Work splits over (query, head), so results do not
// depend on the thread count. From 32 queries on, the CPU runs a tiled kernel instead (blocks of
// 64 queries against blocks of 64 keys as register-tiled products: image self-attention over
// thousands of tokens), whose work splits over (head, query block).
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::ops {

struct AttentionParams {
  float scale = 0;  // 0: 1 / sqrt(d)
  bool causal = true;
  int64_t pos0 = 0;    // absolute position of the first query
  int64_t window = 0;  // sliding window (0: none)
};

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
               ThreadPool& pool, const AttentionParams& params = {});

}  // namespace eight::ops
