// Whisper's audio encoder (OpenAI's model.py AudioEncoder), one line per sub-layer:
//   x = gelu(conv1(mel)); x = gelu(conv2(x)); x = x.permute(0, 2, 1) + positional_embedding
//   for block: x = x + attn(attn_ln(x)); x = x + mlp(mlp_ln(x))
//   x = ln_post(x)
// then every decoder layer's cross-attention K/V from the output (TextDecoder's cross_attn.key /
// value over xa, computed once per window as OpenAI's kv_cache hooks do).
//
// Activations are time-major [T, D] throughout. The convolutions are matrix products over im2col
// rows, which in time-major layout are three consecutive input rows (the weights were re-laid out
// at load to match). Attention over the 1500 positions runs per head in blocks of kScoreRows
// queries: scores [block, 1500] = q·kᵀ, exp(scores - row max), · v, then ÷ the row sums. The
// row-wise steps of a layer (norm, products, GELU, residuals) run in chunks of rows, each chunk
// start to finish on one thread, so a layer is three parallel regions; the machine this runs on
// is shared, and each region's synchronisation can cost a scheduler time slice.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant.h"
#include "core/error.h"
#include "models/whisper/whisper_internal.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::whisper {

namespace {

// fn(r0, r1) over [0, n) in chunks of `grain` rows: on the pool, or inline for one chunk. The
// pool's task function captures one reference, so std::function stores it without allocating.
template <class Fn>
void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const Fn& fn) {
  if (n <= grain) {
    if (n > 0) fn(0, n);
    return;
  }
  struct Job {
    const Fn* fn;
    int64_t n, grain;
  } job{&fn, n, grain};
  pool.parallel_for((n + grain - 1) / grain, [&job](int64_t t, int) {
    (*job.fn)(t * job.grain, std::min(job.n, (t + 1) * job.grain));
  });
}

// dst [cols, rows] = srcᵀ for src [rows, cols] (row-strided), in 32x32 tiles.
void transpose(ThreadPool& pool, const Tensor& src, const Tensor& dst) {
  const int64_t rows = src.size(0), cols = src.size(1);
  const int64_t lds = src.stride(0), ldd = dst.stride(0);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  parallel_rows(pool, cols, 32, [&](int64_t c0, int64_t c1) {
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
      const int64_t r1 = std::min(rows, r0 + 32);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) d[c * ldd + r] = s[r * lds + c];
    }
  });
}

// out[T, D] = softmax(q·kᵀ / √d)·v per head, no mask (every position sees every position).
// q, k: [T, D] column ranges of the fused qkv buffer; vt: Vᵀ [D, T]. One parallel region: a task
// is one head and one block of kScoreRows queries, its products run on the task's own thread.
struct AttentionJob {
  StateData* s;
  Tensor q, k, vt, out;
  int64_t T, d, n_blocks;
  float scale;
  void run(int64_t task, int thread) const {
    const int64_t h = task / n_blocks, t0 = task % n_blocks * kScoreRows;
    const int64_t t1 = std::min(T, t0 + kScoreRows), n = t1 - t0;
    ThreadPool& serial = *s->serial[thread];
    const Tensor sc = s->enc.scores.select(0, thread).slice(0, 0, n);  // [n, T]
    ops::matmul(q.slice(0, t0, t1).slice(1, h * d, (h + 1) * d), k.slice(1, h * d, (h + 1) * d), sc,
                serial);  // q·kᵀ
    float inv[kScoreRows];
    for (int64_t r = 0; r < n; ++r)
      inv[r] = 1.0f / exp_shifted_row(static_cast<float*>(sc.row(r)), T, scale);
    const Tensor o = out.slice(0, t0, t1).slice(1, h * d, (h + 1) * d);
    ops::matmul(sc, vt.slice(0, h * d, (h + 1) * d), o, serial);  // exp(...)·v
    for (int64_t r = 0; r < n; ++r) {                             // ÷ softmax denominators
      auto* row = static_cast<float*>(o.row(r));
      for (int64_t e = 0; e < d; ++e) row[e] *= inv[r];
    }
  }
};

