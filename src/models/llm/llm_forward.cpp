// The decoder loop shared by every LLM architecture, one line per sub-layer as in
// LlamaDecoderLayer.forward: x = x + attn(norm(x)); x = x + mlp(norm(x)).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/llm/llm.h"
#include "nn/norm.h"
#include "ops/activation.h"
#include "ops/device.h"

namespace eight::llm {

namespace {

// Sizes in floats of each scratch buffer per token.
struct ScratchLayout {
  int64_t x, cur, qkv, attn, ffn_out, gate_up, hidden, cos_sin, positions;
};

ScratchLayout layout(const LLMConfig& c) {
  return {.x = c.n_embd,
          .cur = c.n_embd,
          .qkv = c.q_dim() + 2 * c.kv_dim(),
          .attn = c.q_dim(),
          .ffn_out = c.n_embd,
          .gate_up = 2 * c.n_ff,
          .hidden = c.n_ff,
          .cos_sin = c.rope.n_rot,
          .positions = 1};
}

Tensor rows(const Tensor& t, int64_t T) {
  return t.slice(0, 0, T);
}

}  // namespace

LLMScratch::LLMScratch(const LLMConfig& c, int64_t max_batch, bool host_layers)
    : max_batch_(max_batch) {
  check(max_batch > 0, "[llm] batch size must be positive, got ", max_batch);
  ScratchLayout l = layout(c);
  if (!host_layers) {
    // Every layer and the output run on a GPU: the host only looks up the token rows and writes
    // the positions and their rotary table (runtime/plan/llm.cpp bills exactly these).
    l.cur = l.qkv = l.attn = l.ffn_out = l.gate_up = l.hidden = 0;
  }
  const int64_t per_token =
      l.x + l.cur + l.qkv + l.attn + l.ffn_out + l.gate_up + l.hidden + l.cos_sin + l.positions;
  const int64_t row = host_layers ? c.n_vocab : 0;
  const size_t bytes = static_cast<size_t>(per_token * max_batch + row) * sizeof(float);
  storage_ = std::make_shared<HostStorage>(bytes);
  size_t off = 0;
  auto take = [&](int64_t width, DType dtype) {
    Tensor t = Tensor::from_storage(storage_, off, {max_batch, width}, dtype);
    off += static_cast<size_t>(max_batch * width) * sizeof(float);
    return t;
  };
  x = take(l.x, DType::F32);
  cur = take(l.cur, DType::F32);
  qkv = take(l.qkv, DType::F32);
  attn = take(l.attn, DType::F32);
  ffn_out = take(l.ffn_out, DType::F32);
  gate_up = take(l.gate_up, DType::F32);
  hidden = take(l.hidden, DType::F32);
  cos_sin = take(l.cos_sin, DType::F32);
  positions = take(l.positions, DType::I32);
  if (host_layers) logits_row = Tensor::from_storage(storage_, off, {1, c.n_vocab}, DType::F32);
}

Tensor LLMScratch::output_view(float* data, int64_t rows, int64_t cols) {
  const size_t bytes = static_cast<size_t>(rows * cols) * sizeof(float);
  if (!output_ || output_->data() != data || output_->size() < bytes)
    output_ = std::make_shared<BorrowedStorage>(data, bytes);
  return Tensor::from_storage(output_, 0, {rows, cols}, DType::F32);
}

namespace {

// What every layer of one batch shares: the config, the segments, rotary and attention settings.
struct BatchContext {
  const LLMConfig& c;
  int64_t T;
  std::span<const Segment> segs;
  const nn::RopeParams& rope;
  const nn::AttentionParams& ap;
  const ForwardOptions& opt;
  ThreadPool& pool;

