// Whisper's text decoder (OpenAI's model.py TextDecoder), one line per sub-layer:
//   x = token_embedding(tokens) + positional_embedding[offset : offset + T]
//   for block: x = x + attn(attn_ln(x), mask=causal, kv_cache)
//              x = x + cross_attn(cross_attn_ln(x), xa)
//              x = x + mlp(mlp_ln(x))
//   logits = ln(x) · token_embeddingᵀ
// A call either appends T tokens to one sequence or one token to each of several sequences (beam
// search); the matrix products run over all rows at once, self-attention per sequence over its
// F16 cache, cross-attention over the window's F16 K/V shared by every sequence. Nothing here
// allocates except the optional cross-attention capture.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "models/whisper/whisper_internal.h"
#include "nn/attention.h"
#include "ops/attention.h"
#include "ops/matmul.h"

namespace eight::whisper {

namespace {

// One sequence's self-attention cache in layer l: K and V [max_tokens, D].
nn::KVLayerView self_cache(const StateData& s, int64_t l, int seq) {
  return {s.self_k.select(0, l).select(0, seq), s.self_v.select(0, l).select(0, seq)};
}

// The softmax of one (layer, head)'s cross-attention scores for every row of q, written to
// out [R, n_audio_ctx]: word timestamps read these (OpenAI's hooks on cross_attn's qk).
void capture_head(const Tensor& q, const Tensor& ck, int64_t head, int64_t d, float scale,
                  const Tensor& out) {
  const int64_t R = out.size(0), T = ck.size(0);
  std::vector<float> krow(static_cast<size_t>(d));
  for (int64_t r = 0; r < R; ++r) {
    const float* qr = static_cast<const float*>(q.row(r)) + head * d;
    auto* p = static_cast<float*>(out.row(r));
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < T; ++j) {
      const auto* kr = static_cast<const char*>(ck.row(j)) + dtype_row_bytes(ck.dtype(), head * d);
      dequantize_row(ck.dtype(), kr, krow.data(), d);
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(qr[i]) * krow[i];
      p[j] = static_cast<float>(dot) * scale;
      mx = std::max(mx, p[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - mx));
    for (int64_t j = 0; j < T; ++j) p[j] = static_cast<float>(p[j] / sum);
  }
}

// A decode step is many small products. Each parallel region costs a synchronisation of the pool,
// which on a busy machine can cost more than the product itself, so work below this many bytes
// (weight bytes x rows) runs on the calling thread.
constexpr int64_t kParallelBytes = int64_t{8} << 20;

struct Pools {
  ThreadPool& all;
  ThreadPool& serial;  // the calling thread's one-thread pool
  int64_t rows;
  ThreadPool& for_bytes(int64_t bytes) const {
    return bytes * rows >= kParallelBytes ? all : serial;
  }
  ThreadPool& for_linear(const nn::Linear& l) const {
    return for_bytes(static_cast<int64_t>(l.weight.nbytes()));
  }
};

}  // namespace

void run_decoder(const Model& model, StateData& s, std::span<const int> seqs,
                 std::span<const int32_t> tokens, bool one_sequence, float* logits_out,
                 CrossAttentionCapture* capture) {
  check(s.encoded, "[whisper] decode before encode: no audio window has been encoded");
  check(logits_out != nullptr, "[whisper] decode: logits_out is null");
  const HParams& hp = model.hparams();
  const Model::Weights& w = model.weights();
  const int64_t D = hp.n_text_state, H = hp.n_text_head, d = D / H, V = hp.n_vocab;
  const int64_t R = static_cast<int64_t>(tokens.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  // Row r's position; every position must fit its sequence's cache.
  int32_t* pos = s.dec.pos.data<int32_t>();
  if (one_sequence) {
    const int seq = seqs[0];
    check(s.length[seq] + R <= s.max_tokens, "[whisper] decode: sequence ", seq, " holds ",
          s.length[seq], " tokens; ", R, " more exceed max_tokens ", s.max_tokens);
    for (int64_t r = 0; r < R; ++r) pos[r] = static_cast<int32_t>(s.length[seq] + r);
  } else {
    for (int64_t r = 0; r < R; ++r) {
      check(s.length[seqs[r]] < s.max_tokens, "[whisper] decode_batch: sequence ", seqs[r],
            " already holds max_tokens = ", s.max_tokens, " tokens");
      pos[r] = s.length[seqs[r]];
    }
  }
  for (int64_t r = 0; r < R; ++r)
    check(tokens[r] >= 0 && tokens[r] < V, "[whisper] decode: token id ", tokens[r], " at row ", r,
          " is outside the vocabulary of ", V);

  const Tensor x = s.dec.x.slice(0, 0, R), h = s.dec.h.slice(0, 0, R);
  const Tensor q = s.dec.q.slice(0, 0, R), k = s.dec.k.slice(0, 0, R);
  const Tensor v = s.dec.v.slice(0, 0, R), attn = s.dec.attn.slice(0, 0, R);
  const Tensor hidden = s.dec.mlp.slice(0, 0, R);
  const Pools pools{*s.pool, *s.serial[0], R};
  const nn::AttentionParams self_params{.n_head = H, .n_head_kv = H, .head_dim = d, .scale = scale};

  nn::embedding(x, w.tok_emb, tokens.data(), R);  // token_embedding(x)
  if (w.tok_emb_scale.defined()) nn::scale_rows(x, w.tok_emb_scale, tokens.data(), R);
  for (int64_t r = 0; r < R; ++r)  // + positional_embedding[offset + r]
    add_rows(pools.serial, x.slice(0, r, r + 1), w.dec_pos.slice(0, pos[r], pos[r] + 1));

  for (int64_t l = 0; l < hp.n_text_layer; ++l) {
    const Model::Layer& L = w.dec[l];
    layer_norm_rows(pools.serial, x, h, L.attn_ln);  // h = attn_ln(x)
    nn::linear(q, h, L.query, pools.for_linear(L.query));
    nn::linear(k, h, L.key, pools.for_linear(L.key));
    nn::linear(v, h, L.value, pools.for_linear(L.value));
    if (one_sequence) {  // causal attention over the sequence's cache and the new rows
      const nn::KVLayerView kv = self_cache(s, l, seqs[0]);
      nn::kv_store(kv, pos[0], k, v);
      nn::attention(attn, q, kv, pos[0], self_params,
                    pools.for_bytes(2 * (pos[0] + R) * static_cast<int64_t>(kv.k.stride_bytes(0))));
    } else {
      for (int64_t r = 0; r < R; ++r) {
        const nn::KVLayerView kv = self_cache(s, l, seqs[r]);
        nn::kv_store(kv, pos[r], k.slice(0, r, r + 1), v.slice(0, r, r + 1));
        nn::attention(attn.slice(0, r, r + 1), q.slice(0, r, r + 1), kv, pos[r], self_params,
                      pools.serial);
      }
    }
    nn::linear(h, attn, L.out, pools.for_linear(L.out));
    add_rows(pools.serial, x, h);                          // x = x + attn(attn_ln(x))
    layer_norm_rows(pools.serial, x, h, L.cross_attn_ln);  // h = cross_attn_ln(x)
    nn::linear(q, h, L.cross_query, pools.for_linear(L.cross_query));
    const Tensor ck = s.cross_k.select(0, l), cv = s.cross_v.select(0, l);  // [n_audio_ctx, D]
    const int64_t T = ck.size(0);
    ops::attention(q.reshape({R, H, d}), ck.reshape({T, H, d}), cv.reshape({T, H, d}),
                   attn.reshape({R, H, d}), pools.for_bytes(2 * static_cast<int64_t>(ck.nbytes())),
                   {.scale = scale, .causal = false});
    if (capture)
      for (size_t i = 0; i < capture->heads.size(); ++i) {
        const auto [cl, chead] = capture->heads[i];
        check(cl >= 0 && cl < hp.n_text_layer && chead >= 0 && chead < H,
              "[whisper] capture head (", cl, ", ", chead, ") is outside ", hp.n_text_layer,
              " layers x ", H, " heads");
        if (cl != l) continue;
        if (capture->weights.size() != capture->heads.size())
          capture->weights.resize(capture->heads.size());
        Tensor& out = capture->weights[i];
        if (!out.defined() || out.shape() != Dims{R, T}) out = Tensor::empty({R, T}, DType::F32);
        capture_head(q, ck, chead, d, scale, out);
      }
    nn::linear(h, attn, L.cross_out, pools.for_linear(L.cross_out));
    add_rows(pools.serial, x, h);                   // x = x + cross_attn(cross_attn_ln(x), xa)
    layer_norm_rows(pools.serial, x, h, L.mlp_ln);  // h = mlp_ln(x)
    nn::linear(hidden, h, L.mlp0, pools.for_linear(L.mlp0));
    gelu_rows(pools.serial, hidden);
    nn::linear(h, hidden, L.mlp2, pools.for_linear(L.mlp2));
    add_rows(pools.serial, x, h);  // x = x + mlp(mlp_ln(x))
  }
  layer_norm_rows(pools.serial, x, h, w.ln);  // ln(x)
  ops::matmul(h, w.tok_emb, s.logits_view(logits_out, R, V),
              pools.for_bytes(static_cast<int64_t>(w.tok_emb.nbytes())));  // · token_embeddingᵀ
  if (w.tok_emb_scale.defined())
    nn::scale_columns(s.logits_view(logits_out, R, V), w.tok_emb_scale);

  if (one_sequence)
    s.length[seqs[0]] += static_cast<int>(R);
  else
    for (int64_t r = 0; r < R; ++r) ++s.length[seqs[r]];
}

}  // namespace eight::whisper
