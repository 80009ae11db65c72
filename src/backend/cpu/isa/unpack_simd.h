#pragma once
// SIMD versions of unpack.h's row decoders for the K-quants (AVX2 instructions, so both the AVX2
// and the AVX-512 builds use them): the same int8 codes, scales and biases, written 32 bytes at a
// time. The batched int8 path (AVX-512) and the AVX2 decode path's generic kernel call
// unpack_row_simd, falling back to unpack_row for the other types.
//
// Compiled per ISA inside EIGHT_ISA_NAMESPACE, like unpack.h.
#if defined(__AVX2__)
#include "backend/cpu/isa/intrin.h"

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/quant_blocks.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

// Q4_K / Q5_K: the 8 six-bit scales and mins of a super-block as bytes.
inline void scales_k4(const uint8_t* s, uint64_t* sc, uint64_t* mn) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  const uint32_t sc_hi = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
  *sc = (a & 0x3f3f3f3f) | (static_cast<uint64_t>(sc_hi) << 32);
  *mn = (b & 0x3f3f3f3f) | (static_cast<uint64_t>(m_hi) << 32);
}

namespace unpack_simd_detail {

using namespace eight::quant;

// The 8 scales and biases of a Q4_K / Q5_K super-block as unpack_row stores them.
inline void unpack_k4_scales(const uint8_t* scales, uint16_t d, uint16_t dmin, float* scale,
                             float* bias) {
  uint64_t sc8, m8;
  scales_k4(scales, &sc8, &m8);
  const __m256 sc =
      _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc8))));
  const __m256 mn =
      _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(m8))));
  _mm256_storeu_ps(scale, _mm256_mul_ps(sc, _mm256_set1_ps(_cvtsh_ss(d))));
  _mm256_storeu_ps(bias, _mm256_mul_ps(mn, _mm256_set1_ps(-_cvtsh_ss(dmin))));
}

inline void unpack_q4_k_simd(const void* src, int64_t nb, int8_t* q, float* scale, float* bias) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ4_K*>(src)[i];
    unpack_k4_scales(b.scales, b.d, b.dmin, scale + 8 * i, bias + 8 * i);
    for (int p = 0; p < 4; ++p) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * p));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * i + 64 * p),
                          _mm256_and_si256(v, m4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * i + 64 * p + 32),
                          _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    }
  }
}

// Q5_K: Q4_K's nibbles plus bit 2 p (low nibbles) or 2 p + 1 (high) of qh[l] as bit 4. The
// 16-bit shifts cannot leak a neighbour's bits into bit 0, which is all the mask keeps.
inline void unpack_q5_k_simd(const void* src, int64_t nb, int8_t* q, float* scale, float* bias) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ5_K*>(src)[i];
    unpack_k4_scales(b.scales, b.d, b.dmin, scale + 8 * i, bias + 8 * i);
    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    for (int p = 0; p < 4; ++p) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * p));
      const __m128i s0 = _mm_cvtsi32_si128(2 * p), s1 = _mm_cvtsi32_si128(2 * p + 1);
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, s0), one), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, s1), one), 4);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * i + 64 * p),
                          _mm256_or_si256(_mm256_and_si256(v, m4), h0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * i + 64 * p + 32),
                          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1));
    }
  }
}

// 16 signed 8-bit group scales times the fp16 d, and 16 zero biases (Q3_K, Q6_K).
inline void store_scales16(__m128i s8, uint16_t dh, float* scale, float* bias) {
  const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
  _mm256_storeu_ps(scale, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s8)), d));
  _mm256_storeu_ps(
      scale + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(s8, 8))), d));
  _mm256_storeu_ps(bias, _mm256_setzero_ps());
  _mm256_storeu_ps(bias + 8, _mm256_setzero_ps());
}

