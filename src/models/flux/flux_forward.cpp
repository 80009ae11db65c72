// FLUX transformer forward pass (flux.h), diffusers' FluxTransformer2DModel.forward for one image:
// embeddings, double-stream blocks over [txt; img], single-stream blocks over the concatenation,
// the final adaptive norm and projection. All activations are f32; text rows come first in every
// [N, D] buffer, as diffusers concatenates them.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/scratch.h"
#include "core/error.h"
#include "models/flux/flux_internal.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"

namespace eight::flux {

namespace {

constexpr float kNormEps = 1e-6f;  // every LayerNorm and RMSNorm of the model

float* row(const Tensor& t, int64_t i) {
  return t.data<float>() + i * t.stride(0);
}

// y = LayerNorm(x) * (1 + scale) + shift, without affine weights (AdaLayerNormZero's modulation).
void modulate(const Tensor& x, const Tensor& y, const float* shift, const float* scale,
              ThreadPool& pool) {
  ops::layer_norm(x, y, {.eps = kNormEps});
  const int64_t n = y.size(1);
  pool.parallel_chunks(y.size(0), 16, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      float* r = row(y, i);
      for (int64_t j = 0; j < n; ++j) r[j] = r[j] * (1 + scale[j]) + shift[j];
    }
  });
}

// x += gate * y (the gated residual of every block).
void gated_add(const Tensor& x, const Tensor& y, const float* gate, ThreadPool& pool) {
  const int64_t n = x.size(1);
  pool.parallel_chunks(x.size(0), 16, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      float* a = row(x, i);
      const float* b = row(y, i);
      for (int64_t j = 0; j < n; ++j) a[j] += gate[j] * b[j];
    }
  });
}

// diffusers' get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0):
// [cos(t f_i), sin(t f_i)] with f_i = 10000^(-i / 128).
Tensor timestep_embedding(double t) {
  constexpr int64_t kHalf = 128;
  Tensor e = Tensor::empty({1, 2 * kHalf}, DType::F32);
  float* p = e.data<float>();
  for (int64_t i = 0; i < kHalf; ++i) {
    const double a = t * std::exp(-std::log(10000.0) * static_cast<double>(i) / kHalf);
    p[i] = static_cast<float>(std::cos(a));
    p[kHalf + i] = static_cast<float>(std::sin(a));
  }
  return e;
}

// linear_2(silu(linear_1(x))): diffusers' TimestepEmbedding and PixArtAlphaTextProjection.
Tensor mlp_embed(const Tensor& x, const nn::Linear& l1, const nn::Linear& l2, ThreadPool& pool) {
  Tensor h = Tensor::empty({1, l1.out_features()}, DType::F32);
  nn::linear(h, x, l1, pool);
  ops::activation(ops::Activation::SiLU, h, h);
  Tensor y = Tensor::empty({1, l2.out_features()}, DType::F32);
  nn::linear(y, h, l2, pool);
  return y;
}

// cos and sin [N, head_dim / 2] of FluxPosEmbed: axis a covers axes_dim[a] / 2 consecutive pairs
// turning by ids[n, a] * theta^(-2j / axes_dim[a]) (computed in double, as diffusers does).
struct RopeTable {
  Tensor cos, sin;
};

RopeTable rope_table(const Tensor& txt_ids, const Tensor& img_ids, const Config& c) {
  const int64_t nt = txt_ids.size(0), N = nt + img_ids.size(0), P = c.head_dim / 2;
  RopeTable r{Tensor::empty({N, P}, DType::F32), Tensor::empty({N, P}, DType::F32)};
  for (int64_t n = 0; n < N; ++n) {
    const float* id = n < nt ? txt_ids.data<float>() + n * 3 : img_ids.data<float>() + (n - nt) * 3;
    int64_t p = 0;
    for (int a = 0; a < 3; ++a) {
      const auto dim = static_cast<double>(c.axes_dim[static_cast<size_t>(a)]);
      for (int64_t j = 0; j < c.axes_dim[static_cast<size_t>(a)] / 2; ++j, ++p) {
        const double angle =
            static_cast<double>(id[a]) / std::pow(c.theta, static_cast<double>(2 * j) / dim);
        row(r.cos, n)[p] = static_cast<float>(std::cos(angle));
        row(r.sin, n)[p] = static_cast<float>(std::sin(angle));
      }
    }
  }
  return r;
}

