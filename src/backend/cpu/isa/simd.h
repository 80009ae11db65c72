#pragma once
// A small float vector type for kernels written once for every ISA: VecF holds kWidth floats
// (16 with AVX-512, 8 with AVX2 and in the generic build, where plain loops over an array let
// the compiler vectorize for the baseline target). Hand-tuned integer kernels use intrinsics
// directly; this type covers the float work.
#include <cmath>
#include <cstdint>

#include "core/half.h"

#if defined(EIGHT_ISA_avx512) || defined(EIGHT_ISA_avx2)
#include "backend/cpu/isa/intrin.h"
#endif

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

#if defined(EIGHT_ISA_avx512)

struct VecF {
  static constexpr int kWidth = 16;
  __m512 v;
  static VecF zero() { return {_mm512_setzero_ps()}; }
  static VecF set1(float x) { return {_mm512_set1_ps(x)}; }
  static VecF load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static VecF load_f16(const uint16_t* p) {
    return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
  }
  static VecF load_bf16(const uint16_t* p) {
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  friend VecF operator+(VecF a, VecF b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend VecF fma(VecF a, VecF b, VecF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend VecF max(VecF a, VecF b) { return {_mm512_max_ps(a.v, b.v)}; }
  friend VecF min(VecF a, VecF b) { return {_mm512_min_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend VecF abs(VecF a) { return {_mm512_abs_ps(a.v)}; }
  // |a| with the sign of b
  friend VecF copysign(VecF a, VecF b) {
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    return {_mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(_mm512_castps_si512(a.v), m, _mm512_castps_si512(b.v), 0xE2))};
  }
  // 2^n for integral n in [-126, 127]
  friend VecF pow2i(VecF n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
  }
  // a where x >= t, else 0
  friend VecF keep_ge(VecF a, VecF x, float t) {
    return {_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x.v, _mm512_set1_ps(t), _CMP_GE_OQ), a.v)};
  }
  friend float reduce_add(VecF a) { return _mm512_reduce_add_ps(a.v); }
  friend float reduce_max(VecF a) { return _mm512_reduce_max_ps(a.v); }
};

#elif defined(EIGHT_ISA_avx2)

struct VecF {
  static constexpr int kWidth = 8;
  __m256 v;
  static VecF zero() { return {_mm256_setzero_ps()}; }
  static VecF set1(float x) { return {_mm256_set1_ps(x)}; }
  static VecF load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static VecF load_f16(const uint16_t* p) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
  }
  static VecF load_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
  }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  friend VecF operator+(VecF a, VecF b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend VecF fma(VecF a, VecF b, VecF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend VecF max(VecF a, VecF b) { return {_mm256_max_ps(a.v, b.v)}; }
  friend VecF min(VecF a, VecF b) { return {_mm256_min_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm256_div_ps(a.v, b.v)}; }
  friend VecF abs(VecF a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.f), a.v)}; }
  friend VecF copysign(VecF a, VecF b) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    return {_mm256_or_ps(_mm256_andnot_ps(sign, a.v), _mm256_and_ps(sign, b.v))};
  }
  friend VecF pow2i(VecF n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
  }
  friend VecF keep_ge(VecF a, VecF x, float t) {
    return {_mm256_and_ps(_mm256_cmp_ps(x.v, _mm256_set1_ps(t), _CMP_GE_OQ), a.v)};
  }
  friend float reduce_add(VecF a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  friend float reduce_max(VecF a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#else

struct VecF {
  static constexpr int kWidth = 8;
  float v[kWidth];
  static VecF zero() { return set1(0.f); }
  static VecF set1(float x) {
    VecF r;
    for (float& e : r.v) e = x;
    return r;
  }
  static VecF load(const float* p) {
    VecF r;
    for (int i = 0; i < kWidth; ++i) r.v[i] = p[i];
    return r;
  }
  static VecF load_f16(const uint16_t* p) {
    VecF r;
    for (int i = 0; i < kWidth; ++i) r.v[i] = fp16_to_fp32(p[i]);
    return r;
  }
  static VecF load_bf16(const uint16_t* p) {
    VecF r;
    for (int i = 0; i < kWidth; ++i) r.v[i] = bf16_to_fp32(p[i]);
    return r;
  }
  void store(float* p) const {
    for (int i = 0; i < kWidth; ++i) p[i] = v[i];
  }
  friend VecF operator+(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] += b.v[i];
    return a;
  }
  friend VecF operator-(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] -= b.v[i];
    return a;
  }
  friend VecF operator*(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] *= b.v[i];
    return a;
  }
  friend VecF fma(VecF a, VecF b, VecF c) {
    for (int i = 0; i < kWidth; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  friend VecF max(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  friend VecF min(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  friend VecF operator/(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] /= b.v[i];
    return a;
  }
  friend VecF abs(VecF a) {
    for (float& e : a.v) e = std::fabs(e);
    return a;
  }
  friend VecF copysign(VecF a, VecF b) {
    for (int i = 0; i < kWidth; ++i) a.v[i] = std::copysign(a.v[i], b.v[i]);
    return a;
  }
  friend VecF pow2i(VecF n) {
    for (float& e : n.v) e = std::ldexp(1.f, static_cast<int>(e));
    return n;
  }
  friend VecF keep_ge(VecF a, VecF x, float t) {
    for (int i = 0; i < kWidth; ++i) a.v[i] = x.v[i] >= t ? a.v[i] : 0.f;
    return a;
  }
  // Pairwise order, fixed, so results match however the vector was filled.
  friend float reduce_add(VecF a) {
    for (int w = kWidth / 2; w > 0; w /= 2)
      for (int i = 0; i < w; ++i) a.v[i] += a.v[i + w];
    return a.v[0];
  }
  friend float reduce_max(VecF a) {
    for (int w = kWidth / 2; w > 0; w /= 2)
      for (int i = 0; i < w; ++i) a.v[i] = a.v[i] > a.v[i + w] ? a.v[i] : a.v[i + w];
    return a.v[0];
  }
};

#endif

constexpr int kVecWidth = VecF::kWidth;

// dst[j * ldd + i] = src[i * lds + j] for a kVecWidth x kVecWidth block: the matmul kernels pack
// weight rows into k-major panels with it (a scalar transpose was as slow as the product itself at
// a few hundred rows). AVX-512: the 16x16 transpose in four shuffle stages (4x4 within each 128-bit
// lane, then lanes); AVX2: 8x8 likewise; generic: element by element.
inline void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd) {
#if defined(EIGHT_ISA_avx512)
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int g = 0; g < 16; g += 4) {  // rows g..g+3: per lane, r[g + q] = column 4 L + q
    const __m512 a = _mm512_unpacklo_ps(r[g], r[g + 1]), b = _mm512_unpackhi_ps(r[g], r[g + 1]);
    const __m512 c = _mm512_unpacklo_ps(r[g + 2], r[g + 3]);
    const __m512 d = _mm512_unpackhi_ps(r[g + 2], r[g + 3]);
    t[g] = _mm512_shuffle_ps(a, c, 0x44);
    t[g + 1] = _mm512_shuffle_ps(a, c, 0xEE);
    t[g + 2] = _mm512_shuffle_ps(b, d, 0x44);
    t[g + 3] = _mm512_shuffle_ps(b, d, 0xEE);
  }
  for (int q = 0; q < 4;
       ++q) {  // output row 4 L + q gathers lane L of t[q], t[4+q], t[8+q], t[12+q]
    const __m512 lo_even = _mm512_shuffle_f32x4(t[q], t[4 + q], 0x88);
    const __m512 lo_odd = _mm512_shuffle_f32x4(t[q], t[4 + q], 0xDD);
    const __m512 hi_even = _mm512_shuffle_f32x4(t[8 + q], t[12 + q], 0x88);
    const __m512 hi_odd = _mm512_shuffle_f32x4(t[8 + q], t[12 + q], 0xDD);
    _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(lo_even, hi_even, 0x88));
    _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(lo_odd, hi_odd, 0x88));
    _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(lo_even, hi_even, 0xDD));
    _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(lo_odd, hi_odd, 0xDD));
  }
