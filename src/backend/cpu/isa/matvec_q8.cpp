// Fused decode kernels (see matvec_q8.h). Only the AVX-512 copy has code; the AVX2 build has its
// own (matvec_avx2.cpp) and the generic build reports no support.
#include "backend/cpu/isa/matvec_q8.h"

#if defined(EIGHT_ISA_avx512)
#include "backend/cpu/isa/intrin.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/cpu/isa/unpack.h"
#include "backend/cpu/isa/unpack_simd.h"
#include "backend/cpu/scratch.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

using namespace eight::quant;

// One x row quantized for the decode kernels.
struct XQ {
  const int8_t* q;     // [k]
  const float* d;      // [k / block]
  const int32_t* s16;  // [k / 16]: sum of q over each 16
  const int32_t* s32;  // [k / 32]
  const float* s32d;   // [k / 32]: s32 times the x block scale d
  const float* s16d;   // [k / 16]: s16 times d
};

inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// Quantizes x[0..k) in blocks of `block` (32 or 256) with d = amax / 127.
void quantize_x(const float* x, int64_t k, int block, int8_t* q, float* d, int32_t* s16,
                int32_t* s32, float* s32d, float* s16d) {
  for (int64_t b = 0; b < k / block; ++b) {
    const float* xb = x + b * block;
    __m512 amax = _mm512_setzero_ps();
    for (int j = 0; j < block; j += 16)
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(xb + j)));
    const float m = _mm512_reduce_max_ps(amax);
    d[b] = m / 127.f;
    const __m512 id = _mm512_set1_ps(m > 0 ? 127.f / m : 0.f);
    for (int j = 0; j < block; j += 16) {
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + j), id));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * block + j), _mm512_cvtsepi32_epi8(v));
      const int32_t s = _mm512_reduce_add_epi32(v);
      s16[(b * block + j) / 16] = s;
    }
  }
  for (int64_t g = 0; g < k / 16; ++g) s16d[g] = static_cast<float>(s16[g]) * d[g * 16 / block];
  for (int64_t g = 0; g < k / 32; ++g) {
    s32[g] = s16[2 * g] + s16[2 * g + 1];
    s32d[g] = static_cast<float>(s32[g]) * d[g * 32 / block];
  }
}

// Lane l of the result = v[base + l / per] (spreads per-group scales over dot-product lanes).
inline __m512i spread(__m512i v, int base, int per) {
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l) idx[l] = base + l / per;
  return _mm512_permutexvar_epi32(_mm512_load_si512(idx), v);
}

// The multi-row kernels below decode each weight block once into registers and reuse it for
// every x row (continuous batching decodes up to kMatvecMaxRows streams per step).
inline float hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// Q4_K / Q5_K in a "group per lane" order. The 128 code bytes of a super-block are 4 chunks of
// 32 (chunk c: group 2c in the low nibbles, group 2c + 1 in the high ones). Two vpermt2q gather
// qword p of every chunk: S0 = [c0q0 c1q0 c2q0 c3q0 c0q1 c1q1 c2q1 c3q1], S1 the same for
// qwords 2 and 3. Their low nibbles (A = lo S0, C = lo S1) hold only even groups and their high
// nibbles (B, D) only odd groups, at the same lanes: lane pair t of A and C is group 2 (t % 4).
// So dpbusd(A) + dpbusd(C) needs one scale multiply, not one per 64 codes, which makes each
// extra x row cost 4 vpdpbusd + 2 vpmaddwd + a few float ops. x is stored permuted to match
// (perm_k4): position 64 r + 8 t + j holds element 64 (t % 4) + 32 (r % 2) + 8 p + j,
// p = t / 4 + 2 (r / 2), for register r = A, B, C, D.
// x permutations as 64 four-byte chunks per 256 elements: chunk c of the permuted block is
// chunk table[c] of the natural one.
using XPerm = std::array<uint8_t, 64>;

constexpr XPerm perm_k4() {
  XPerm t{};
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 8; ++q) {
      const int c = q % 4, p = q / 4 + 2 * (r / 2);
      const int src = 64 * c + 32 * (r % 2) + 8 * p;  // first of 8 elements
      t[16 * r + 2 * q] = static_cast<uint8_t>(src / 4);
      t[16 * r + 2 * q + 1] = static_cast<uint8_t>(src / 4 + 1);
    }
  return t;
}

inline void permute_x(const XPerm& t, const int8_t* src, int8_t* dst) {
  for (int c = 0; c < 64; ++c) std::memcpy(dst + 4 * c, src + 4 * t[c], 4);
}