// Rotates interleaved pairs (2p, 2p + 1) of every head of x [N, H * d] in place (diffusers'
// apply_rotary_emb with use_real_unbind_dim=-1).
void apply_rope(const Tensor& x, const RopeTable& r, int64_t heads, ThreadPool& pool) {
  const int64_t P = r.cos.size(1);
  pool.parallel_chunks(x.size(0), 8, [&](int64_t i0, int64_t i1, int) {
    for (int64_t n = i0; n < i1; ++n) {
      const float *cs = row(r.cos, n), *sn = row(r.sin, n);
      for (int64_t h = 0; h < heads; ++h) {
        float* t = row(x, n) + h * 2 * P;
        for (int64_t p = 0; p < P; ++p) {
          const float x0 = t[2 * p], x1 = t[2 * p + 1];
          t[2 * p] = x0 * cs[p] - x1 * sn[p];
          t[2 * p + 1] = x1 * cs[p] + x0 * sn[p];
        }
      }
    }
  });
}

// Scratch of one forward call: [N, D] buffers with text rows first.
struct Buffers {
  Tensor x, nx, q, k, v, o, y, mlp, cat;
  int64_t nt = 0;
  Tensor txt(const Tensor& t) const { return t.slice(0, 0, nt); }
  Tensor img(const Tensor& t) const { return t.slice(0, nt, t.size(0)); }
};

// RMS-normalizes every head of rows [N, H * d] with scale w (the q/k norms).
void head_norm(const Tensor& t, const Tensor& w, int64_t heads) {
  const Tensor h = t.reshape({t.size(0), heads, t.size(1) / heads});
  ops::rms_norm(h, h, {.weight = &w, .eps = kNormEps});
}

void project_qkv(const Tensor& rows_in, const Tensor& q, const Tensor& k, const Tensor& v,
                 const nn::Linear& lq, const nn::Linear& lk, const nn::Linear& lv, const Tensor& qn,
                 const Tensor& kn, int64_t heads, ThreadPool& pool) {
  nn::linear(q, rows_in, lq, pool);
  nn::linear(k, rows_in, lk, pool);
  nn::linear(v, rows_in, lv, pool);
  head_norm(q, qn, heads);
  head_norm(k, kn, heads);
}

// Rotary positions on q and k, then non-causal attention of all N rows into b.o.
void attend(const Buffers& b, const RopeTable& rope, const Config& c, ThreadPool& pool) {
  apply_rope(b.q, rope, c.heads, pool);
  apply_rope(b.k, rope, c.heads, pool);
  const int64_t N = b.q.size(0);
  const Dims shape{N, c.heads, c.head_dim};
  ops::attention(b.q.reshape(shape), b.k.reshape(shape), b.v.reshape(shape), b.o.reshape(shape),
                 pool, {.causal = false});
}

Tensor modulation(const nn::Linear& l, const Tensor& silu_temb, ThreadPool& pool) {
  Tensor m = Tensor::empty({1, l.out_features()}, DType::F32);
  nn::linear(m, silu_temb, l, pool);
  return m;
}

// The MLP half of one stream of a double block: x += gate * mlp(modulate(x)).
void stream_mlp(const Tensor& x, const Tensor& nx, const Tensor& mlp, const Tensor& y,
                const Stream& s, const float* mod, int64_t D, ThreadPool& pool) {
  modulate(x, nx, mod + 3 * D, mod + 4 * D, pool);
  nn::linear(mlp, nx, s.mlp_in, pool);
  ops::activation(ops::Activation::GELUTanh, mlp, mlp);
  nn::linear(y, mlp, s.mlp_out, pool);
  gated_add(x, y, mod + 5 * D, pool);
}

