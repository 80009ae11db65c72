// T5 encoder forward pass (transformers' T5Stack over T5Block, encoder side), one sequence.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/t5/t5_internal.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::t5 {

namespace {

// Self-attention of one layer: q, k, v, out [T, H·d_kv] f32; table [buckets, H] f32;
// bucket[j - i + T - 1] the bucket of key j for query i. Scores are q·k (no 1/sqrt(d) in T5)
// plus the position bias; keys from n_valid on are padding and get no weight.
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
               const Tensor& table, const std::vector<int32_t>& bucket, int64_t n_valid, int64_t H,
               ThreadPool& pool) {
  const int64_t T = q.size(0), dk = q.size(1) / H;
  const float* bias = table.data<const float>();
  Tensor scores = Tensor::empty({T, T}, DType::F32), head = Tensor::empty({T, dk}, DType::F32);
  for (int64_t h = 0; h < H; ++h) {
    const Tensor qh = q.reshape({T, H, dk}).select(1, h);               // [T, dk] strided
    const Tensor kh = k.reshape({T, H, dk}).select(1, h).contiguous();  // [T, dk]
    const Tensor vt = v.reshape({T, H, dk}).select(1, h).transpose(0, 1).contiguous();  // [dk, T]
    ops::matmul(qh, kh, scores, pool);
    pool.parallel_for(T, [&](int64_t i, int) {
      float* s = scores.data<float>() + i * T;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n_valid; ++j) {
        s[j] += bias[bucket[static_cast<size_t>(j - i + T - 1)] * H + h];
        mx = std::max(mx, s[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < n_valid; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int64_t j = 0; j < n_valid; ++j) s[j] /= sum;
      for (int64_t j = n_valid; j < T; ++j) s[j] = 0;
    });
    ops::matmul(scores, vt, head, pool);
    for (int64_t i = 0; i < T; ++i)
      std::memcpy(out.data<float>() + (i * H + h) * dk, head.data<const float>() + i * dk,
                  static_cast<size_t>(dk) * sizeof(float));
  }
}

ops::Activation activation_of(FeedForward ff) {
  switch (ff) {
    case FeedForward::ReLU:
      return ops::Activation::ReLU;
    case FeedForward::GatedGeluNew:
    case FeedForward::GeluNew:
      return ops::Activation::GELUTanh;  // gelu_new is the tanh approximation
    case FeedForward::GatedGelu:
    case FeedForward::Gelu:
      break;
  }
  return ops::Activation::GELU;
}

}  // namespace

Tensor Encoder::forward(const std::vector<int32_t>& ids, int64_t n_valid, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const Config& c = m.c;
  const auto T = static_cast<int64_t>(ids.size());
  check(T >= 1, "[t5] nothing to encode (no tokens)");
  check(n_valid >= 1 && n_valid <= T, "[t5] ", n_valid, " unpadded tokens of ", T);
  const int64_t D = c.d_model, inner = c.d_kv * c.n_heads;
  std::vector<int32_t> bucket(static_cast<size_t>(2 * T - 1));
  for (int64_t r = -(T - 1); r <= T - 1; ++r)
    bucket[static_cast<size_t>(r + T - 1)] =
        static_cast<int32_t>(relative_position_bucket(r, c.num_buckets, c.max_distance));

  Tensor x = Tensor::empty({T, D}, DType::F32), h = Tensor::empty({T, D}, DType::F32);
  Tensor q = Tensor::empty({T, inner}, DType::F32), k = Tensor::empty({T, inner}, DType::F32),
         v = Tensor::empty({T, inner}, DType::F32), a = Tensor::empty({T, inner}, DType::F32);
  Tensor f0 = Tensor::empty({T, c.d_ff}, DType::F32);
  Tensor f1 = c.gated() ? Tensor::empty({T, c.d_ff}, DType::F32) : Tensor();
  nn::embedding(x, m.shared, ids.data(), T);  // T5 does not scale its embeddings
  const Tensor* table = &m.layers[0].bias;
  for (const Layer& L : m.layers) {
    if (c.per_layer_bias) table = &L.bias;
    // T5LayerSelfAttention: x + o(attention(rms_norm(x)))
    ops::rms_norm(x, h, {.weight = &L.attn_norm, .eps = c.eps});
    nn::linear(q, h, L.q, pool);
    nn::linear(k, h, L.k, pool);
    nn::linear(v, h, L.v, pool);
    attention(q, k, v, a, *table, bucket, n_valid, c.n_heads, pool);
    nn::linear(h, a, L.o, pool);
    ops::add(x, h, x);
    // T5LayerFF: x + wo(act(wi(rms_norm(x)))) or x + wo(act(wi_0(.)) * wi_1(.))
    ops::rms_norm(x, h, {.weight = &L.ff_norm, .eps = c.eps});
    nn::linear(f0, h, L.wi0, pool);
    ops::activation(activation_of(c.ff), f0, f0);
    if (c.gated()) {
      nn::linear(f1, h, L.wi1, pool);
      ops::mul(f0, f1, f0);
    }
    nn::linear(h, f0, L.wo, pool);
    ops::add(x, h, x);
  }
  ops::rms_norm(x, x, {.weight = &m.final_norm, .eps = c.eps});
  return x;
}

}  // namespace eight::t5
