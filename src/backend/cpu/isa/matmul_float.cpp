#include "backend/cpu/isa/matmul_float.h"

#include <algorithm>

#include "backend/cpu/isa/dot.h"
#include "backend/cpu/isa/simd.h"
#include "backend/cpu/isa/unpack.h"
#include "backend/cpu/scratch.h"
#include "core/thread_pool.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

// The 256 values of each float8 type, decoded once: a row then decodes by table lookup.
struct Fp8Tables {
  float e4m3[256], e5m2[256];
};

const Fp8Tables& fp8_tables() {
  static const Fp8Tables t = [] {
    Fp8Tables r{};
    for (int i = 0; i < 256; ++i) {
      r.e4m3[i] = fp8_e4m3_to_fp32(static_cast<uint8_t>(i));
      r.e5m2[i] = fp8_e5m2_to_fp32(static_cast<uint8_t>(i));
    }
    return r;
  }();
  return t;
}

}  // namespace

void dequantize_row_f32(DType t, const void* src, float* out, int64_t k) {
  constexpr int W = kVecWidth;
  const auto* h = static_cast<const uint16_t*>(src);
  switch (t) {
    case DType::F32:
      std::copy_n(static_cast<const float*>(src), k, out);
      return;
    case DType::F16: {
      int64_t i = 0;
      for (; i + W <= k; i += W) VecF::load_f16(h + i).store(out + i);
      for (; i < k; ++i) out[i] = fp16_to_fp32(h[i]);
      return;
    }
    case DType::BF16: {
      int64_t i = 0;
      for (; i + W <= k; i += W) VecF::load_bf16(h + i).store(out + i);
      for (; i < k; ++i) out[i] = bf16_to_fp32(h[i]);
      return;
    }
    case DType::F8_E4M3:
    case DType::F8_E5M2: {
      const float* lut = t == DType::F8_E4M3 ? fp8_tables().e4m3 : fp8_tables().e5m2;
      const auto* b = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < k; ++i) out[i] = lut[b[i]];
      return;
    }
    default:
      break;
  }
  const UnpackBlockFn fn = unpack_block_fn(t);
  const int64_t bs = dtype_block_size(t);
  const size_t bb = dtype_block_bytes(t);
  const int g = group_format(t).group;
  int8_t q[256];
  float scale[16], bias[16];
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < k / bs; ++b) {
    fn(p + b * bb, q, scale, bias);
    float* o = out + b * bs;
    for (int64_t j0 = 0; j0 < bs; j0 += g)
      for (int j = 0; j < g; ++j)
        o[j0 + j] = scale[j0 / g] * static_cast<float>(q[j0 + j]) + bias[j0 / g];
  }
}

float dot_f32(const float* a, const float* b, int64_t k) {
  return dot_row(a, b, k);
}