  // The attention half of layer il after q, k, v (rotated): each segment's k, v go to its cache
  // and its queries attend over it; then x = x + o_proj(attn). Host or device alike.
  void attend(int64_t il, const LLMLayer& L, const Tensor& q, const Tensor& k, const Tensor& v,
              const Tensor& attn, const Tensor& proj, const Tensor& x) const {
    observe("q", il, q);
    observe("k", il, k);
    for (int64_t r = 0; const Segment& seg : segs) {
      const int64_t r1 = r + seg.n;
      nn::kv_store(seg.kv[il], seg.pos0, k.slice(0, r, r1), v.slice(0, r, r1));  // cache k, v
      nn::attention(attn.slice(0, r, r1), q.slice(0, r, r1), seg.kv[il], seg.pos0, ap,
                    pool);  // softmax(q·kᵀ/√d)·v
      r = r1;
    }
    observe("kqv_out", il, attn);
    nn::linear(proj, attn, L.wo, pool);  // o_proj
    nn::add_inplace(x, proj);            // x = x + attn
    observe("attn_out", il, x);
  }

  // Tensors on a GPU are observed through a host copy (only when someone observes).
  void observe(const char* name, int64_t il, const Tensor& t) const {
    if (!opt.observer) return;
    if (t.device().kind == DeviceKind::CPU) return opt.observer(name, il, t);
    Tensor host = Tensor::empty(t.shape(), t.dtype());
    ops::copy(t, host);
    opt.observer(name, il, host);
  }
};

// One decoder layer on the host, in place on s.x.
void cpu_layer(const BatchContext& b, const LLMLayer& L, int64_t il, LLMScratch& s) {
  const LLMConfig& c = b.c;
  const int64_t T = b.T;
  const Tensor x = rows(s.x, T), cur = rows(s.cur, T), qkv = rows(s.qkv, T);
  const Tensor attn = rows(s.attn, T), ffn_out = rows(s.ffn_out, T);
  const nn::MLPScratch mlp_scratch{.gate_up = rows(s.gate_up, T), .hidden = rows(s.hidden, T)};
  // q, k, v: column ranges of one [T, q_dim + 2·kv_dim] buffer.
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  const Tensor q = qkv.slice(1, 0, qd), k = qkv.slice(1, qd, qd + kvd);
  const Tensor v = qkv.slice(1, qd + kvd, qd + 2 * kvd);
  const float* cos_sin = s.cos_sin.data<float>();

  nn::rms_norm(cur, x, L.attn_norm, c.norm_eps);  // h = attention_norm(x)
  b.observe("attn_norm", il, cur);
  if (L.wqkv.defined()) {
    nn::linear(qkv, cur, L.wqkv, b.pool);  // q‖k‖v = qkv_proj(h)
  } else {
    nn::linear(q, cur, L.wq, b.pool);  // q = q_proj(h), into columns of the fused buffer
    nn::linear(k, cur, L.wk, b.pool);  // k = k_proj(h)
    nn::linear(v, cur, L.wv, b.pool);  // v = v_proj(h)
  }
  nn::rope_apply(q.data<float>(), T, c.n_head, hd, qkv.stride(0), cos_sin, b.rope);
  nn::rope_apply(k.data<float>(), T, c.n_head_kv, hd, qkv.stride(0), cos_sin, b.rope);
  b.attend(il, L, q, k, v, attn, ffn_out, x);    // x = x + o_proj(softmax(q·kᵀ/√d)·v)
  nn::rms_norm(cur, x, L.ffn_norm, c.norm_eps);  // h = ffn_norm(x)
  nn::gated_mlp(ffn_out, cur, L.mlp, mlp_scratch, b.pool);  // down(silu(gate)·up)
  b.observe("ffn_out", il, ffn_out);
  nn::add_inplace(x, ffn_out);  // x = x + mlp
  b.observe("l_out", il, x);
}

// The same layer on the GPU, in place on g.x: every op records a dispatch and nothing waits.
// Weights there have q, k, v and gate, up apart (LLM::place splits fused ones).
void gpu_layer(const BatchContext& b, const LLMLayer& L, int64_t il, const LLMDeviceScratch& g) {
  const LLMConfig& c = b.c;
  const int64_t T = b.T;
  const Tensor x = rows(g.x, T), cur = rows(g.cur, T), q = rows(g.q, T), k = rows(g.k, T);
  const Tensor v = rows(g.v, T), attn = rows(g.attn, T), ffn_out = rows(g.ffn_out, T);
  const Tensor gate = rows(g.gate, T), up = rows(g.up, T), hidden = rows(g.hidden, T);

  nn::rms_norm(cur, x, L.attn_norm, c.norm_eps);  // h = attention_norm(x)
  b.observe("attn_norm", il, cur);
  nn::linear(q, cur, L.wq, b.pool);  // q = q_proj(h)
  nn::linear(k, cur, L.wk, b.pool);  // k = k_proj(h)
  nn::linear(v, cur, L.wv, b.pool);  // v = v_proj(h)
  nn::rope_apply(q, c.n_head, c.head_dim, g.cos_sin, b.rope);
  nn::rope_apply(k, c.n_head_kv, c.head_dim, g.cos_sin, b.rope);
  b.attend(il, L, q, k, v, attn, ffn_out, x);       // x = x + o_proj(softmax(q·kᵀ/√d)·v)
  nn::rms_norm(cur, x, L.ffn_norm, c.norm_eps);     // h = ffn_norm(x)
  nn::linear(gate, cur, L.mlp.gate, b.pool);        // gate_proj(h)
  nn::linear(up, cur, L.mlp.up, b.pool);            // up_proj(h)
  ops::swiglu(gate, up, hidden);                    // silu(gate)·up
  nn::linear(ffn_out, hidden, L.mlp.down, b.pool);  // down_proj
  b.observe("ffn_out", il, ffn_out);
  nn::add_inplace(x, ffn_out);  // x = x + mlp
  b.observe("l_out", il, x);
}

// One batch of T ≤ max_batch tokens made of segments, each a run of one sequence's tokens at
// consecutive positions with that sequence's cache. The matrix products run once over all T rows
// (weights read once per batch); attention runs per segment. Logits: every row (all_logits, one
// segment) or the last row of each segment that asks for them, in segment order. Layers placed on
// the GPU run there; x crosses between host and device only where the placement changes.
void forward_batch(const LLM& model, const int32_t* tokens, int64_t T,
                   std::span<const Segment> segs, LLMScratch& s, float* logits, bool all_logits,
                   const ForwardOptions& opt, ThreadPool& pool) {
  const LLMConfig& c = model.config();
  const LLMWeights& w = model.weights();
  const LLMDeviceScratch& g = s.gpu;
  const int64_t first_gpu = model.first_gpu_layer();
  const bool output_on_gpu = model.placement().any_gpu() && model.placement().output_on_gpu;
  check(!model.placement().any_gpu() || g.defined(), "[llm] the model runs layers on ",
        model.placement().device.name(),
        " but the scratch has no device buffers (make it with LLMScratch(model, max_batch))");

  // Positions and their rotary table, shared by every layer (and uploaded once for the GPU's).
  int32_t* pos = s.positions.data<int32_t>();
  for (int64_t t = 0; const Segment& seg : segs)
    for (int64_t j = 0; j < seg.n; ++j) pos[t++] = static_cast<int32_t>(seg.pos0 + j);
  const nn::RopeParams rope = c.rope_for_context(opt.n_ctx > 0 ? opt.n_ctx : c.n_ctx_train);
  nn::rope_table(s.cos_sin.data<float>(), pos, T, rope);
  if (first_gpu < c.n_layer) ops::copy(rows(s.cos_sin, T), rows(g.cos_sin, T));

  const nn::AttentionParams ap{.n_head = c.n_head,
                               .n_head_kv = c.n_head_kv,
                               .head_dim = c.head_dim,
                               .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim)),
                               .window = c.sliding_window};
  const BatchContext b{
      .c = c, .T = T, .segs = segs, .rope = rope, .ap = ap, .opt = opt, .pool = pool};