#elif defined(EIGHT_ISA_avx2)
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int g = 0; g < 8; g += 4) {
    const __m256 a = _mm256_unpacklo_ps(r[g], r[g + 1]), b = _mm256_unpackhi_ps(r[g], r[g + 1]);
    const __m256 c = _mm256_unpacklo_ps(r[g + 2], r[g + 3]);
    const __m256 d = _mm256_unpackhi_ps(r[g + 2], r[g + 3]);
    t[g] = _mm256_shuffle_ps(a, c, 0x44);
    t[g + 1] = _mm256_shuffle_ps(a, c, 0xEE);
    t[g + 2] = _mm256_shuffle_ps(b, d, 0x44);
    t[g + 3] = _mm256_shuffle_ps(b, d, 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(t[q], t[4 + q], 0x20));
    _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(t[q], t[4 + q], 0x31));
  }
#else
  for (int i = 0; i < kVecWidth; ++i)
    for (int j = 0; j < kVecWidth; ++j) dst[j * ldd + i] = src[i * lds + j];
#endif
}

// Transcendentals for the row kernels, vectorized (libm per element was a quarter of a Whisper
// encoder's time). exp: Cody-Waite reduction x = n ln2 + r with ln2 split in two, Cephes' degree-6
// polynomial for e^r (relative error ~1e-7), times 2^n; below -87.3 the result is exactly 0 (so
// masked -inf scores vanish) and above 88.3 it saturates. erf: Abramowitz & Stegun 7.1.26
// (absolute error <= 1.5e-7). tanh(z) = 1 - 2 / (e^(2z) + 1).
inline VecF exp(VecF x) {
  const VecF xc = min(max(x, VecF::set1(-87.3f)), VecF::set1(88.3f));
  const VecF shifter = VecF::set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const VecF n = fma(xc, VecF::set1(1.44269504088896341f), shifter) - shifter;
  const VecF r = fma(n, VecF::set1(2.12194440e-4f), fma(n, VecF::set1(-0.693359375f), xc));
  VecF p = VecF::set1(1.9875691500e-4f);
  p = fma(p, r, VecF::set1(1.3981999507e-3f));
  p = fma(p, r, VecF::set1(8.3334519073e-3f));
  p = fma(p, r, VecF::set1(4.1665795894e-2f));
  p = fma(p, r, VecF::set1(1.6666665459e-1f));
  p = fma(p, r, VecF::set1(5.0000001201e-1f));
  p = fma(p * r, r, r + VecF::set1(1.0f));
  return keep_ge(p * pow2i(n), x, -87.3f);
}

inline VecF erf(VecF x) {
  const VecF z = abs(x);
  const VecF t = VecF::set1(1.0f) / fma(z, VecF::set1(0.3275911f), VecF::set1(1.0f));
  VecF p = VecF::set1(1.061405429f);
  p = fma(p, t, VecF::set1(-1.453152027f));
  p = fma(p, t, VecF::set1(1.421413741f));
  p = fma(p, t, VecF::set1(-0.284496736f));
  p = fma(p, t, VecF::set1(0.254829592f));
  const VecF e = VecF::set1(1.0f) - p * t * exp(VecF::zero() - z * z);
  return copysign(e, x);
}

inline VecF tanh(VecF x) {
  const VecF e = exp(x + x);
  return VecF::set1(1.0f) - VecF::set1(2.0f) / (e + VecF::set1(1.0f));
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
