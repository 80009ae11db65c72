// BLIP's BERT text side (transformers' BlipTextModel / BlipTextLMHeadModel): word + position
// embeddings with a LayerNorm, then post-norm layers of self-attention (causal in the decoder,
// bidirectional in the VQA question encoder), cross-attention to encoder states, and a GELU
// feed-forward; the decoder's LM head is dense + GELU + LayerNorm + the vocabulary projection.
// The decoder runs one token per beam per step against a self-attention cache, which equals the
// full causal forward transformers computes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/blip/blip_internal.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/get_rows.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::blip {
namespace {

const Tensor* opt(const Tensor& t) {
  return t.defined() ? &t : nullptr;
}

Tensor linear(const Tensor& x, const Linear& l, ThreadPool& pool) {
  return ops::matmul(x, l.weight, pool, {.bias = opt(l.bias)});
}

// One query row against n keys, per head: out = softmax(q k^T / sqrt(d)) v. k and v rows are
// `ld` floats apart.
void attend(const float* q, const float* k, const float* v, int64_t n, int64_t ld, int64_t D,
            int64_t H, float* out, std::vector<float>& w) {
  const int64_t d = D / H;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  w.resize(static_cast<size_t>(n));
  for (int64_t h = 0; h < H; ++h) {
    const float* qh = q + h * d;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = k + j * ld + h * d;
      float s = 0;
      for (int64_t c = 0; c < d; ++c) s += qh[c] * kj[c];
      w[j] = s * scale;
      mx = std::max(mx, w[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (w[j] = std::exp(w[j] - mx));
    const auto inv = static_cast<float>(1.0 / sum);
    float* o = out + h * d;
    std::fill(o, o + d, 0.f);
    for (int64_t j = 0; j < n; ++j) {
      const float p = w[j] * inv;
      const float* vj = v + j * ld + h * d;
      for (int64_t c = 0; c < d; ++c) o[c] += p * vj[c];
    }
  }
}

// x = LayerNorm(x + dense(ctx)) (BlipTextSelfOutput / BlipTextOutput).
void output_norm(const Tensor& x, const Tensor& ctx, const Linear& dense, const LayerNorm& n,
                 float eps, ThreadPool& pool) {
  const Tensor y = linear(ctx, dense, pool);
  ops::add(x, y, x);
  ops::layer_norm(x, x, {.weight = &n.weight, .bias = &n.bias, .eps = eps});
}

// Cross-attention and feed-forward of one layer over x [rows, D] (after its self-attention).
void cross_and_ffn(const TextLayer& L, const Tensor& x, const CrossKV& cross, size_t layer,
                   const TextConfig& c, ThreadPool& pool) {
  const int64_t rows = x.size(0), D = c.hidden;
  const auto eps = static_cast<float>(c.eps);
  if (L.cross && !cross.k.empty()) {
    const Tensor q = linear(x, L.cross->q, pool);
    Tensor ctx = Tensor::empty({rows, D}, DType::F32);
    const Tensor& K = cross.k[layer];
    const Tensor& V = cross.v[layer];
    pool.parallel_for(rows, [&](int64_t r, int) {
      std::vector<float> w;
      attend(q.data<float>() + r * D, K.data<float>(), V.data<float>(), K.size(0), D, D, c.heads,
             ctx.data<float>() + r * D, w);
    });
    output_norm(x, ctx, L.cross->out, L.cross->norm, eps, pool);
  }
  Tensor ff = linear(x, L.fc1, pool);
  ops::activation(ops::Activation::GELU, ff, ff);
  output_norm(x, ff, L.fc2, L.norm, eps, pool);
}

// Embeddings of ids at positions [pos0, pos0 + n) (one sequence) or all at `pos0` (one row per
// beam, `same_pos`).
Tensor embed(const TextModel& m, const TextConfig& c, const std::vector<int32_t>& ids, int64_t pos0,
             bool same_pos) {
  const auto n = static_cast<int64_t>(ids.size());
  Tensor idt = Tensor::empty({n}, DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    check(ids[i] >= 0 && ids[i] < c.vocab_size, "[blip] token id ", ids[i],
          " outside the vocabulary");
    idt.data<int32_t>()[i] = ids[i];
  }
  const int64_t last = same_pos ? pos0 : pos0 + n - 1;
  check(last < c.max_positions, "[blip] position ", last, " is past max_position_embeddings ",
        c.max_positions);
  Tensor x = Tensor::empty({n, c.hidden}, DType::F32);
  ops::get_rows(m.word_embeddings, idt, x);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = m.position_embeddings.data<float>() + (same_pos ? pos0 : pos0 + i) * c.hidden;
    float* r = x.data<float>() + i * c.hidden;
    for (int64_t j = 0; j < c.hidden; ++j) r[j] += p[j];
  }
  ops::layer_norm(x, x,
                  {.weight = &m.embed_norm.weight,
                   .bias = &m.embed_norm.bias,
                   .eps = static_cast<float>(c.eps)});
  return x;
}

}  // namespace

CrossKV cross_kv(const TextModel& m, const TextConfig& c, const Tensor& encoder_states,
                 ThreadPool& pool) {
  check(encoder_states.dim() == 2 && encoder_states.size(1) == c.encoder_hidden,
        "[blip] cross-attention states ", encoder_states.str(), " are not [n, ", c.encoder_hidden,
        "]");
  CrossKV kv;
  for (const TextLayer& L : m.layers) {
    check(L.cross.has_value(), "[blip] a text layer has no cross-attention");
    kv.k.push_back(linear(encoder_states, L.cross->k, pool));
    kv.v.push_back(linear(encoder_states, L.cross->v, pool));
  }
  return kv;
}

Tensor encode_question(const TextModel& m, const TextConfig& c, const std::vector<int32_t>& ids,
                       const CrossKV& cross, ThreadPool& pool) {
  check(!ids.empty(), "[blip] empty question");
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.hidden;
  Tensor x = embed(m, c, ids, 0, false);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const TextLayer& L = m.layers[l];
    const Tensor q = linear(x, L.self_attn.q, pool), k = linear(x, L.self_attn.k, pool),
                 v = linear(x, L.self_attn.v, pool);
    Tensor ctx = Tensor::empty({T, D}, DType::F32);
    pool.parallel_for(T, [&](int64_t r, int) {  // bidirectional: every row sees all T
      std::vector<float> w;
      attend(q.data<float>() + r * D, k.data<float>(), v.data<float>(), T, D, D, c.heads,
             ctx.data<float>() + r * D, w);
    });
    output_norm(x, ctx, L.self_attn.out, L.self_attn.norm, static_cast<float>(c.eps), pool);
    cross_and_ffn(L, x, cross, l, c, pool);
  }
  return x;
}