template <bool kQ5, int M>
void dot_q45_k_rows(const void* wrow, const XQ* x, int64_t nb, float* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i gather0 = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13);
  const __m512i gather1 = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
  // scale index per int32 lane: group 2 ((lane / 2) % 4) (+1 for the odd registers)
  const __m512i even = _mm512_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6, 0, 0, 2, 2, 4, 4, 6, 6);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  [[maybe_unused]] const __m512i qh_sel0 = _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1);
  [[maybe_unused]] const __m512i qh_sel1 = _mm512_setr_epi64(2, 2, 2, 2, 3, 3, 3, 3);
  [[maybe_unused]] const __m512i sh_even = _mm512_setr_epi64(0, 2, 4, 6, 0, 2, 4, 6);
  [[maybe_unused]] const __m512i sh_odd = _mm512_setr_epi64(1, 3, 5, 7, 1, 3, 5, 7);
  [[maybe_unused]] const __m512i bit = _mm512_set1_epi8(1);
  __m512 acc[M];
  __m256 accm[M];
  for (int r = 0; r < M; ++r) acc[r] = _mm512_setzero_ps(), accm[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* qs;
    const uint8_t* scales;
    uint16_t dh, dminh;
    const uint8_t* qh = nullptr;
    if constexpr (kQ5) {
      const auto& b = static_cast<const BlockQ5_K*>(wrow)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin, qh = b.qh;
    } else {
      const auto& b = static_cast<const BlockQ4_K*>(wrow)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
    }
    uint64_t sc8, m8;
    scales_k4(scales, &sc8, &m8);
    const __m512i sc =
        _mm512_castsi256_si512(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc8))));
    const float d = h2f(dh);
    // Group scales times d, in float: per row the scales then cost one fma per register pair
    // and dx folds into the final fma as a broadcast operand.
    // One row (plain decoding) keeps them in int32 and applies them with vpmaddwd instead: a lane
    // holds at most 2 * 31 * 127 * 4 = 31496, which fits int16, and the 6-bit scales have a zero
    // high half, so madd is the exact product; that saves the float set-up per block.
    const __m512i si_even = _mm512_permutexvar_epi32(even, sc);
    const __m512i si_odd = _mm512_permutexvar_epi32(odd, sc);
    __m512 s_even = _mm512_setzero_ps(), s_odd = _mm512_setzero_ps();
    if constexpr (M > 1) {
      const __m512 dv = _mm512_set1_ps(d);
      s_even = _mm512_mul_ps(_mm512_cvtepi32_ps(si_even), dv);
      s_odd = _mm512_mul_ps(_mm512_cvtepi32_ps(si_odd), dv);
    }
    const __m512i z01 = _mm512_loadu_si512(qs), z23 = _mm512_loadu_si512(qs + 64);
    const __m512i s0 = _mm512_permutex2var_epi64(z01, gather0, z23);
    const __m512i s1 = _mm512_permutex2var_epi64(z01, gather1, z23);
    __m512i wa = _mm512_and_si512(s0, m4), wb = _mm512_and_si512(_mm512_srli_epi16(s0, 4), m4);
    __m512i wc = _mm512_and_si512(s1, m4), wd = _mm512_and_si512(_mm512_srli_epi16(s1, 4), m4);
    if constexpr (kQ5) {
      // The fifth bit of element 8 p + j of group g is bit g of qh[8 p + j].
      const __m512i h =
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh)));
      const __m512i h0 = _mm512_permutexvar_epi64(qh_sel0, h);
      const __m512i h1 = _mm512_permutexvar_epi64(qh_sel1, h);
      auto fifth = [&](__m512i hv, __m512i shift) {
        return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(hv, shift), bit), 4);
      };
      wa = _mm512_or_si512(wa, fifth(h0, sh_even));
      wb = _mm512_or_si512(wb, fifth(h0, sh_odd));
      wc = _mm512_or_si512(wc, fifth(h1, sh_even));
      wd = _mm512_or_si512(wd, fifth(h1, sh_odd));
    }
    // The mins' term for every row: dmin * m_g * (dx * sum of x over group g).
    const __m256 mnd = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(m8)))),
        _mm256_set1_ps(h2f(dminh)));
    for (int r = 0; r < M; ++r) {
      const int8_t* xq = x[r].q + i * 256;
      __m512i ie = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa, _mm512_loadu_si512(xq));
      __m512i io = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wb, _mm512_loadu_si512(xq + 64));
      ie = _mm512_dpbusd_epi32(ie, wc, _mm512_loadu_si512(xq + 128));
      io = _mm512_dpbusd_epi32(io, wd, _mm512_loadu_si512(xq + 192));
      if constexpr (M == 1) {
        const __m512i isum =
            _mm512_add_epi32(_mm512_madd_epi16(ie, si_even), _mm512_madd_epi16(io, si_odd));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * x[r].d[i]), acc[r]);
      } else {
        const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ie), s_even,
                                         _mm512_mul_ps(_mm512_cvtepi32_ps(io), s_odd));
        acc[r] = _mm512_fmadd_ps(t, _mm512_set1_ps(x[r].d[i]), acc[r]);
      }
      accm[r] = _mm256_fmadd_ps(mnd, _mm256_loadu_ps(x[r].s32d + 8 * i), accm[r]);
    }
  }
  for (int r = 0; r < M; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) - hsum8(accm[r]);
}

