// Element-wise, normalization and rotary kernels for this ISA (see nn_kernels.h). Reductions use
// VecF so their order is fixed per ISA; exp/erf/tanh are simd.h's vector polynomials (the C
// library's only for the few elements past the last full vector).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/isa/matmul_float.h"
#include "backend/cpu/isa/simd.h"
#include "backend/cpu/nn_kernels.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

constexpr int W = kVecWidth;

// y[i] = f(x[i]) a vector at a time, scalar g for the tail (x may equal y).
template <class F, class G>
void map_rows(const float* x, float* y, int64_t n, F f, G g) {
  int64_t i = 0;
  for (; i + W <= n; i += W) f(VecF::load(x + i)).store(y + i);
  for (; i < n; ++i) y[i] = g(x[i]);
}

float sum_squares(const float* x, int64_t n) {
  VecF s0 = VecF::zero(), s1 = VecF::zero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VecF a = VecF::load(x + i), b = VecF::load(x + i + W);
    s0 = fma(a, a, s0);
    s1 = fma(b, b, s1);
  }
  for (; i + W <= n; i += W) {
    const VecF a = VecF::load(x + i);
    s0 = fma(a, a, s0);
  }
  float s = reduce_add(s0 + s1);
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  const float r = 1.f / std::sqrt(sum_squares(x, n) / static_cast<float>(n) + eps);
  const VecF rv = VecF::set1(r);
  int64_t i = 0;
  if (w) {
    for (; i + W <= n; i += W) (VecF::load(x + i) * rv * VecF::load(w + i)).store(y + i);
    for (; i < n; ++i) y[i] = x[i] * r * w[i];
  } else {
    for (; i + W <= n; i += W) (VecF::load(x + i) * rv).store(y + i);
    for (; i < n; ++i) y[i] = x[i] * r;
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  const float mean = sum_f32(x, n) / static_cast<float>(n);
  VecF s = VecF::zero();
  const VecF mv = VecF::set1(mean);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const VecF d = VecF::load(x + i) - mv;
    s = fma(d, d, s);
  }
  float var = reduce_add(s);
  for (; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float r = 1.f / std::sqrt(var / static_cast<float>(n) + eps);
  for (i = 0; i < n; ++i) y[i] = (x[i] - mean) * r * (w ? w[i] : 1.f) + (b ? b[i] : 0.f);
}

void softmax(const float* x, const float* mask, float* y, int64_t n, float scale) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    y[i] = x[i] * scale + (mask ? mask[i] : 0.f);
    mx = std::max(mx, y[i]);
  }
  if (std::isinf(mx) && mx < 0) {  // every entry masked: a zero row, not NaN
    std::fill_n(y, n, 0.f);
    return;
  }
  map_rows(
      y, y, n, [mx](VecF v) { return exp(v - VecF::set1(mx)); },
      [mx](float v) { return std::exp(v - mx); });
  const float inv = 1.f / sum_f32(y, n);
  const VecF iv = VecF::set1(inv);
  int64_t i = 0;
  for (; i + W <= n; i += W) (VecF::load(y + i) * iv).store(y + i);
  for (; i < n; ++i) y[i] *= inv;
}

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  const VecF one = VecF::set1(1.f), half = VecF::set1(0.5f);
  switch (op) {
    case UnaryOp::SiLU:
      map_rows(
          x, y, n, [&](VecF v) { return v / (one + exp(VecF::zero() - v)); },
          [](float v) { return v / (1.f + std::exp(-v)); });
      return;
    case UnaryOp::GELU:
      map_rows(
          x, y, n, [&](VecF v) { return half * v * (one + erf(v * VecF::set1(0.70710678f))); },
          [](float v) { return 0.5f * v * (1.f + std::erf(v * 0.70710678f)); });
      return;
    case UnaryOp::GELUTanh: {
      const VecF c = VecF::set1(0.7978845608f), k = VecF::set1(0.044715f);
      map_rows(
          x, y, n, [&](VecF v) { return half * v * (one + tanh(c * fma(k * v * v, v, v))); },
          [](float v) {
            return 0.5f * v * (1.f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
          });
      return;
    }
    case UnaryOp::QuickGELU:
      map_rows(
          x, y, n, [&](VecF v) { return v / (one + exp(VecF::set1(-1.702f) * v)); },
          [](float v) { return v / (1.f + std::exp(-1.702f * v)); });
      return;
    case UnaryOp::ReLU:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
      return;
  }
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  const VecF one = VecF::set1(1.f);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const VecF g = VecF::load(gate + i);
    (g / (one + exp(VecF::zero() - g)) * VecF::load(up + i)).store(y + i);
  }
  for (; i < n; ++i) y[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void binary(BinaryOp op, const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  if (op == BinaryOp::Add) {
    for (; i + W <= n; i += W) (VecF::load(a + i) + VecF::load(b + i)).store(y + i);
    for (; i < n; ++i) y[i] = a[i] + b[i];
  } else {
    for (; i + W <= n; i += W) (VecF::load(a + i) * VecF::load(b + i)).store(y + i);
    for (; i < n; ++i) y[i] = a[i] * b[i];
  }
}

void scale(const float* x, float s, float* y, int64_t n) {
  const VecF sv = VecF::set1(s);
  int64_t i = 0;
  for (; i + W <= n; i += W) (VecF::load(x + i) * sv).store(y + i);
  for (; i < n; ++i) y[i] = x[i] * s;
}

void rope(const float* x, float* y, const float* cos, const float* sin, int64_t n_dims,
          int64_t head_dim, RopeStyle style) {
  const int64_t half = n_dims / 2;
  if (style == RopeStyle::Norm) {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[2 * i], b = x[2 * i + 1];
      y[2 * i] = a * cos[i] - b * sin[i];
      y[2 * i + 1] = a * sin[i] + b * cos[i];
    }
  } else {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      y[i] = a * cos[i] - b * sin[i];
      y[i + half] = a * sin[i] + b * cos[i];
    }
  }
  if (x != y) std::copy(x + n_dims, x + head_dim, y + n_dims);
}