// vt: [D, T], head h's Vᵀ in rows [h·d, h·d + d).
void self_attention(StateData& s, const Tensor& q, const Tensor& k, const Tensor& vt,
                    const Tensor& out, int64_t n_head) {
  const int64_t T = q.size(0), d = q.size(1) / n_head;
  const int64_t n_blocks = (T + kScoreRows - 1) / kScoreRows;
  const AttentionJob job{
      &s, q, k, vt, out, T, d, n_blocks, 1.0f / std::sqrt(static_cast<float>(d))};
  s.pool->parallel_for(n_head * n_blocks,
                       [&job](int64_t task, int thread) { job.run(task, thread); });
}

// fn(r0, r1, serial) over chunks of `chunk` rows of [0, n) in one parallel region; `serial` is
// the running thread's one-thread pool, for the products of the chunk. Row-wise steps of a layer
// run back to back on the same rows (one synchronisation instead of one per op, and the rows stay
// in the core's cache).
template <class Fn>
void for_row_chunks(StateData& s, int64_t n, int64_t chunk, const Fn& fn) {
  struct Job {
    const Fn* fn;
    StateData* s;
    int64_t n, chunk;
  } job{&fn, &s, n, chunk};
  s.pool->parallel_for((n + chunk - 1) / chunk, [&job](int64_t t, int thread) {
    (*job.fn)(t * job.chunk, std::min(job.n, (t + 1) * job.chunk), *job.s->serial[thread]);
  });
}

// Rows per task of the row-wise encoder steps: two tasks per thread. Every task unpacks the
// weights it multiplies by (f16 → f32 panels), so fewer, taller tasks waste less; two per thread
// still even out a thread that the machine's other work slows down.
int64_t row_chunk(const StateData& s, int64_t rows) {
  const int64_t tasks = 2 * static_cast<int64_t>(s.serial.size());
  return std::max<int64_t>(32, (rows + tasks - 1) / tasks);
}

nn::Linear upload(const nn::Linear& l, Device d) {
  return {.weight = ops::to_device(l.weight, d),
          .bias = l.bias.defined() ? ops::to_device(l.bias, d) : Tensor()};
}

// The encoder blocks on a GPU, in place on x [T, D] (host): x goes up once, every block is
// recorded (q, k, v in buffers of their own; attention over all positions through ops::attention),
// and x comes back once. The device activations live for this window only.
void run_encoder_blocks_on_device(const Model& model, const Tensor& x_host) {
  const HParams& hp = model.hparams();
  const Model::Weights& w = model.weights();
  const int64_t T = x_host.size(0), D = hp.n_audio_state, H = hp.n_audio_head;
  const Device dev = w.enc[0].query.weight.device();
  ThreadPool& none = global_thread_pool();  // device ops record; no host threads run them
  const Tensor x = ops::to_device(x_host, dev);
  auto buffer = [&](int64_t cols) { return ops::empty({T, cols}, DType::F32, dev); };
  const Tensor h = buffer(D), q = buffer(D), k = buffer(D), v = buffer(D), attn = buffer(D);
  const Tensor hidden = buffer(4 * D);
  auto heads = [&](const Tensor& t) { return t.reshape({T, H, D / H}); };
  for (const Model::Layer& L : w.enc) {
    ops::layer_norm(x, h,
                    {.weight = &L.attn_ln.weight, .bias = &L.attn_ln.bias, .eps = kLayerNormEps});
    nn::linear(q, h, L.query, none);  // q = query(attn_ln(x))
    nn::linear(k, h, L.key, none);    // k = key(...)
    nn::linear(v, h, L.value, none);  // v = value(...)
    ops::attention(heads(q), heads(k), heads(v), heads(attn), none, {.causal = false});
    nn::linear(h, attn, L.out, none);  // out(wv)
    ops::add(x, h, x);                 // x = x + attn(attn_ln(x))
    ops::layer_norm(x, h,
                    {.weight = &L.mlp_ln.weight, .bias = &L.mlp_ln.bias, .eps = kLayerNormEps});
    nn::linear(hidden, h, L.mlp0, none);
    ops::activation(ops::Activation::GELU, hidden, hidden);
    nn::linear(h, hidden, L.mlp2, none);  // mlp = Linear, GELU, Linear
    ops::add(x, h, x);                    // x = x + mlp(mlp_ln(x))
  }
  ops::copy(x, x_host);
}

}  // namespace