// Q6_K in the same spirit, with 16 groups of 16: ql is two zmm L0, L1 (low nibbles: elements
// 128 h + 0..63 of L_h, high nibbles: 128 h + 64..127). vpermt2d builds G_p = dwords
// [p, 4+p, 8+p, 12+p] of L0 then of L1, two G_p per zmm. Lane l of a low-nibble register then
// holds group lo(l) = l % 8 + 4 (l % 8 >= 4) (4 codes of it) in every register, and lane l of a
// high-nibble register group lo(l) + 4. The two high bits of element e of half h are bits
// 2 (e / 32) of qh[32 h + e % 32], gathered to match. x is permuted to match (perm_q6k):
// position 64 r + 4 l + b holds element 128 h + 64 (r % 2) + 4 dw + b with p = 2 (r / 2) + l / 8,
// k = l % 8, h = k / 4, dw = 4 (k % 4) + p.
constexpr XPerm perm_q6k() {
  XPerm t{};
  for (int r = 0; r < 4; ++r)
    for (int l = 0; l < 16; ++l) {
      const int p = 2 * (r / 2) + l / 8, k = l % 8, h = k / 4, dw = 4 * (k % 4) + p;
      t[16 * r + l] = static_cast<uint8_t>((128 * h + 64 * (r % 2) + 4 * dw) / 4);
    }
  return t;
}

