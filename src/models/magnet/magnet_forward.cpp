// MAGNeT LM forward pass (see magnet.h): B sequences batched through the linear layers,
// attention per sequence.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/magnet/magnet_internal.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/norm.h"

namespace eight::magnet {

namespace {

// Self-attention where query t sees keys t-ctx..t+ctx only (the restricted stages): with 2·ctx+1
// keys per query a direct loop is cheaper than masking a full T x T product.
void local_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     int64_t ctx, ThreadPool& pool) {
  const int64_t T = q.size(0), H = q.size(1), d = q.size(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  pool.parallel_for(T * H, [&](int64_t task, int) {
    const int64_t t = task / H, h = task % H;
    const int64_t lo = std::max<int64_t>(0, t - ctx), hi = std::min(T - 1, t + ctx);
    const float* qp = q.data<const float>() + t * q.stride(0) + h * d;
    float w[1024];  // 2·ctx+1 scores; ctx is checked against this below
    float mx = -INFINITY;
    for (int64_t j = lo; j <= hi; ++j) {
      const float* kp = k.data<const float>() + j * k.stride(0) + h * d;
      float s = 0;
      for (int64_t i = 0; i < d; ++i) s += qp[i] * kp[i];
      w[j - lo] = s * scale;
      mx = std::max(mx, w[j - lo]);
    }
    float sum = 0;
    for (int64_t j = lo; j <= hi; ++j) sum += w[j - lo] = std::exp(w[j - lo] - mx);
    float* o = out.data<float>() + t * out.stride(0) + h * d;
    std::fill(o, o + d, 0.f);
    for (int64_t j = lo; j <= hi; ++j) {
      const float* vp = v.data<const float>() + j * v.stride(0) + h * d;
      const float p = w[j - lo] / sum;
      for (int64_t i = 0; i < d; ++i) o[i] += p * vp[i];
    }
  });
}

void norm(const Tensor& x, const Tensor& y, const Norm& n) {
  ops::layer_norm(x, y, {.weight = &n.weight, .bias = &n.bias, .eps = 1e-5f});
}

}  // namespace

Tensor LM::condition(const Tensor& hidden, int64_t n_valid, ThreadPool& pool) const {
  const Impl& m = *impl_;
  check(hidden.dim() == 2 && hidden.size(1) == m.c.text_dim, "[magnet] the T5 states ",
        hidden.shape().str(), " do not have the conditioner's width ", m.c.text_dim,
        " (a t5-base encoder gives 768)");
  const int64_t S = hidden.size(0);
  check(n_valid >= 0 && n_valid <= S, "[magnet] ", n_valid, " valid tokens of ", S);
  Tensor out = Tensor::empty({S, m.c.dim}, DType::F32);
  nn::linear(out, hidden, m.output_proj, pool);
  if (n_valid < S)
    std::fill(out.data<float>() + n_valid * m.c.dim, out.data<float>() + S * m.c.dim, 0.f);
  return out;
}

Tensor LM::forward(const Tensor& codes, const std::vector<Tensor>& conds, int64_t stage,
                   int64_t codebook, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const Config& c = m.c;
  check(codes.dim() == 3 && codes.dtype() == DType::I32 && codes.size(1) == c.n_q &&
            codes.is_contiguous(),
        "[magnet] codes must be int32 [B, ", c.n_q, ", T], not ", codes.shape().str());
  const int64_t B = codes.size(0), T = codes.size(2), D = c.dim, H = c.num_heads, d = D / H;
  check(B >= 1 && T >= 1 && static_cast<int64_t>(conds.size()) == B, "[magnet] ", B,
        " sequences of ", T, " frames with ", conds.size(), " conditions");
  check(stage < c.n_q && codebook < c.n_q, "[magnet] stage ", stage, " / codebook ", codebook,
        " of ", c.n_q);
  const bool local = stage > 0 && c.subcodes_context >= 0;
  check(!local || c.subcodes_context < 500, "[magnet] subcodes_context ", c.subcodes_context);
  const int32_t* ids = codes.data<const int32_t>();
  for (int64_t i = 0; i < codes.numel(); ++i)
    check(ids[i] >= 0 && ids[i] <= c.card, "[magnet] code ", ids[i], " is outside 0..", c.card,
          " (", c.card, " is the mask)");

  // Conditions: the null one is a single zero row (any number of zero keys attends the same).
  std::vector<Tensor> src(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const Tensor& x = conds[static_cast<size_t>(b)];
    if (!x.defined() || x.numel() == 0) {
      src[static_cast<size_t>(b)] = Tensor::zeros({1, D}, DType::F32);
      continue;
    }
    check(x.dim() == 2 && x.size(1) == D && x.dtype() == DType::F32, "[magnet] condition ", b,
          " is ", x.shape().str(), ", not f32 [S, ", D, "]");
    Tensor s = x.contiguous().clone();
    if (c.cross_pos_emb) {
      std::vector<float> pe(static_cast<size_t>(D));
      for (int64_t t = 0; t < s.size(0); ++t) {
        sin_embedding(t, D, c.max_period, pe.data());
        float* row = s.data<float>() + t * D;
        for (int64_t i = 0; i < D; ++i)
          row[i] += static_cast<float>(c.cross_pos_emb_scale) * pe[static_cast<size_t>(i)];
      }
    }
    src[static_cast<size_t>(b)] = s;
  }

  const int64_t N = B * T;
  Tensor x = Tensor::zeros({N, D}, DType::F32), h = Tensor::empty({N, D}, DType::F32);
  Tensor e = Tensor::empty({T, D}, DType::F32);
  std::vector<float> pe(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b) {
    Tensor xb = x.slice(0, b * T, (b + 1) * T);
    for (int64_t k = 0; k < c.n_q; ++k) {
      nn::embedding(e, m.emb[static_cast<size_t>(k)], ids + (b * c.n_q + k) * T, T);
      ops::add(xb, e, xb);
    }
    for (int64_t t = 0; t < T; ++t) {
      sin_embedding(t, D, c.max_period, pe.data());
      float* row = xb.data<float>() + t * D;
      for (int64_t i = 0; i < D; ++i)
        row[i] += static_cast<float>(c.positional_scale) * pe[static_cast<size_t>(i)];
    }
  }

  Tensor qkv = Tensor::empty({N, 3 * D}, DType::F32), a = Tensor::empty({N, D}, DType::F32);
  Tensor f = Tensor::empty({N, c.ffn}, DType::F32);
  for (const Layer& L : m.layers) {
    norm(x, h, L.norm1);
    nn::linear(qkv, h, L.in_proj, pool);
    for (int64_t b = 0; b < B; ++b) {
      const Tensor parts = qkv.slice(0, b * T, (b + 1) * T).reshape({T, 3, H, d});
      const Tensor q = parts.select(1, 0), k = parts.select(1, 1), v = parts.select(1, 2);
      const Tensor ab = a.slice(0, b * T, (b + 1) * T).reshape({T, H, d});
      if (local)
        local_attention(q, k, v, ab, c.subcodes_context, pool);
      else
        ops::attention(q, k, v, ab, pool, {.causal = false});
    }
    nn::linear(h, a, L.out_proj, pool);
    ops::add(x, h, x);

    norm(x, h, L.norm_cross);
    nn::linear(a, h, L.cross_q, pool);  // all queries at once, keys per condition
    for (int64_t b = 0; b < B; ++b) {
      const Tensor& s = src[static_cast<size_t>(b)];
      const int64_t S = s.size(0);
      Tensor ck = Tensor::empty({S, D}, DType::F32), cv = Tensor::empty({S, D}, DType::F32);
      nn::linear(ck, s, L.cross_k, pool);
      nn::linear(cv, s, L.cross_v, pool);
      const Tensor qb = a.slice(0, b * T, (b + 1) * T).contiguous().reshape({T, H, d});
      ops::attention(qb, ck.reshape({S, H, d}), cv.reshape({S, H, d}),
                     h.slice(0, b * T, (b + 1) * T).reshape({T, H, d}), pool, {.causal = false});
    }
    nn::linear(a, h, L.cross_o, pool);
    ops::add(x, a, x);

    norm(x, h, L.norm2);
    nn::linear(f, h, L.linear1, pool);
    ops::activation(ops::Activation::GELU, f, f);
    nn::linear(h, f, L.linear2, pool);
    ops::add(x, h, x);
  }
  if (m.out_norm.weight.defined()) norm(x, x, m.out_norm);

  const int64_t K = codebook >= 0 ? 1 : c.n_q;
  Tensor logits = Tensor::empty({B, K, T, c.card}, DType::F32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      nn::linear(logits.select(0, b).select(0, k), x.slice(0, b * T, (b + 1) * T),
                 m.linears[static_cast<size_t>(codebook >= 0 ? codebook : k)], pool);
  return logits;
}

}  // namespace eight::magnet
