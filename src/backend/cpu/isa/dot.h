#pragma once
// Inline row products for the matmul and attention kernels, over F32 rows or F16 rows converted in
// registers (the decode attention calls them once per key of 64 values: a call per row or a pass
// through a decode buffer cost more than the arithmetic).
#include <cstdint>

#include "backend/cpu/isa/simd.h"
#include "core/half.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

inline VecF load_row(const float* p) {
  return VecF::load(p);
}
inline VecF load_row(const uint16_t* p) {
  return VecF::load_f16(p);
}
inline float to_f32(float x) {
  return x;
}
inline float to_f32(uint16_t h) {
  return fp16_to_fp32(h);
}

// out[r] = sum_i x_r[i] * b[i] for R rows x_r = x + r * ldx, reading b once: per row four vector
// accumulators over four-vector steps, then single vectors into the first, summed pairwise, then
// the scalar tail. The order is fixed, so an F16 row (converted in registers, exactly) sums as its
// F32 expansion, and a row's result does not depend on R.
template <int R, class T>
inline void dot_rows(const float* x, int64_t ldx, const T* b, int64_t k, float* out) {
  constexpr int W = kVecWidth;
  VecF s[R][4];
  for (int r = 0; r < R; ++r) s[r][0] = s[r][1] = s[r][2] = s[r][3] = VecF::zero();
  int64_t i = 0;
  for (; i + 4 * W <= k; i += 4 * W) {
    const VecF b0 = load_row(b + i), b1 = load_row(b + i + W), b2 = load_row(b + i + 2 * W),
               b3 = load_row(b + i + 3 * W);
    for (int r = 0; r < R; ++r) {
      const float* a = x + r * ldx + i;
      s[r][0] = fma(VecF::load(a), b0, s[r][0]);
      s[r][1] = fma(VecF::load(a + W), b1, s[r][1]);
      s[r][2] = fma(VecF::load(a + 2 * W), b2, s[r][2]);
      s[r][3] = fma(VecF::load(a + 3 * W), b3, s[r][3]);
    }
  }
  for (; i + W <= k; i += W) {
    const VecF bv = load_row(b + i);
    for (int r = 0; r < R; ++r) s[r][0] = fma(VecF::load(x + r * ldx + i), bv, s[r][0]);
  }
  for (int r = 0; r < R; ++r) {
    float sum = reduce_add((s[r][0] + s[r][1]) + (s[r][2] + s[r][3]));
    for (int64_t j = i; j < k; ++j) sum += x[r * ldx + j] * to_f32(b[j]);
    out[r] = sum;
  }
}

template <class T>
inline float dot_row(const float* a, const T* b, int64_t k) {
  float out;
  dot_rows<1>(a, 0, b, k, &out);
  return out;
}

// x rows a product of few rows dots with one weight row at a time: 16 accumulators of AVX-512's 32
// registers (half that on the narrower builds, with 16).
inline constexpr int kDotRows = kVecWidth == 16 ? 4 : 2;

// y[i] += w * x[i] with one fma per element (an F16 x as its F32 expansion would give).
template <class T>
inline void axpy_row(float w, const T* x, float* y, int64_t n) {
  constexpr int W = kVecWidth;
  const VecF wv = VecF::set1(w);
  int64_t i = 0;
  for (; i + W <= n; i += W) fma(wv, load_row(x + i), VecF::load(y + i)).store(y + i);
  for (; i < n; ++i) y[i] += w * to_f32(x[i]);
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