template <int M>
void dot_q6_k_rows(const void* wrow, const XQ* x, int64_t nb, float* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x03);
  const __m512i g01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i g23 = _mm512_add_epi32(g01, _mm512_set1_epi32(2));
  // qh dword for entry k of G_p: 8 (k / 4) + (4 (k % 4) + p) % 8; shifted right 2 when k % 4 >= 2
  const __m512i h01 = _mm512_setr_epi32(0, 4, 0, 4, 8, 12, 8, 12, 1, 5, 1, 5, 9, 13, 9, 13);
  const __m512i h23 = _mm512_add_epi32(h01, _mm512_set1_epi32(2));
  const __m512i hshift = _mm512_setr_epi32(0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2);
  const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
  const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(4));
  __m512 acc[M];
  for (int r = 0; r < M; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ6_K*>(wrow)[i];
    const __m512 d = _mm512_set1_ps(h2f(b.d));
    const __m512 scf = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales))));
    const __m512 s_lo = _mm512_mul_ps(_mm512_permutexvar_ps(lo_idx, scf), d);
    const __m512 s_hi = _mm512_mul_ps(_mm512_permutexvar_ps(hi_idx, scf), d);
    // The codes are stored +32: subtract 32 * d * sum_g scale_g * (dx * sum of x over g).
    const __m512 corr = _mm512_mul_ps(scf, _mm512_mul_ps(d, _mm512_set1_ps(-32.f)));
    const __m512i l0 = _mm512_loadu_si512(b.ql), l1 = _mm512_loadu_si512(b.ql + 64);
    const __m512i qh = _mm512_loadu_si512(b.qh);  // 64 bytes: both halves' qh
    const __m512i s01 = _mm512_permutex2var_epi32(l0, g01, l1);
    const __m512i s23 = _mm512_permutex2var_epi32(l0, g23, l1);
    const __m512i q01 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(h01, qh), hshift);
    const __m512i q23 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(h23, qh), hshift);
    auto code = [&](__m512i nib, __m512i hbits) {
      return _mm512_or_si512(_mm512_and_si512(nib, m4),
                             _mm512_slli_epi16(_mm512_and_si512(hbits, m3), 4));
    };
    const __m512i wa = code(s01, q01);
    const __m512i wb = code(_mm512_srli_epi16(s01, 4), _mm512_srli_epi16(q01, 4));
    const __m512i wc = code(s23, q23);
    const __m512i wd = code(_mm512_srli_epi16(s23, 4), _mm512_srli_epi16(q23, 4));
    for (int r = 0; r < M; ++r) {
      const int8_t* xq = x[r].q + i * 256;
      __m512i il = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa, _mm512_loadu_si512(xq));
      __m512i ih = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wb, _mm512_loadu_si512(xq + 64));
      il = _mm512_dpbusd_epi32(il, wc, _mm512_loadu_si512(xq + 128));
      ih = _mm512_dpbusd_epi32(ih, wd, _mm512_loadu_si512(xq + 192));
      const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(il), s_lo,
                                       _mm512_mul_ps(_mm512_cvtepi32_ps(ih), s_hi));
      acc[r] = _mm512_fmadd_ps(t, _mm512_set1_ps(x[r].d[i]), acc[r]);
      acc[r] = _mm512_fmadd_ps(corr, _mm512_loadu_ps(x[r].s16d + 16 * i), acc[r]);
    }
  }
  for (int r = 0; r < M; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <bool kQ5>
float dot_q45_k(const void* wrow, const XQ& x, int64_t nb) {
  float out;
  dot_q45_k_rows<kQ5, 1>(wrow, &x, nb, &out);
  return out;
}

float dot_q6_k(const void* wrow, const XQ& x, int64_t nb) {
  float out;
  dot_q6_k_rows<1>(wrow, &x, nb, &out);
  return out;
}

// Q2_K / Q3_K: two 2-bit planes of 32 bytes form 64 consecutive codes; 16-element groups.
inline __m512i planes_2bit(__m256i q, int plane) {
  const __m128i s0 = _mm_cvtsi32_si128(2 * plane), s1 = _mm_cvtsi32_si128(2 * plane + 2);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i a = _mm256_and_si256(_mm256_srl_epi16(q, s0), m3);
  const __m256i b = _mm256_and_si256(_mm256_srl_epi16(q, s1), m3);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

float dot_q2_k(const void* wrow, const XQ& x, int64_t nb) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i idx[4];
  for (int c = 0; c < 4; ++c) idx[c] = spread(iota, 4 * c, 4);
  __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ2_K*>(wrow)[i];
    const __m512i sm =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m512i sc = _mm512_and_si512(sm, _mm512_set1_epi32(15));
    const __m512i mn = _mm512_srli_epi32(sm, 4);
    const int8_t* xq = x.q + i * 256;
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
      for (int pp = 0; pp < 2; ++pp) {
        const __m512i w = planes_2bit(q, 2 * pp);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w,
                                                _mm512_loadu_si512(xq + 128 * h + 64 * pp));
        isum = _mm512_add_epi32(
            isum, _mm512_mullo_epi32(dot, _mm512_permutexvar_epi32(idx[2 * h + pp], sc)));
      }
    }
    const float dx = x.d[i];
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(b.d) * dx), acc);
    const __m512i m = _mm512_mullo_epi32(mn, _mm512_loadu_si512(x.s16 + 16 * i));
    accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(h2f(b.dmin) * dx), accm);
  }
  return _mm512_reduce_add_ps(acc) - _mm512_reduce_add_ps(accm);
}

// The 16 signed six-bit scales of a Q3_K block, minus 32: low nibbles from bytes 0..7, high
// two bits from bytes 8..11 (scale g takes bits 2 * (g / 4) of byte 8 + g % 4).
inline __m512i scales_q3_k(const uint8_t* s) {
  uint32_t a0, a1, t;
  std::memcpy(&a0, s, 4);
  std::memcpy(&a1, s + 4, 4);
  std::memcpy(&t, s + 8, 4);
  const uint32_t lo = 0x0f0f0f0f, hi = 0x03030303;
  const __m128i v = _mm_setr_epi32(static_cast<int>((a0 & lo) | ((t & hi) << 4)),
                                   static_cast<int>((a1 & lo) | (((t >> 2) & hi) << 4)),
                                   static_cast<int>(((a0 >> 4) & lo) | (((t >> 4) & hi) << 4)),
                                   static_cast<int>(((a1 >> 4) & lo) | (((t >> 6) & hi) << 4)));
  return _mm512_sub_epi32(_mm512_cvtepu8_epi32(v), _mm512_set1_epi32(32));
}