void place_encoder_blocks(Model::Weights& w, Device device) {
  for (Model::Layer& L : w.enc) {
    L.attn_ln = {ops::to_device(L.attn_ln.weight, device), ops::to_device(L.attn_ln.bias, device)};
    L.mlp_ln = {ops::to_device(L.mlp_ln.weight, device), ops::to_device(L.mlp_ln.bias, device)};
    for (nn::Linear* l : {&L.query, &L.key, &L.value, &L.out, &L.mlp0, &L.mlp2})
      *l = upload(*l, device);
  }
}

Tensor buffer_view(const Tensor& buf, const Dims& shape) {
  return Tensor::from_storage(buf.storage(), buf.offset(), shape, buf.dtype());
}

void layer_norm_rows(ThreadPool& pool, const Tensor& x, const Tensor& y, const Norm& n) {
  const auto& k = cpu::nn_kernels();
  const int64_t D = x.size(1);
  parallel_rows(pool, x.size(0), 32, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      k.layer_norm(static_cast<const float*>(x.row(r)), n.weight.data<float>(),
                   n.bias.data<float>(), static_cast<float*>(y.row(r)), D, kLayerNormEps);
  });
}

void gelu_rows(ThreadPool& pool, const Tensor& x) {
  const int64_t n = x.size(1);
  parallel_rows(pool, x.size(0), 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) gelu_row(static_cast<float*>(x.row(r)), n);
  });
}

void add_rows(ThreadPool& pool, const Tensor& x, const Tensor& y) {
  const auto& k = cpu::nn_kernels();
  const int64_t n = x.size(1);
  parallel_rows(pool, x.size(0), 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      auto* p = static_cast<float*>(x.row(r));
      k.binary(cpu::BinaryOp::Add, p, static_cast<const float*>(y.row(r)), p, n);
    }
  });
}