  const Tensor x = rows(s.x, T);
  if (opt.embeddings == nullptr) {
    nn::embedding(x, w.token_embd, tokens, T);  // x = tok_embeddings(tokens)
  } else {  // caller-given rows where the token says so (image features), the table elsewhere
    for (int64_t t = 0; t < T; ++t) {
      if (tokens[t] == kEmbeddingToken)
        std::memcpy(x.row(t), opt.embeddings + t * c.n_embd,
                    static_cast<size_t>(c.n_embd) * sizeof(float));
      else
        nn::embedding(x.slice(0, t, t + 1), w.token_embd, tokens + t, 1);
    }
  }
  b.observe("inp_embd", -1, x);
  for (int64_t il = 0; il < std::min(first_gpu, c.n_layer); ++il) cpu_layer(b, w.layers[il], il, s);
  if (first_gpu < c.n_layer) ops::copy(x, rows(g.x, T));
  for (int64_t il = first_gpu; il < c.n_layer; ++il) gpu_layer(b, w.layers[il], il, g);
  const bool x_on_gpu = first_gpu < c.n_layer;
  if (x_on_gpu && !output_on_gpu) ops::copy(rows(g.x, T), x);
  if (!x_on_gpu && output_on_gpu) ops::copy(x, rows(g.x, T));