float dot_q3_k(const void* wrow, const XQ& x, int64_t nb) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i idx[4];
  for (int c = 0; c < 4; ++c) idx[c] = spread(iota, 4 * c, 4);
  const __m256i one = _mm256_set1_epi8(1);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ3_K*>(wrow)[i];
    const __m512i sc = scales_q3_k(b.scales);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    const int8_t* xq = x.q + i * 256;
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
      for (int pp = 0; pp < 2; ++pp) {
        const int bit = 4 * h + 2 * pp;
        // code + 4 = low 2 bits | (high bit set ? 4 : 0), in 0..7
        const __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(bit)), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(bit + 1)), one);
        const __m512i hb = _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1);
        const __m512i w = _mm512_or_si512(planes_2bit(q, 2 * pp), _mm512_slli_epi16(hb, 2));
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w,
                                                _mm512_loadu_si512(xq + 128 * h + 64 * pp));
        isum = _mm512_add_epi32(
            isum, _mm512_mullo_epi32(dot, _mm512_permutexvar_epi32(idx[2 * h + pp], sc)));
      }
    }
    const __m512i corr = _mm512_mullo_epi32(sc, _mm512_loadu_si512(x.s16 + 16 * i));
    isum = _mm512_sub_epi32(isum, _mm512_slli_epi32(corr, 2));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(b.d) * x.d[i]), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// ---- 32-element blocks with unsigned codes plus an offset or a min (Q4_1, Q5_0, Q5_1) and the
// non-linear IQ4 codes. One ymm vpdpbusd per block; per-block scales folded in float.

// 16 bytes of packed nibbles -> 32 codes in element order (low nibbles first).
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// The 5th bit of each of 32 codes (bit j of the little-endian qh word) as 0x10 bytes.
inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  return _mm256_maskz_set1_epi8(h, 0x10);
}

inline __m256i xload32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Q4_1 / Q5_0 / Q5_1: value = d * code + m (Q*_1) or d * (code - 16) (Q5_0).
template <class Block, bool kFifth, bool kMin>
float dot_unsigned32(const void* wrow, const XQ& x, int64_t nb) {
  const auto* w = static_cast<const Block*>(wrow);
  __m256 acc = _mm256_setzero_ps();
  float corr = 0;  // sum_b (m_b or -16 d_b) * dx_b * sum(x in b)
  for (int64_t b = 0; b < nb; ++b) {
    __m256i codes = nibbles32(w[b].qs);
    if constexpr (kFifth) codes = _mm256_or_si256(codes, fifth_bits(w[b].qh));
    const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, xload32(x.q + 32 * b));
    const float dx = x.d[b], d = h2f(w[b].d) * dx;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc);
    float off;
    if constexpr (kMin)
      off = h2f(w[b].m) * dx;
    else
      off = -16.f * d;
    corr += off * static_cast<float>(x.s32[b]);
  }
  return hsum8(acc) + corr;
}

// IQ4 codes through the 16-entry table, multiplied sign-corrected (|w| * sign(w) x).
inline __m256i iq4_dot(const uint8_t* qs, const int8_t* xq, __m256i table) {
  const __m256i w = _mm256_shuffle_epi8(table, nibbles32(qs));
  const __m256i xv = xload32(xq);
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(xv, w));
}

inline __m256i iq4_table() {
  return _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
}

float dot_iq4_nl(const void* wrow, const XQ& x, int64_t nb) {
  const auto* w = static_cast<const BlockIQ4_NL*>(wrow);
  const __m256i table = iq4_table();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i dot = iq4_dot(w[b].qs, x.q + 32 * b, table);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(h2f(w[b].d) * x.d[b]), acc);
  }
  return hsum8(acc);
}

float dot_iq4_xs(const void* wrow, const XQ& x, int64_t nb) {
  const auto* w = static_cast<const BlockIQ4_XS*>(wrow);
  const __m256i table = iq4_table();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const float d = h2f(w[b].d) * x.d[b];
    for (int g = 0; g < 8; ++g) {
      const int ls =
          ((w[b].scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((w[b].scales_h >> (2 * g)) & 3) << 4);
      const __m256i dot = iq4_dot(w[b].qs + 16 * g, x.q + 256 * b + 32 * g, table);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                            _mm256_set1_ps(d * static_cast<float>(ls - 32)), acc);
    }
  }
  return hsum8(acc);
}

float dot_q8_0(const void* wrow, const XQ& x, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const auto* w = static_cast<const BlockQ8_0*>(wrow);
  int64_t i = 0;
  auto one = [&](int64_t b) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + 32 * b));
    const __m256i dot =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(h2f(w[b].d) * x.d[b]));
  };
  for (; i + 2 <= nb; i += 2) {
    acc0 = _mm256_add_ps(acc0, one(i));
    acc1 = _mm256_add_ps(acc1, one(i + 1));
  }
  if (i < nb) acc0 = _mm256_add_ps(acc0, one(i));
  const __m256 a = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// Q4_0: two blocks per zmm; codes stored +8, undone with the x block sums.