void run_encoder(const Model& model, StateData& s, const Tensor& mel) {
  const HParams& hp = model.hparams();
  const Model::Weights& w = model.weights();
  const int64_t D = hp.n_audio_state, T = hp.n_audio_ctx, frames = 2 * T, M = hp.n_mels;
  check(mel.defined() && mel.dtype() == DType::F32 && mel.dim() == 2 && mel.size(0) == M &&
            mel.size(1) == frames,
        "[whisper] encode: mel must be f32 [", M, ", ", frames, "], got ",
        mel.defined() ? mel.str() : std::string("undefined"));
  ThreadPool& pool = *s.pool;
  EncoderBuffers& e = s.enc;

  // Time-major mel with one zero row on each side (conv1's padding): in[t + 1, c] = mel[c, t].
  const Tensor in = buffer_view(e.conv_in, {frames + 2, M});
  std::memset(in.row(0), 0, static_cast<size_t>(M) * sizeof(float));
  std::memset(in.row(frames + 1), 0, static_cast<size_t>(M) * sizeof(float));
  transpose(pool, mel.contiguous(), in.slice(0, 1, frames + 1));
  // conv1 as a product over im2col rows: row t = in[t .. t + 2] (frames t - 1 .. t + 1). All
  // rows are gathered before any output is written, because h1 reuses the input's memory.
  const Tensor cols1 = buffer_view(e.big, {frames, 3 * M});
  parallel_rows(pool, frames, 256, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      std::memcpy(cols1.row(t), in.row(t), static_cast<size_t>(3 * M) * sizeof(float));
  });
  // x = gelu(conv1(mel)), kept padded for conv2: h1[t + 1] is frame t.
  const Tensor h1 = buffer_view(e.conv_in, {frames + 2, D});
  for_row_chunks(s, frames, row_chunk(s, frames), [&](int64_t r0, int64_t r1, ThreadPool& sp) {
    const Tensor y = h1.slice(0, r0 + 1, r1 + 1);
    ops::matmul(cols1.slice(0, r0, r1), w.conv1, y, sp, {.bias = &w.conv1_bias});
    gelu_rows(sp, y);
  });
  std::memset(h1.row(0), 0, static_cast<size_t>(D) * sizeof(float));
  std::memset(h1.row(frames + 1), 0, static_cast<size_t>(D) * sizeof(float));
  // x = gelu(conv2(x)) + positional_embedding; conv2's im2col row t = h1[2t .. 2t + 2].
  const Tensor x = e.x, cols2 = buffer_view(e.big, {T, 3 * D});
  for_row_chunks(s, T, row_chunk(s, T), [&](int64_t r0, int64_t r1, ThreadPool& sp) {
    for (int64_t t = r0; t < r1; ++t)
      std::memcpy(cols2.row(t), h1.row(2 * t), static_cast<size_t>(3 * D) * sizeof(float));
    const Tensor y = x.slice(0, r0, r1);
    ops::matmul(cols2.slice(0, r0, r1), w.conv2, y, sp, {.bias = &w.conv2_bias});
    gelu_rows(sp, y);
    add_rows(sp, y, w.enc_pos.slice(0, r0, r1));
  });

  if (!w.enc.empty() && w.enc[0].query.weight.device().kind != DeviceKind::CPU) {
    run_encoder_blocks_on_device(model, x);
    layer_norm_rows(pool, x, x, w.ln_post);  // x = ln_post(x)
    return;
  }
  const Tensor h = e.h, attn = e.attn, vt = buffer_view(e.vt, {D, T});
  const Tensor q = e.qkv.slice(1, 0, D), k = e.qkv.slice(1, D, 2 * D);
  const Tensor v = e.qkv.slice(1, 2 * D, 3 * D), hidden = buffer_view(e.big, {T, 4 * D});
  const int64_t n_layer = static_cast<int64_t>(w.enc.size());
  for (int64_t l = 0; l < n_layer; ++l) {
    const Model::Layer& L = w.enc[l];
    for_row_chunks(s, T, row_chunk(s, T), [&](int64_t r0, int64_t r1, ThreadPool& sp) {
      const Tensor xr = x.slice(0, r0, r1), hr = h.slice(0, r0, r1);
      layer_norm_rows(sp, xr, hr, L.attn_ln);           // h = attn_ln(x)
      nn::linear(q.slice(0, r0, r1), hr, L.query, sp);  // q = query(h)
      nn::linear(k.slice(0, r0, r1), hr, L.key, sp);    // k = key(h)
      const Tensor vr = v.slice(0, r0, r1);
      nn::linear(vr, hr, L.value, sp);         // v = value(h)
      transpose(sp, vr, vt.slice(1, r0, r1));  // Vᵀ for the attention's products
    });
    self_attention(s, q, k, vt, attn, hp.n_audio_head);
    for_row_chunks(s, T, row_chunk(s, T), [&](int64_t r0, int64_t r1, ThreadPool& sp) {
      const Tensor xr = x.slice(0, r0, r1), hr = h.slice(0, r0, r1);
      const Tensor hid = hidden.slice(0, r0, r1);
      nn::linear(hr, attn.slice(0, r0, r1), L.out, sp);  // out(wv)
      add_rows(sp, xr, hr);                              // x = x + attn(attn_ln(x))
      layer_norm_rows(sp, xr, hr, L.mlp_ln);             // h = mlp_ln(x)
      nn::linear(hid, hr, L.mlp0, sp);
      gelu_rows(sp, hid);
      nn::linear(hr, hid, L.mlp2, sp);                               // mlp = Linear, GELU, Linear
      add_rows(sp, xr, hr);                                          // x = x + mlp(mlp_ln(x))
      if (l + 1 == n_layer) layer_norm_rows(sp, xr, xr, w.ln_post);  // x = ln_post(x)
    });
  }
}

void compute_cross_kv(const Model& model, StateData& s) {
  const HParams& hp = model.hparams();
  const int64_t D = hp.n_text_state, T = hp.n_audio_ctx, H = hp.n_text_head, d = D / H;
  // key/value(xa) of every decoder layer, through f32 rows of the (now free) qkv buffer, stored
  // head-major.
  for_row_chunks(s, T, row_chunk(s, T), [&](int64_t r0, int64_t r1, ThreadPool& sp) {
    const Tensor xa = s.enc.x.slice(0, r0, r1), tmp = s.enc.qkv.slice(0, r0, r1).slice(1, 0, D);
    for (int64_t l = 0; l < hp.n_text_layer; ++l) {
      const Model::Layer& L = model.weights().dec[l];
      for (int which = 0; which < 2; ++which) {
        nn::linear(tmp, xa, which == 0 ? L.cross_key : L.cross_value, sp);
        const Tensor dst = (which == 0 ? s.cross_k : s.cross_v).select(0, l);  // [H, T, d] F16
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t h = 0; h < H; ++h)
            quantize_row(DType::F16, static_cast<const float*>(tmp.row(r - r0)) + h * d,
                         dst.select(0, h).row(r), d);
      }
    }
  });
}

}  // namespace eight::whisper
