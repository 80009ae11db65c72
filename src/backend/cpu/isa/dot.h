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

// sum_i a[i] * b[i] over four vector accumulators in a fixed order. An F16 row is converted in
// registers; the conversion is exact, so it sums exactly as its F32 expansion would.
template <class T>
inline float dot_row(const float* a, const T* b, int64_t k) {
  constexpr int W = kVecWidth;
  VecF s0 = VecF::zero(), s1 = VecF::zero(), s2 = VecF::zero(), s3 = VecF::zero();
  int64_t i = 0;
  for (; i + 4 * W <= k; i += 4 * W) {
    s0 = fma(VecF::load(a + i), load_row(b + i), s0);
    s1 = fma(VecF::load(a + i + W), load_row(b + i + W), s1);
    s2 = fma(VecF::load(a + i + 2 * W), load_row(b + i + 2 * W), s2);
    s3 = fma(VecF::load(a + i + 3 * W), load_row(b + i + 3 * W), s3);
  }
  for (; i + W <= k; i += W) s0 = fma(VecF::load(a + i), load_row(b + i), s0);
  float s = reduce_add((s0 + s1) + (s2 + s3));
  for (; i < k; ++i) s += a[i] * to_f32(b[i]);
  return s;
}

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