float dot_q4_0(const void* wrow, const XQ& x, int64_t nb) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const auto* w = static_cast<const BlockQ4_0*>(wrow);
  __m512 acc = _mm512_setzero_ps();
  // sum_b scale_b * sum(x in b), in a vector so the loop carries one FMA latency, not two
  __m128 corrv = _mm_setzero_ps();
  float corr = 0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i v =
        _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b + 1].qs)),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs)));
    // [A lo, B lo, A hi, B hi] -> [A lo, A hi, B lo, B hi]: element order of the two blocks
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    const __m512i codes = _mm512_and_si512(_mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)), m4);
    const __m512i dot =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, _mm512_loadu_si512(x.q + 32 * b));
    const float sa = h2f(w[b].d) * x.d[b], sb = h2f(w[b + 1].d) * x.d[b + 1];
    const __m128i sums = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.s32 + b));
    corrv = _mm_fmadd_ps(_mm_setr_ps(sa, sb, 0, 0), _mm_cvtepi32_ps(sums), corrv);
    const __m512 scl = _mm512_insertf32x8(_mm512_set1_ps(sa), _mm256_set1_ps(sb), 1);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scl, acc);
  }
  float tail = 0;
  if (b < nb) {
    const __m256i codes = nibbles32(w[b].qs);
    const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, xload32(x.q + 32 * b));
    const float s = h2f(w[b].d) * x.d[b];
    corr += s * static_cast<float>(x.s32[b]);
    tail = hsum8(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(s)));
  }
  corr += _mm_cvtss_f32(_mm_hadd_ps(corrv, corrv));
  return _mm512_reduce_add_ps(acc) + tail - 8.f * corr;
}

// Q4_0 eight blocks (256 weights, 144 bytes) at a time, which the two-block loop above could not
// keep up with memory: three loads, vpermt2b gathers the 128 code bytes into two registers and
// the eight fp16 scales into one (one vcvtph2ps instead of eight scalar conversions). In the
// code registers lanes 4b..4b+3 belong to block b, low nibbles in one register and high ones in
// the other, so one float multiply per register applies the block scales. x is permuted to match
// (perm_q4_0): position 64 r + 16 b + j holds element 32 (b + 4 (r / 2)) + 16 (r % 2) + j. A
// tail of k % 256 runs through dot_q4_0 on x in natural order.
constexpr XPerm perm_q4_0() {
  XPerm t{};
  for (int r = 0; r < 4; ++r)
    for (int b = 0; b < 4; ++b)
      for (int jj = 0; jj < 4; ++jj)
        t[16 * r + 4 * b + jj] =
            static_cast<uint8_t>((32 * (b + 4 * (r / 2)) + 16 * (r % 2) + 4 * jj) / 4);
  return t;
}

// vpermt2b indices: the code bytes of blocks 0-3 (from bytes 0..127 of the group), of blocks
// 4-7 (from bytes 64..191) and the 8 fp16 scales (bytes 18 b, 18 b + 1). Built at compile time
// so the per-row kernel loads them without a static-initialization guard.
struct Q4_0Gather {
  alignas(64) uint8_t lo03[64], lo47[64], scales[64];
};

constexpr Q4_0Gather q4_0_gather() {
  Q4_0Gather g{};
  for (int i = 0; i < 64; ++i) {
    g.lo03[i] = static_cast<uint8_t>(18 * (i / 16) + 2 + i % 16);
    g.lo47[i] = static_cast<uint8_t>(18 * (i / 16) + 10 + i % 16);
    g.scales[i] = static_cast<uint8_t>(i < 16 ? 18 * (i / 2) + i % 2 : 0);
  }
  return g;
}

constexpr Q4_0Gather kQ4_0Gather = q4_0_gather();