DecoderCache::DecoderCache(const TextConfig& c, int64_t n_beams, int64_t n_max)
    : beams(n_beams), max_len(n_max) {
  for (int i = 0; i < c.layers; ++i) {
    k.push_back(Tensor::empty({beams, max_len, c.hidden}, DType::F32));
    v.push_back(Tensor::empty({beams, max_len, c.hidden}, DType::F32));
  }
}

void DecoderCache::reorder(const std::vector<int>& parents, int64_t len) {
  for (std::vector<Tensor>* side : {&k, &v})
    for (Tensor& t : *side) {
      const Tensor old = t.clone();
      const int64_t row = max_len * t.size(2);
      for (int64_t b = 0; b < beams; ++b)
        std::memcpy(t.data<float>() + b * row, old.data<float>() + parents[b] * row,
                    static_cast<size_t>(len * t.size(2)) * sizeof(float));
    }
}

Tensor decoder_step(const Model::Impl& m, const std::vector<int32_t>& tokens, int64_t pos,
                    DecoderCache& cache, const CrossKV& cross, ThreadPool& pool) {
  const TextConfig& c = m.config.text;
  const int64_t B = static_cast<int64_t>(tokens.size()), D = c.hidden;
  check(B == cache.beams && pos < cache.max_len, "[blip] decoder step past its cache");
  Tensor x = embed(m.decoder, c, tokens, pos, true);
  for (size_t l = 0; l < m.decoder.layers.size(); ++l) {
    const TextLayer& L = m.decoder.layers[l];
    const Tensor q = linear(x, L.self_attn.q, pool), k = linear(x, L.self_attn.k, pool),
                 v = linear(x, L.self_attn.v, pool);
    const Tensor& Kc = cache.k[l];
    const Tensor& Vc = cache.v[l];
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(Kc.data<float>() + (b * cache.max_len + pos) * D, k.data<float>() + b * D,
                  static_cast<size_t>(D) * sizeof(float));
      std::memcpy(Vc.data<float>() + (b * cache.max_len + pos) * D, v.data<float>() + b * D,
                  static_cast<size_t>(D) * sizeof(float));
    }
    Tensor ctx = Tensor::empty({B, D}, DType::F32);
    pool.parallel_for(B, [&](int64_t b, int) {  // causal: positions 0..pos of its own beam
      std::vector<float> w;
      attend(q.data<float>() + b * D, Kc.data<float>() + b * cache.max_len * D,
             Vc.data<float>() + b * cache.max_len * D, pos + 1, D, D, c.heads,
             ctx.data<float>() + b * D, w);
    });
    output_norm(x, ctx, L.self_attn.out, L.self_attn.norm, static_cast<float>(c.eps), pool);
    cross_and_ffn(L, x, cross, l, c, pool);
  }
  Tensor h = linear(x, m.head.transform, pool);
  ops::activation(ops::Activation::GELU, h, h);
  ops::layer_norm(
      h, h,
      {.weight = &m.head.norm.weight, .bias = &m.head.norm.bias, .eps = static_cast<float>(c.eps)});
  return linear(h, m.head.decoder, pool);
}

}  // namespace eight::blip