// Q2_K / Q3_K codes of one 128-element half: plane p of the 32 bytes q2 holds elements
// 32 p + l as bits 2 p, 2 p + 1 of q2[l] (the 16-bit shifts keep bits 0-1 of each byte within
// that byte for p <= 3). Q3_K subtracts 4 where bit `hbit0 + p` of hmask[l] is clear.
template <bool kQ3>
inline void unpack_2bit_half(const uint8_t* q2, const uint8_t* hmask, int hbit0, int8_t* out) {
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q2));
  [[maybe_unused]] __m256i h = _mm256_setzero_si256();
  if constexpr (kQ3) h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hmask));
  for (int p = 0; p < 4; ++p) {
    __m256i c = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * p)), three);
    if constexpr (kQ3) {
      const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(hbit0 + p)), one);
      c = _mm256_sub_epi8(c, _mm256_slli_epi16(_mm256_xor_si256(bit, one), 2));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * p), c);
  }
}

inline void unpack_q2_k_simd(const void* src, int64_t nb, int8_t* q, float* scale, float* bias) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ2_K*>(src)[i];
    const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
    for (int g = 0; g < 16; ++g) {
      scale[16 * i + g] = d * static_cast<float>(b.scales[g] & 0xF);
      bias[16 * i + g] = -dmin * static_cast<float>(b.scales[g] >> 4);
    }
    for (int h = 0; h < 2; ++h)
      unpack_2bit_half<false>(b.qs + 32 * h, nullptr, 0, q + 256 * i + 128 * h);
  }
}

inline void unpack_q3_k_simd(const void* src, int64_t nb, int8_t* q, float* scale, float* bias) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ3_K*>(src)[i];
    // Scale g (6 bits, minus 32): low 4 bits from nibble g % 8 of bytes 0-7 (low nibbles for
    // g < 8), high 2 bits from bits 2 (g / 4) of byte 8 + g % 4. All 16 at once: a scalar loop
    // here was half of the AVX2 Q3_K decode time (vcvtsi2ss chains).
    const __m128i m4 = _mm_set1_epi8(0x0F), m3 = _mm_set1_epi8(3);
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i lo =
        _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    uint32_t w;
    std::memcpy(&w, b.scales + 8, 4);
    const __m128i hi =
        _mm_and_si128(_mm_setr_epi32(static_cast<int>(w), static_cast<int>(w >> 2),
                                     static_cast<int>(w >> 4), static_cast<int>(w >> 6)),
                      m3);
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    store_scales16(sc, b.d, scale + 16 * i, bias + 16 * i);
    for (int h = 0; h < 2; ++h)
      unpack_2bit_half<true>(b.qs + 32 * h, b.hmask, 4 * h, q + 256 * i + 128 * h);
  }
}

// Q6_K into natural order: per half, out[32 s + l] takes ql[l] (s even) or ql[32 + l] (s odd),
// low nibble for s < 2, high for s >= 2, with bits 2 s, 2 s + 1 of qh[l] as bits 4-5; minus 32.
inline void unpack_q6_k_simd(const void* src, int64_t nb, int8_t* q, float* scale, float* bias) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i c32 = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ6_K*>(src)[i];
    const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    store_scales16(s8, b.d, scale + 16 * i, bias + 16 * i);
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
      const __m256i out[4] = {_mm256_or_si256(_mm256_and_si256(l0, m4),
                                              _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30)),
                              _mm256_or_si256(_mm256_and_si256(l1, m4),
                                              _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                              _mm256_and_si256(hb, m30)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                              _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30))};
      for (int s = 0; s < 4; ++s)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * i + 128 * h + 32 * s),
                            _mm256_sub_epi8(out[s], c32));
    }
  }
}

}  // namespace unpack_simd_detail

// Unpacks a row of k elements of type t like unpack_row and returns true, or returns false when
// t has no SIMD decoder here.
inline bool unpack_row_simd(DType t, const void* src, int64_t k, int8_t* q, float* scale,
                            float* bias) {
  namespace d = unpack_simd_detail;
  switch (t) {
    case DType::Q2_K:
      d::unpack_q2_k_simd(src, k / 256, q, scale, bias);
      return true;
    case DType::Q3_K:
      d::unpack_q3_k_simd(src, k / 256, q, scale, bias);
      return true;
    case DType::Q4_K:
      d::unpack_q4_k_simd(src, k / 256, q, scale, bias);
      return true;
    case DType::Q5_K:
      d::unpack_q5_k_simd(src, k / 256, q, scale, bias);
      return true;
    case DType::Q6_K:
      d::unpack_q6_k_simd(src, k / 256, q, scale, bias);
      return true;
    default:
      return false;
  }
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#endif