void double_block(const Buffers& b, const DoubleBlock& blk, const Tensor& silu_temb,
                  const RopeTable& rope, const Config& c, ThreadPool& pool) {
  const int64_t D = c.hidden;
  const Tensor mi = modulation(blk.img.mod, silu_temb, pool);
  const Tensor mt = modulation(blk.txt.mod, silu_temb, pool);
  const float *im = mi.data<float>(), *tm = mt.data<float>();
  modulate(b.img(b.x), b.img(b.nx), im, im + D, pool);
  modulate(b.txt(b.x), b.txt(b.nx), tm, tm + D, pool);
  for (const bool txt : {false, true}) {
    const Stream& s = txt ? blk.txt : blk.img;
    auto part = [&](const Tensor& t) { return txt ? b.txt(t) : b.img(t); };
    project_qkv(part(b.nx), part(b.q), part(b.k), part(b.v), s.q, s.k, s.v, s.q_norm, s.k_norm,
                c.heads, pool);
  }
  attend(b, rope, c, pool);
  const Tensor mlp_img = b.mlp.slice(0, b.nt, b.mlp.size(0)), mlp_txt = b.mlp.slice(0, 0, b.nt);
  nn::linear(b.img(b.y), b.img(b.o), blk.img.out, pool);
  gated_add(b.img(b.x), b.img(b.y), im + 2 * D, pool);
  stream_mlp(b.img(b.x), b.img(b.nx), mlp_img, b.img(b.y), blk.img, im, D, pool);
  if (b.nt == 0) return;
  nn::linear(b.txt(b.y), b.txt(b.o), blk.txt.out, pool);
  gated_add(b.txt(b.x), b.txt(b.y), tm + 2 * D, pool);
  stream_mlp(b.txt(b.x), b.txt(b.nx), mlp_txt, b.txt(b.y), blk.txt, tm, D, pool);
}

void single_block(const Buffers& b, const SingleBlock& blk, const Tensor& silu_temb,
                  const RopeTable& rope, const Config& c, ThreadPool& pool) {
  const int64_t D = c.hidden, N = b.x.size(0);
  const Tensor m = modulation(blk.mod, silu_temb, pool);
  const float* mod = m.data<float>();
  modulate(b.x, b.nx, mod, mod + D, pool);
  project_qkv(b.nx, b.q, b.k, b.v, blk.q, blk.k, blk.v, blk.q_norm, blk.k_norm, c.heads, pool);
  const Tensor mlp = b.cat.slice(1, D, b.cat.size(1));
  nn::linear(mlp, b.nx, blk.mlp, pool);
  ops::activation(ops::Activation::GELUTanh, mlp, mlp);
  attend(b, rope, c, pool);
  pool.parallel_chunks(N, 16, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(row(b.cat, i), row(b.o, i), static_cast<size_t>(D) * sizeof(float));
  });
  nn::linear(b.y, b.cat, blk.out, pool);
  gated_add(b.x, b.y, mod + 2 * D, pool);
}

// An f32 [rows, cols] input, contiguous (copied only when it is not).
Tensor input(const Tensor& t, const char* what, int64_t rows, int64_t cols) {
  check(t.defined() && t.dtype() == DType::F32, "[flux] ", what, " must be an f32 tensor");
  const bool ok = (t.dim() == 2 && t.size(0) == rows && t.size(1) == cols) ||
                  (t.dim() == 1 && rows == 1 && t.size(0) == cols);
  check(ok, "[flux] ", what, " has shape ", t.shape().str(), ", expected [", rows, ", ", cols, "]");
  return (t.is_contiguous() ? t : t.contiguous()).reshape({rows, cols});
}

}  // namespace