float sum_f32(const float* x, int64_t n) {
  constexpr int W = kVecWidth;
  VecF s0 = VecF::zero(), s1 = VecF::zero(), s2 = VecF::zero(), s3 = VecF::zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 = s0 + VecF::load(x + i);
    s1 = s1 + VecF::load(x + i + W);
    s2 = s2 + VecF::load(x + i + 2 * W);
    s3 = s3 + VecF::load(x + i + 3 * W);
  }
  float s = reduce_add((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += x[i];
  return s;
}

namespace {

constexpr int kNR = 2 * kVecWidth;       // weight rows per panel (two vectors)
constexpr int kMR = 6;                   // x rows per micro-tile: 12 accumulators
constexpr int64_t kMinRowsPerClaim = 8;  // weight rows per claim of the guided loop (at least)
// Weight columns decoded per step of panel packing: a whole number of blocks of every type (256),
// so the decode buffer is small and the same for every k.
constexpr int64_t kPackCols = 256;

// dot_rows<R> for R = 1..4, indexed by R - 1.
template <class T>
using DotRowsFn = void (*)(const float*, int64_t, const T*, int64_t, float*);
template <class T>
constexpr DotRowsFn<T> kDotRowsFns[4] = {dot_rows<1, T>, dot_rows<2, T>, dot_rows<3, T>,
                                         dot_rows<4, T>};

// y[i][j] (i < m) = x rows · one weight row, kDotRows x rows at a time.
template <class T>
void dot_weight_row(const MatmulProblem& p, const T* w, int64_t j) {
  static_assert(kDotRows <= 4);
  float out[kDotRows];
  for (int64_t i0 = 0; i0 < p.m; i0 += kDotRows) {
    const int64_t r = std::min<int64_t>(kDotRows, p.m - i0);
    kDotRowsFns<T>[r - 1](p.x + i0 * p.ldx, p.ldx, w, p.k, out);
    for (int64_t i = 0; i < r; ++i) p.y[(i0 + i) * p.ldy + j] = out[i] + (p.bias ? p.bias[j] : 0.f);
  }
}

// Few x rows: stream each weight row once, dot it with every x row. F32 and F16 rows are read in
// place; other types are expanded into a row buffer first.
void matmul_rows(const MatmulProblem& p, ThreadPool& pool) {
  pool.parallel_chunks(p.n, kMinRowsPerClaim, [&](int64_t j0, int64_t j1, int) {
    float* buf = static_cast<float*>(thread_scratch(0, p.k * sizeof(float)));
    for (int64_t j = j0; j < j1; ++j) {
      const void* src = static_cast<const char*>(p.w) + j * p.ldw;
      if (p.w_type == DType::F16) {
        dot_weight_row(p, static_cast<const uint16_t*>(src), j);
      } else if (p.w_type == DType::F32) {
        dot_weight_row(p, static_cast<const float*>(src), j);
      } else {
        dequantize_row_f32(p.w_type, src, buf, p.k);
        dot_weight_row(p, static_cast<const float*>(buf), j);
      }
    }
  });
}

// c[R][kNR] = x rows [R][k] · panel [k][kNR].
template <int R>
void micro_tile(const float* x, int64_t ldx, const float* panel, int64_t k, float* y, int64_t ldy,
                int cols, const float* bias) {
  constexpr int W = kVecWidth;
  VecF c0[R], c1[R];
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = VecF::zero();
  for (int64_t t = 0; t < k; ++t) {
    const VecF b0 = VecF::load(panel + t * kNR), b1 = VecF::load(panel + t * kNR + W);
    for (int r = 0; r < R; ++r) {
      const VecF a = VecF::set1(x[r * ldx + t]);
      c0[r] = fma(a, b0, c0[r]);
      c1[r] = fma(a, b1, c1[r]);
    }
  }
  alignas(64) float tmp[kNR];
  for (int r = 0; r < R; ++r) {
    c0[r].store(tmp);
    c1[r].store(tmp + W);
    for (int j = 0; j < cols; ++j) y[r * ldy + j] = tmp[j] + (bias ? bias[j] : 0.f);
  }
}

void matmul_panels(const MatmulProblem& p, ThreadPool& pool) {
  const int64_t n_panels = (p.n + kNR - 1) / kNR;
  pool.parallel_for(n_panels, [&](int64_t task, int) {
    const int64_t j0 = task * kNR;
    const int cols = static_cast<int>(std::min<int64_t>(kNR, p.n - j0));
    // panel: [k][kNR], the weight rows j0.. transposed (missing rows are zero): kPackCols
    // columns at a time decoded as rows [kNR][kPackCols], then transposed a vector-square block at
    // a time.
    auto* panel = static_cast<float*>(thread_scratch(0, p.k * kNR * sizeof(float)));
    const int64_t ks = std::min(kPackCols, p.k);  // row stride of the decode buffer
    auto* rows = static_cast<float*>(thread_scratch(1, kNR * ks * sizeof(float)));
    for (int64_t c0 = 0; c0 < p.k; c0 += kPackCols) {
      const int64_t kc = std::min(kPackCols, p.k - c0);
      const size_t at = dtype_row_bytes(p.w_type, c0);  // c0 is a whole number of blocks
      for (int c = 0; c < kNR; ++c) {
        float* row = rows + c * ks;
        if (c < cols)
          dequantize_row_f32(p.w_type, static_cast<const char*>(p.w) + (j0 + c) * p.ldw + at, row,
                             kc);
        else
          std::fill_n(row, kc, 0.f);
      }
      int64_t t = 0;
      for (; t + kVecWidth <= kc; t += kVecWidth)
        for (int c = 0; c < kNR; c += kVecWidth)
          transpose_block(rows + c * ks + t, ks, panel + (c0 + t) * kNR + c, kNR);
      for (; t < kc; ++t)
        for (int c = 0; c < kNR; ++c) panel[(c0 + t) * kNR + c] = rows[c * ks + t];
    }
    const float* bias = p.bias ? p.bias + j0 : nullptr;
    for (int64_t i = 0; i < p.m; i += kMR) {
      const float* x = p.x + i * p.ldx;
      float* y = p.y + i * p.ldy + j0;
      switch (std::min<int64_t>(kMR, p.m - i)) {
        case 6:
          micro_tile<6>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
        case 5:
          micro_tile<5>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
        case 4:
          micro_tile<4>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
        case 3:
          micro_tile<3>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
        case 2:
          micro_tile<2>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
        default:
          micro_tile<1>(x, p.ldx, panel, p.k, y, p.ldy, cols, bias);
          break;
      }
    }
  });
}

}  // namespace

void matmul_float(const MatmulProblem& p, ThreadPool& pool) {
  // Float weights: up to 8 rows (a beam search step, a few streams) each weight row is expanded
  // once and dotted with every x row; packing panels would cost more than the products.
  const bool float_w = p.w_type == DType::F16 || p.w_type == DType::F32 ||
                       p.w_type == DType::BF16 || p.w_type == DType::F8_E4M3 ||
                       p.w_type == DType::F8_E5M2;
  if (p.m <= 3 || (float_w && p.m <= 8))
    matmul_rows(p, pool);
  else
    matmul_panels(p, pool);
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
