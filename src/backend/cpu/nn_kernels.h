#pragma once
// Row kernels for the element-wise and normalization ops, and the attention problem. The ops
// layer (ops/norm.h, ops/activation.h, ...) checks shapes and walks rows; these functions see one
// contiguous row (or one attention problem) at a time. Each exists per ISA (isa/nn_ops.cpp,
// isa/attention.cpp) and as a plain double-precision *_reference twin (nn_reference.cpp).
#include <cstdint>

#include "core/cpu_features.h"
#include "core/dtype.h"

namespace eight {
class ThreadPool;
}

namespace eight::cpu {

enum class UnaryOp { SiLU, GELU, GELUTanh, QuickGELU, ReLU };
enum class BinaryOp { Add, Mul };
enum class RopeStyle { Norm, Neox };  // Norm: pairs (2i, 2i+1); Neox: pairs (i, i + n_dims / 2)

// Causal (optionally sliding-window) attention with grouped-query heads.
// q: [tq, n_head, d] f32 (row t at q + t * ldq, head h at + h * d).
// k, v: [tk, n_kv_head, d] of kv_type (F32, F16 or Q8_0); row t at k + t * ldk bytes, head h at
// + h * kv_head_bytes (0: dtype_row_bytes(kv_type, d), heads side by side; a head-major cache,
// whose heads are each one contiguous block that the prefetchers follow, sets it to tk rows).
// out: [tq, n_head, d] f32 at out + t * ldo.
// Query t sits at absolute position pos0 + t and sees keys j <= pos0 + t (causal) and, with
// window > 0, j > pos0 + t - window.
struct AttentionProblem {
  int64_t tq = 0, tk = 0, n_head = 0, n_kv_head = 0, d = 0;
  const float* q = nullptr;
  int64_t ldq = 0;
  DType kv_type = DType::F32;
  const void* k = nullptr;
  const void* v = nullptr;
  size_t ldk = 0, ldv = 0;
  size_t kv_head_bytes = 0;
  float* out = nullptr;
  int64_t ldo = 0;
  float scale = 1;
  bool causal = true;
  int64_t pos0 = 0;
  int64_t window = 0;
  size_t head_stride() const { return kv_head_bytes ? kv_head_bytes : dtype_row_bytes(kv_type, d); }
};

struct NNKernels {
  // y = x / sqrt(mean(x^2) + eps) * w   (w may be nullptr)
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // y = (x - mean) / sqrt(var + eps) * w + b   (w, b may be nullptr)
  void (*layer_norm)(const float* x, const float* w, const float* b, float* y, int64_t n,
                     float eps);
  // y = softmax(x * scale + mask)   (mask may be nullptr; -inf entries allowed)
  void (*softmax)(const float* x, const float* mask, float* y, int64_t n, float scale);
  void (*unary)(UnaryOp op, const float* x, float* y, int64_t n);
  // y = silu(gate) * up
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n);
  void (*binary)(BinaryOp op, const float* a, const float* b, float* y, int64_t n);
  void (*scale)(const float* x, float s, float* y, int64_t n);
  // Rotates the first n_dims of one head of head_dim values; cos/sin: [n_dims / 2] for this
  // position. Dimensions past n_dims are copied.
  void (*rope)(const float* x, float* y, const float* cos, const float* sin, int64_t n_dims,
               int64_t head_dim, RopeStyle style);
  // Per (query, head) task with dot products: the decode path (few queries).
  void (*attention)(const AttentionProblem& p, ThreadPool& pool);
  // Per (head, block of queries) task with tiled products (isa/attention_tiled.cpp): long query
  // blocks (prompts, image tokens). Same results as attention up to rounding.
  void (*attention_tiled)(const AttentionProblem& p, ThreadPool& pool);
  // One GroupNorm group: `channels` contiguous rows of `spatial` values normalized together
  // (mean and variance over channels * spatial), then per channel c: y = x_hat * w[c] + b[c]
  // (w, b may be nullptr), then y = silu(y) when silu (the norm + SiLU of UNet/VAE blocks).
  void (*group_norm)(const float* x, const float* w, const float* b, float* y, int64_t channels,
                     int64_t spatial, float eps, bool silu);
  // y = hidden * gelu(gate) with the exact (erf) GELU: diffusers' GEGLU feed-forward.
  void (*geglu)(const float* hidden, const float* gate, float* y, int64_t n);
  // One plane x [h, w] -> y [2h, 2w], y[i][j] = x[i / 2][j / 2] (nearest, scale 2).
  void (*upsample_nearest2x)(const float* x, float* y, int64_t h, int64_t w);
};

const NNKernels& nn_kernels_for(ISA isa);
const NNKernels& nn_kernels();

// Double-precision twins, for tests.
void rms_norm_reference(const float* x, const float* w, float* y, int64_t n, float eps);
void layer_norm_reference(const float* x, const float* w, const float* b, float* y, int64_t n,
                          float eps);
void softmax_reference(const float* x, const float* mask, float* y, int64_t n, float scale);
void unary_reference(UnaryOp op, const float* x, float* y, int64_t n);
void swiglu_reference(const float* gate, const float* up, float* y, int64_t n);
void binary_reference(BinaryOp op, const float* a, const float* b, float* y, int64_t n);
void rope_reference(const float* x, float* y, const float* cos, const float* sin, int64_t n_dims,
                    int64_t head_dim, RopeStyle style);
// Materializes every score row (tq x tk), so only for tests.
void attention_reference(const AttentionProblem& p);
void group_norm_reference(const float* x, const float* w, const float* b, float* y,
                          int64_t channels, int64_t spatial, float eps, bool silu);
void geglu_reference(const float* hidden, const float* gate, float* y, int64_t n);
void upsample_nearest2x_reference(const float* x, float* y, int64_t h, int64_t w);

}  // namespace eight::cpu