Tensor Transformer::forward(const Tensor& img, const Tensor& txt, const Tensor& pooled,
                            const Tensor& img_ids, const Tensor& txt_ids, float sigma,
                            float guidance, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const Config& c = m.c;
  check(img.defined() && img.dim() == 2 && txt.defined() && txt.dim() == 2,
        "[flux] img and txt must be 2-D [tokens, channels]");
  const int64_t ni = img.size(0), nt = txt.size(0), N = ni + nt, D = c.hidden;
  const int64_t M = c.hidden * c.mlp_ratio;
  check(ni >= 1, "[flux] no image tokens");
  check(std::isfinite(sigma) && std::isfinite(guidance), "[flux] sigma ", sigma, " and guidance ",
        guidance, " must be finite");
  const Tensor x_img = input(img, "img", ni, c.in_channels);
  const Tensor x_txt = input(txt, "txt", nt, c.context_dim);
  const Tensor vec = input(pooled, "pooled", 1, c.pooled_dim);
  const Tensor ids_img = input(img_ids, "img_ids", ni, 3);
  const Tensor ids_txt = input(txt_ids, "txt_ids", nt, 3);

  // temb = time MLP(proj(1000 sigma)) [+ guidance MLP(proj(1000 g))] + text MLP(pooled).
  Tensor temb = mlp_embed(timestep_embedding(1000.0 * sigma), m.time_in, m.time_out, pool);
  const Tensor text = mlp_embed(vec, m.vec_in, m.vec_out, pool);
  float* te = temb.data<float>();
  if (c.guidance_embed) {
    const Tensor g =
        mlp_embed(timestep_embedding(1000.0 * guidance), m.guidance_in, m.guidance_out, pool);
    for (int64_t j = 0; j < D; ++j) te[j] += g.data<float>()[j];
  }
  for (int64_t j = 0; j < D; ++j) te[j] += text.data<float>()[j];
  ops::activation(ops::Activation::SiLU, temb, temb);  // every modulation reads silu(temb)

  Buffers b;
  b.nt = nt;
  for (Tensor* t : {&b.x, &b.nx, &b.q, &b.k, &b.v, &b.o, &b.y})
    *t = Tensor::empty({N, D}, DType::F32);
  b.mlp = Tensor::empty({N, M}, DType::F32);
  if (!m.singles.empty()) b.cat = Tensor::empty({N, D + M}, DType::F32);
  nn::linear(b.img(b.x), x_img, m.img_in, pool);
  if (nt > 0) nn::linear(b.txt(b.x), x_txt, m.txt_in, pool);
  const RopeTable rope = rope_table(ids_txt, ids_img, c);

  for (const DoubleBlock& blk : m.doubles) double_block(b, blk, temb, rope, c, pool);
  for (const SingleBlock& blk : m.singles) single_block(b, blk, temb, rope, c, pool);

  // norm_out (AdaLayerNormContinuous): LayerNorm(x) * (1 + scale) + shift, then proj_out.
  const Tensor scale = modulation(m.final_scale, temb, pool);
  const Tensor shift = modulation(m.final_shift, temb, pool);
  modulate(b.img(b.x), b.img(b.nx), shift.data<float>(), scale.data<float>(), pool);
  Tensor out = Tensor::empty({ni, c.in_channels}, DType::F32);
  nn::linear(out, b.img(b.nx), m.final_out, pool);
  return out;
}

int64_t Transformer::forward_bytes(int64_t n_img, int64_t n_txt, int n_threads) const {
  const Config& c = impl_->c;
  const int64_t N = n_img + n_txt, D = c.hidden, M = c.hidden * c.mlp_ratio;
  // Activations: seven [N, D] buffers, the MLP [N, M], the single blocks' [N, D + M], the rotary
  // tables, the output, inputs copied when strided, and the embedding vectors.
  int64_t floats = 7 * N * D + N * M + N * (D + M) + N * c.head_dim + n_img * c.in_channels;
  floats += n_img * c.in_channels + n_txt * c.context_dim + 3 * N + c.pooled_dim;
  floats += 16 * D + 2 * 256;
  int64_t bytes = floats * 4;
  // Kernel scratch: the widest product (k = D + M) in the weights' type, and attention.
  const DType w =
      impl_->singles.empty()
          ? impl_->doubles.empty() ? DType::F32 : impl_->doubles[0].img.mlp_out.weight.dtype()
          : impl_->singles[0].out.weight.dtype();
  const cpu::MatmulScratch s = cpu::matmul_scratch(w, N, D + M);
  const int threads = std::max(1, n_threads);
  for (int i = 0; i < cpu::kScratchSlots; ++i)
    bytes += static_cast<int64_t>(cpu::scratch_alloc_bytes(s.caller[i]) +
                                  threads * cpu::scratch_alloc_bytes(s.task[i]));
  bytes += threads *
           static_cast<int64_t>(cpu::scratch_alloc_bytes(cpu::attention_scratch_bytes(c.head_dim)));
  return bytes;
}

}  // namespace eight::flux