float dot_q4_0_groups(const void* wrow, const XQ& x, int64_t nb) {
  const __m512i lo03 = _mm512_load_si512(kQ4_0Gather.lo03);
  const __m512i lo47 = _mm512_load_si512(kQ4_0Gather.lo47);
  const __m512i scale_idx = _mm512_load_si512(kQ4_0Gather.scales);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i lanes03 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i lanes47 = _mm512_add_epi32(lanes03, _mm512_set1_epi32(4));
  const auto* row = static_cast<const uint8_t*>(wrow);
  const int64_t groups = nb / 8;
  __m512 acc = _mm512_setzero_ps();
  __m256 corr = _mm256_setzero_ps();  // sum_b d_b * dx_b * sum(x in b)
  for (int64_t gi = 0; gi < groups; ++gi) {
    const uint8_t* base = row + 144 * gi;
    const __m512i z0 = _mm512_loadu_si512(base), z1 = _mm512_loadu_si512(base + 64);
    const __m512i z2 = _mm512_maskz_loadu_epi8(0xFFFF, base + 128);
    const __m512i q03 = _mm512_permutex2var_epi8(z0, lo03, z1);
    const __m512i q47 = _mm512_permutex2var_epi8(z1, lo47, z2);
    const __m256 dw =
        _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi8(z0, scale_idx, z1)));
    const __m256 sd = _mm256_mul_ps(dw, _mm256_loadu_ps(x.d + 8 * gi));
    corr = _mm256_fmadd_ps(dw, _mm256_loadu_ps(x.s32d + 8 * gi), corr);
    const int8_t* xq = x.q + 256 * gi;
    __m512i i03 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(q03, m4),
                                      _mm512_loadu_si512(xq));
    i03 = _mm512_dpbusd_epi32(i03, _mm512_and_si512(_mm512_srli_epi16(q03, 4), m4),
                              _mm512_loadu_si512(xq + 64));
    __m512i i47 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(q47, m4),
                                      _mm512_loadu_si512(xq + 128));
    i47 = _mm512_dpbusd_epi32(i47, _mm512_and_si512(_mm512_srli_epi16(q47, 4), m4),
                              _mm512_loadu_si512(xq + 192));
    const __m512 sdz = _mm512_castps256_ps512(sd);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i03), _mm512_permutexvar_ps(lanes03, sdz), acc);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i47), _mm512_permutexvar_ps(lanes47, sdz), acc);
  }
  float tail = 0;
  if (groups * 8 < nb) {
    const XQ xt{x.q + 256 * groups, x.d + 8 * groups,    x.s16 + 16 * groups,
                x.s32 + 8 * groups, x.s32d + 8 * groups, x.s16d + 16 * groups};
    tail = dot_q4_0(row + 144 * groups, xt, nb - 8 * groups);
  }
  return _mm512_reduce_add_ps(acc) - 8.f * hsum8(corr) + tail;
}

using DotFn = float (*)(const void* wrow, const XQ& x, int64_t nb);

DotFn dot_fn(DType t) {
  switch (t) {
    case DType::Q4_K:
      return dot_q45_k<false>;
    case DType::Q5_K:
      return dot_q45_k<true>;
    case DType::Q6_K:
      return dot_q6_k;
    case DType::Q2_K:
      return dot_q2_k;
    case DType::Q4_1:
      return dot_unsigned32<BlockQ4_1, false, true>;
    case DType::Q5_0:
      return dot_unsigned32<BlockQ5_0, true, false>;
    case DType::Q5_1:
      return dot_unsigned32<BlockQ5_1, true, true>;
    case DType::IQ4_NL:
      return dot_iq4_nl;
    case DType::IQ4_XS:
      return dot_iq4_xs;
    case DType::Q3_K:
      return dot_q3_k;
    case DType::Q8_0:
      return dot_q8_0;
    case DType::Q4_0:
      return dot_q4_0_groups;
    default:
      return nullptr;
  }
}

// Kernels that take several x rows at once, indexed by the row count (1..kRowsPerPass). More
// rows run in passes of kRowsPerPass over a task's weight rows: more float accumulators than
// that spill, and more x rows than that (4 KiB each at k = 4096) no longer fit L1 beside the
// weights.
constexpr int64_t kRowsPerPass = 4;
using RowsFn = void (*)(const void* wrow, const XQ* x, int64_t nb, float* out);

template <template <int> class K, size_t... I>
constexpr std::array<RowsFn, sizeof...(I)> rows_table(std::index_sequence<I...>) {
  return {K<static_cast<int>(I) + 1>::fn...};
}
template <int M>
struct Q4K {
  static constexpr RowsFn fn = dot_q45_k_rows<false, M>;
};
template <int M>
struct Q5K {
  static constexpr RowsFn fn = dot_q45_k_rows<true, M>;
};
template <int M>
struct Q6K {
  static constexpr RowsFn fn = dot_q6_k_rows<M>;
};

RowsFn rows_fn(DType t, int64_t m) {
  constexpr auto seq = std::make_index_sequence<kRowsPerPass>();
  static constexpr auto q4k = rows_table<Q4K>(seq);
  static constexpr auto q5k = rows_table<Q5K>(seq);
  static constexpr auto q6k = rows_table<Q6K>(seq);
  switch (t) {
    case DType::Q4_K:
      return q4k[m - 1];
    case DType::Q5_K:
      return q5k[m - 1];
    case DType::Q6_K:
      return q6k[m - 1];
    default:
      return nullptr;
  }
}