  // The output layer on the host or the GPU: norm the rows that need logits, then project.
  const Tensor xo = output_on_gpu ? rows(g.x, T) : x;
  const Tensor cur = output_on_gpu ? rows(g.cur, T) : rows(s.cur, T);
  auto project = [&](int64_t n_out) {
    b.observe("result_norm", -1, cur.slice(0, 0, n_out));
    const Tensor out = s.output_view(logits, n_out, c.n_vocab);
    if (!output_on_gpu) return nn::linear(out, cur.slice(0, 0, n_out), w.output, pool);
    const Tensor dev = rows(g.logits, n_out);
    nn::linear(dev, cur.slice(0, 0, n_out), w.output, pool);  // logits = output(norm(x))
    ops::copy(dev, out);                                      // waits for the whole pass
  };
  if (all_logits) {
    nn::rms_norm(cur, xo, w.output_norm, c.norm_eps);  // norm(x)
    project(T);
    return;
  }
  // The last row of each segment that wants logits, normed into consecutive rows of cur.
  int64_t n_out = 0;
  for (int64_t r = 0; const Segment& seg : segs) {
    r += seg.n;
    if (!seg.logits) continue;
    nn::rms_norm(cur.slice(0, n_out, n_out + 1), xo.slice(0, r - 1, r), w.output_norm, c.norm_eps);
    ++n_out;
  }
  if (n_out > 0) project(n_out);
}

}  // namespace

void forward(const LLM& model, const int32_t* tokens, int64_t T, int64_t pos0,
             std::span<const nn::KVLayerView> kv, LLMScratch& scratch, float* logits,
             const ForwardOptions& opt, ThreadPool& pool) {
  const LLMConfig& c = model.config();
  check(T > 0, "[llm] forward needs at least one token");
  check(static_cast<int64_t>(kv.size()) == c.n_layer, "[llm] KV cache has ", kv.size(),
        " layers, the model ", c.n_layer);
  for (int64_t b = 0; b < T; b += scratch.max_batch()) {
    const int64_t n = std::min(scratch.max_batch(), T - b);
    const bool last_batch = b + n == T;
    // Earlier batches only fill the cache; their logits are not needed.
    const Segment seg{.kv = kv, .pos0 = pos0 + b, .n = n, .logits = last_batch || opt.all_logits};
    float* out = opt.all_logits ? logits + b * c.n_vocab : logits;
    ForwardOptions batch_opt = opt;
    if (opt.embeddings) batch_opt.embeddings = opt.embeddings + b * c.n_embd;
    forward_batch(model, tokens + b, n, {&seg, 1}, scratch, out, opt.all_logits, batch_opt, pool);
  }
}

void forward_segments(const LLM& model, const int32_t* tokens, std::span<const Segment> segs,
                      LLMScratch& scratch, float* logits, const ForwardOptions& opt,
                      ThreadPool& pool) {
  const LLMConfig& c = model.config();
  int64_t T = 0;
  for (const Segment& seg : segs) {
    check(seg.n > 0, "[llm] a batch segment needs at least one token");
    check(static_cast<int64_t>(seg.kv.size()) == c.n_layer, "[llm] KV cache has ", seg.kv.size(),
          " layers, the model ", c.n_layer);
    T += seg.n;
  }
  check(T > 0 && T <= scratch.max_batch(), "[llm] a batch of ", T,
        " tokens does not fit the scratch for ", scratch.max_batch());
  forward_batch(model, tokens, T, segs, scratch, logits, false, opt, pool);
}

}  // namespace eight::llm