void group_norm(const float* x, const float* w, const float* b, float* y, int64_t channels,
                int64_t spatial, float eps, bool silu) {
  const int64_t n = channels * spatial;
  const float mean = sum_f32(x, n) / static_cast<float>(n);
  const VecF mv = VecF::set1(mean);
  VecF s0 = VecF::zero(), s1 = VecF::zero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VecF d0 = VecF::load(x + i) - mv, d1 = VecF::load(x + i + W) - mv;
    s0 = fma(d0, d0, s0);
    s1 = fma(d1, d1, s1);
  }
  for (; i + W <= n; i += W) {
    const VecF d = VecF::load(x + i) - mv;
    s0 = fma(d, d, s0);
  }
  float var = reduce_add(s0 + s1);
  for (; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float r = 1.f / std::sqrt(var / static_cast<float>(n) + eps);
  const VecF one = VecF::set1(1.f);
  for (int64_t c = 0; c < channels; ++c) {
    // y = (x - mean) * scale + shift (subtracting first keeps precision when |mean| >> std).
    const float scale = r * (w ? w[c] : 1.f), shift = b ? b[c] : 0.f;
    const VecF sv = VecF::set1(scale), hv = VecF::set1(shift);
    const float* xc = x + c * spatial;
    float* yc = y + c * spatial;
    int64_t j = 0;
    if (silu) {
      for (; j + W <= spatial; j += W) {
        const VecF v = fma(VecF::load(xc + j) - mv, sv, hv);
        (v / (one + exp(VecF::zero() - v))).store(yc + j);
      }
      for (; j < spatial; ++j) {
        const float v = (xc[j] - mean) * scale + shift;
        yc[j] = v / (1.f + std::exp(-v));
      }
    } else {
      for (; j + W <= spatial; j += W) fma(VecF::load(xc + j) - mv, sv, hv).store(yc + j);
      for (; j < spatial; ++j) yc[j] = (xc[j] - mean) * scale + shift;
    }
  }
}

void geglu(const float* hidden, const float* gate, float* y, int64_t n) {
  const VecF one = VecF::set1(1.f), half = VecF::set1(0.5f), k = VecF::set1(0.70710678f);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const VecF g = VecF::load(gate + i);
    (half * g * (one + erf(g * k)) * VecF::load(hidden + i)).store(y + i);
  }
  for (; i < n; ++i) y[i] = 0.5f * gate[i] * (1.f + std::erf(gate[i] * 0.70710678f)) * hidden[i];
}

void upsample_nearest2x(const float* x, float* y, int64_t h, int64_t w) {
  for (int64_t i = 0; i < h; ++i) {
    const float* src = x + i * w;
    float* even = y + 2 * i * 2 * w;
    for (int64_t j = 0; j < w; ++j) even[2 * j] = even[2 * j + 1] = src[j];
    std::copy(even, even + 2 * w, even + 2 * w);
  }
}

}  // namespace

void attention(const AttentionProblem& p, ThreadPool& pool);
void attention_tiled(const AttentionProblem& p, ThreadPool& pool);

const NNKernels& nn_table() {
  static const NNKernels k{
      .rms_norm = rms_norm,
      .layer_norm = layer_norm,
      .softmax = softmax,
      .unary = unary,
      .swiglu = swiglu,
      .binary = binary,
      .scale = scale,
      .rope = rope,
      .attention = attention,
      .attention_tiled = attention_tiled,
      .group_norm = group_norm,
      .geglu = geglu,
      .upsample_nearest2x = upsample_nearest2x,
  };
  return k;
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