// Weight rows per claim of the guided loop (at least) and per L1-resident group for the passes.
constexpr int64_t kMinRowsPerClaim = 16, kRowsPerTile = 16;

// The order the kernels of type t expect x in (nullptr: natural order).
const XPerm* x_permutation(DType t) {
  static constexpr XPerm k4 = perm_k4(), q6k = perm_q6k(), q40 = perm_q4_0();
  switch (t) {
    case DType::Q4_K:
    case DType::Q5_K:
      return &k4;
    case DType::Q6_K:
      return &q6k;
    case DType::Q4_0:
      return &q40;
    default:
      return nullptr;
  }
}

}  // namespace

bool matvec_q8_supports(DType w_type) {
  return dot_fn(w_type) != nullptr;
}

void matvec_q8(const MatmulProblem& p, ThreadPool& pool) {
  const DotFn dot = dot_fn(p.w_type);
  const int block = static_cast<int>(dtype_block_size(p.w_type)) == 256 ? 256 : 32;
  const int64_t k = p.k, nb = k / dtype_block_size(p.w_type);
  // x rows quantized once by the calling thread (a few k elements).
  const size_t per_row =
      static_cast<size_t>(k) + (k / block + 2 * (k / 16) + 2 * (k / 32)) * 4 + 256;
  auto* base = static_cast<uint8_t*>(thread_scratch(3, per_row * static_cast<size_t>(p.m)));
  XQ xs[kMatvecMaxRows];
  for (int64_t i = 0; i < p.m; ++i) {
    uint8_t* r = base + i * per_row;
    auto* q = reinterpret_cast<int8_t*>(r);
    auto* d = reinterpret_cast<float*>(r + ((k + 63) / 64) * 64);
    auto* s16 = reinterpret_cast<int32_t*>(d + k / block);
    auto* s32 = s16 + k / 16;
    auto* s32d = reinterpret_cast<float*>(s32 + k / 32);
    auto* s16d = s32d + k / 32;
    quantize_x(p.x + i * p.ldx, k, block, q, d, s16, s32, s32d, s16d);
    if (const XPerm* t = x_permutation(p.w_type)) {
      int8_t tmp[256];
      for (int64_t b = 0; b < k / 256; ++b) {
        std::memcpy(tmp, q + 256 * b, 256);
        permute_x(*t, tmp, q + 256 * b);
      }
    }
    xs[i] = {q, d, s16, s32, s32d, s16d};
  }
  const bool multi = p.m > 1 && rows_fn(p.w_type, 1) != nullptr;
  pool.parallel_chunks(p.n, kMinRowsPerClaim, [&](int64_t c0, int64_t c1, int) {
    // Several x rows: weight rows in groups small enough to stay in L1 across the passes.
    for (int64_t j0 = c0; j0 < c1; j0 += kRowsPerTile) {
      const int64_t j1 = std::min(c1, j0 + kRowsPerTile);
      if (multi) {
        float out[kRowsPerPass];
        for (int64_t i0 = 0; i0 < p.m; i0 += kRowsPerPass) {
          const int64_t mi = std::min(kRowsPerPass, p.m - i0);
          const RowsFn rows = rows_fn(p.w_type, mi);
          for (int64_t j = j0; j < j1; ++j) {
            rows(static_cast<const char*>(p.w) + j * p.ldw, xs + i0, nb, out);
            const float b = p.bias ? p.bias[j] : 0.f;
            for (int64_t i = 0; i < mi; ++i) p.y[(i0 + i) * p.ldy + j] = out[i] + b;
          }
        }
        continue;
      }
      for (int64_t j = j0; j < j1; ++j) {
        const void* w = static_cast<const char*>(p.w) + j * p.ldw;
        const float b = p.bias ? p.bias[j] : 0.f;
        for (int64_t i = 0; i < p.m; ++i) p.y[i * p.ldy + j] = dot(w, xs[i], nb) + b;
      }
    }
  });
}

void unpack_row_fast(DType t, const void* src, int64_t k, int8_t* q, float* scale, float* bias) {
  if (!unpack_row_simd(t, src, k, q, scale, bias)) unpack_row(t, src, k, q, scale, bias);
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#elif !defined(EIGHT_ISA_avx2)  // the AVX2 kernels are in matvec_avx2.cpp

namespace eight::cpu::EIGHT_ISA_NAMESPACE {
bool matvec_q8_supports(DType) {
  return false;
}
void matvec_q8(const MatmulProblem&, ThreadPool&) {}
}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#endif
