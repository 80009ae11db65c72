// Batched int8 matmul (many x rows): the prompt-processing path, one algorithm for three ISA
// tables that differ in register width and in the 4-value integer dot product:
//   avx512:   zmm, a lane per x row (16 rows per block), vpdpbusd (AVX-512 VNNI)
//   avx2vnni: ymm, 8 rows per block, vpdpbusd in its VEX encoding (AVX-VNNI)
//   avx2:     ymm, 8 rows per block, vpmaddubsw + vpmaddwd (no VNNI; see dot8, wide_codes)
//
// x is quantized per row in blocks of 32 (dx = amax / 127), interleaved for the dot product:
// [m / L][k / 4][L rows][4], stored as q + 128 (vpdpbusd and vpmaddubsw multiply unsigned by
// signed bytes); every group's sum starts at -128 * sum q_w to undo the offset.
// A panel of NR weight rows is unpacked once per task into int8 codes plus per-group scale and
// bias (isa/unpack.h), then a register tile of L * MB x rows times NR weight rows accumulates
// sum_k q_w * q_x per group in int32 and folds it into float with dx of its x block times the
// group's scale (and the bias times the group's x sum, dx included). 32-value groups: tile(),
// one multiply and one fma per group; 16-value groups (Q2_K, Q3_K, Q6_K): tile_g16(), the two
// groups of an x block summed before one dx fma.
//
// Why blocks of 32: real models have outlier activations (a few channels 10-100x the rest), and
// one scale per 256 values left the other 255 with a few int8 levels. On SmolLM2-135M Q4_1 the
// prompt logits went from NMSE 1.3e-3-4.6e-3 against float64 math to 2.6e-4-7.0e-4, the one-token
// path's level (docs/kernels.md). The tiles keep their accumulators in registers over all of k.
#include "backend/cpu/isa/matmul_q8.h"

#if defined(EIGHT_ISA_avx2) || defined(EIGHT_ISA_avx512)
#include "backend/cpu/isa/intrin.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/isa/matvec_q8.h"
#include "backend/cpu/isa/unpack.h"
#include "backend/cpu/scratch.h"
#include "core/thread_pool.h"
#endif

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

#if !defined(EIGHT_ISA_avx2) && !defined(EIGHT_ISA_avx512)

bool matmul_q8_supports(const MatmulProblem&) {
  return false;
}
void matmul_q8(const MatmulProblem&, ThreadPool&) {}

#else

namespace {

constexpr int kXBlock = 32;   // x quantization block (one dx per 32 values)
constexpr int64_t kMC = 128;  // x rows per task (the x chunk stays in L2)

#if defined(EIGHT_ISA_avx512)
// 32 zmm registers: 2 x blocks by 6 weight rows (4 for 16-value groups, which need a third set
// of accumulators).
constexpr int kL = 16, kMaxMB = 2, kNR32 = 6, kNR16 = 4;
constexpr bool kEmulated = false;
using VI = __m512i;
using VF = __m512;
inline VI iload(const void* p) {
  return _mm512_loadu_si512(p);
}
inline VI iset1(int32_t v) {
  return _mm512_set1_epi32(v);
}
inline VF fzero() {
  return _mm512_setzero_ps();
}
inline VF fset1(float v) {
  return _mm512_set1_ps(v);
}
inline VF fload(const float* p) {
  return _mm512_loadu_ps(p);
}
inline void fstore(float* p, VF v) {
  _mm512_storeu_ps(p, v);
}
inline VF cvt(VI v) {
  return _mm512_cvtepi32_ps(v);
}
inline VF fmul(VF a, VF b) {
  return _mm512_mul_ps(a, b);
}
inline VF fmadd(VF a, VF b, VF c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline VI dot4(VI acc, VI x, VI w) {
  return _mm512_dpbusd_epi32(acc, x, w);
}
inline VI xor80(VI x) {
  return _mm512_xor_si512(x, _mm512_set1_epi8(static_cast<char>(0x80)));
}
#else
// 16 ymm registers: one x block; 6 / 4 weight rows with VNNI, 4 / 3 without (the emulated dot
// product takes two steps of x and w at once and the ones constant).
constexpr int kL = 8, kMaxMB = 1;
using VI = __m256i;
using VF = __m256;
inline VI iload(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline VI iset1(int32_t v) {
  return _mm256_set1_epi32(v);
}
inline VF fzero() {
  return _mm256_setzero_ps();
}
inline VF fset1(float v) {
  return _mm256_set1_ps(v);
}
inline VF fload(const float* p) {
  return _mm256_loadu_ps(p);
}
inline void fstore(float* p, VF v) {
  _mm256_storeu_ps(p, v);
}
inline VF cvt(VI v) {
  return _mm256_cvtepi32_ps(v);
}
inline VF fmul(VF a, VF b) {
  return _mm256_mul_ps(a, b);
}
inline VF fmadd(VF a, VF b, VF c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline VI xor80(VI x) {
  return _mm256_xor_si256(x, _mm256_set1_epi8(static_cast<char>(0x80)));
}
#if defined(EIGHT_ISA_avx2vnni)
constexpr int kNR32 = 6, kNR16 = 4;
constexpr bool kEmulated = false;
inline VI dot4(VI acc, VI x, VI w) {
  return _mm256_dpbusd_avx_epi32(acc, x, w);
}
#else
constexpr int kNR32 = 4, kNR16 = 3;
constexpr bool kEmulated = true;  // no vpdpbusd: dot8 below
// Wide codes: x signed, a = |w| (precomputed with the panel).
inline VI dot4_signed(VI acc, VI x, VI w, VI a) {
  const VI p = _mm256_maddubs_epi16(a, _mm256_sign_epi8(x, w));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
#endif
#endif
constexpr uint8_t kXFlip = 0x80;  // x stored as q + 128 (the unsigned operand)

// Wide codes: weights beyond [-32, 32] (Q8_0, IQ4_NL, IQ4_XS). Without VNNI, vpmaddubsw's int16
// pair sums of (q_x + 128) * w would saturate for them (2 * 255 * 128 > 32767), so the emulated
// path multiplies |w| (unpacked with the panel) by the signed x with w's sign instead (vpsignb),
// one step at a time, and needs no offset correction. Every other type has |w| <= 32: two steps'
// pair sums fit one int16 (4 * 255 * 32 < 32768) and are added before a single vpmaddwd.
bool wide_codes(DType t) {
  return t == DType::Q8_0 || t == DType::IQ4_NL || t == DType::IQ4_XS;
}

// x as the dot product takes it (kSigned: back to signed bytes).
template <bool kSigned>
inline VI xload(const uint8_t* p) {
  return kSigned ? xor80(iload(p)) : iload(p);
}

// Two 4-value steps of the integer dot product: acc += x0 . w0 + x1 . w1 in every 32-bit lane
// (a0, a1: |w0|, |w1|, used by the emulated wide-code path only).
template <bool kSigned>
inline VI dot8(VI acc, VI x0, VI x1, VI w0, VI w1, [[maybe_unused]] VI a0, [[maybe_unused]] VI a1) {
#if defined(EIGHT_ISA_avx2) && !defined(EIGHT_ISA_avx2vnni)
  if constexpr (kSigned) return dot4_signed(dot4_signed(acc, x0, w0, a0), x1, w1, a1);
  const VI p = _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0), _mm256_maddubs_epi16(x1, w1));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#else
  return dot4(dot4(acc, x0, w0), x1, w1);
#endif
}

// x quantized for the tile kernel; pointers into per-call scratch.
struct XPack {
  const uint8_t* q;  // [mblocks][k / 4][4 * kL]
  const float* dx;   // [mblocks][nxb][kL]
  const float* xs;   // [mblocks][k / G][kL]: dx times the sum of q over each group of G
  int64_t k4, nxb, ng;
};

// Quantizes 32 values of x to int8 (d = amax / 127, round to nearest even as std::nearbyint):
// stores the 32 bytes (xor kXFlip) and the sums of q over each half, returns d.
inline float quant32(const float* x, uint8_t* out, int32_t* half_sums) {
#if defined(EIGHT_ISA_avx512)
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const __m512 id = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
  const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
  const __m128i flip = _mm_set1_epi8(static_cast<char>(kXFlip));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_xor_si128(_mm512_cvtepi32_epi8(i0), flip));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16),
                   _mm_xor_si128(_mm512_cvtepi32_epi8(i1), flip));
  half_sums[0] = _mm512_reduce_add_epi32(i0);
  half_sums[1] = _mm512_reduce_add_epi32(i1);
#else
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 v[4], m = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_loadu_ps(x + 8 * j);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float amax = _mm_cvtss_f32(h);
  const __m256 id = _mm256_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  __m256i i[4];
  for (int j = 0; j < 4; ++j) i[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], id));
  // packs works within 128-bit lanes: the dwords come out as 0-3 of i0, i1, i2, i3, then 4-7.
  const __m256i b =
      _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_xor_si256(ordered, _mm256_set1_epi8(static_cast<char>(kXFlip))));
  for (int hh = 0; hh < 2; ++hh) {
    const __m256i s = _mm256_add_epi32(i[2 * hh], i[2 * hh + 1]);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    half_sums[hh] = _mm_cvtsi128_si32(t);
  }
#endif
  return amax / 127.f;
}

// Quantizes x rows [kL * mb, kL * mb + kL) (rows past m are zero). k is a multiple of kXBlock
// (every quantized type's block is 32 or 256) and group (16 or 32) divides kXBlock.
void pack_x_block(const MatmulProblem& p, int64_t mb, int group, uint8_t* q, float* dx, float* xs) {
  const int64_t nxb = p.k / kXBlock;
  for (int r = 0; r < kL; ++r) {
    const int64_t i = mb * kL + r;
    const float* x = i < p.m ? p.x + i * p.ldx : nullptr;
    for (int64_t b = 0; b < nxb; ++b) {
      const int64_t k0 = b * kXBlock;
      uint8_t* qb = q + (k0 / 4) * 4 * kL + r * 4;  // 4 values every 4 * kL bytes
      if (!x) {
        dx[b * kL + r] = 0;
        for (int j = 0; j < kXBlock / 4; ++j) std::memset(qb + j * 4 * kL, kXFlip, 4);
        for (int g = 0; g < kXBlock / group; ++g) xs[(k0 / group + g) * kL + r] = 0;
        continue;
      }
      alignas(32) uint8_t bytes[kXBlock];
      int32_t half[2];
      const float d = quant32(x + k0, bytes, half);
      for (int j = 0; j < kXBlock / 4; ++j) std::memcpy(qb + j * 4 * kL, bytes + 4 * j, 4);
      dx[b * kL + r] = d;
      if (group == 32) {
        xs[(k0 / 32) * kL + r] = d * static_cast<float>(half[0] + half[1]);
      } else {
        xs[(k0 / 16) * kL + r] = d * static_cast<float>(half[0]);
        xs[(k0 / 16 + 1) * kL + r] = d * static_cast<float>(half[1]);
      }
    }
  }
}

// A panel of NR weight rows: q [NR][k], scale/bias/corr [NR][k / G].
struct WPanel {
  const int8_t* q;
  const int8_t* qabs;  // |q| as unsigned bytes (emulated wide codes only; else q)
  const float* scale;
  const float* bias;
  const int32_t* corr;
};

// corr[g] = -128 * (sum of the codes of group g) for the k codes of one row (G = 16 or 32, k a
// multiple of G). vpsadbw sums 8 bytes per qword; the codes are signed, so they are biased by
// 128 first (xor 0x80) and 8 * 128 taken off each qword sum. The G / 8 qwords of a group are
// then added in int64 lanes and narrowed: 64 / G sums per 64 codes.
#if defined(EIGHT_ISA_avx512)
template <int G>
void corr_sums(const int8_t* q, int64_t k, int32_t* corr) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i off = _mm512_set1_epi64(-1024 * (G / 8));
  const __m512i odd = _mm512_setr_epi64(1, 0, 3, 2, 5, 4, 7, 6);
  const __m512i pair = _mm512_setr_epi64(2, 3, 0, 1, 6, 7, 4, 5);
  int64_t c = 0;
  for (; c + 64 <= k; c += 64, corr += 64 / G) {
    __m512i s =
        _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(q + c), flip), _mm512_setzero_si512());
    s = _mm512_add_epi64(s, _mm512_permutexvar_epi64(odd, s));  // lanes 2i, 2i+1: group of 16
    if constexpr (G == 32) s = _mm512_add_epi64(s, _mm512_permutexvar_epi64(pair, s));
    s = _mm512_mullo_epi64(_mm512_add_epi64(s, off), _mm512_set1_epi64(-128));
    alignas(64) int64_t t[8];
    _mm512_store_si512(t, s);
    for (int g = 0; g < 64 / G; ++g) corr[g] = static_cast<int32_t>(t[g * (G / 8)]);
  }
  for (; c < k; c += G, ++corr) {  // a last group when k is not a multiple of 64
    int sum = 0;
    for (int e = 0; e < G; ++e) sum += q[c + e];
    *corr = -128 * sum;
  }
}
#else
// The same with ymm (avx2vnni, and avx2 for the types with codes within +-32).
template <int G>
void corr_sums(const int8_t* q, int64_t k, int32_t* corr) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  int64_t c = 0;
  for (; c + 32 <= k; c += 32, corr += 32 / G) {
    const __m256i v = _mm256_xor_si256(iload(q + c), flip);
    alignas(32) int64_t t[4];  // sums of 8 biased codes
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_sad_epu8(v, _mm256_setzero_si256()));
    if constexpr (G == 32) {
      corr[0] = static_cast<int32_t>(-128 * (t[0] + t[1] + t[2] + t[3] - 32 * 128));
    } else {
      corr[0] = static_cast<int32_t>(-128 * (t[0] + t[1] - 16 * 128));
      corr[1] = static_cast<int32_t>(-128 * (t[2] + t[3] - 16 * 128));
    }
  }
  for (; c < k; c += G, ++corr) {  // a last group of 16 when k is not a multiple of 32
    int sum = 0;
    for (int e = 0; e < G; ++e) sum += q[c + e];
    *corr = -128 * sum;
  }
}
#endif

template <int NR>
void unpack_panel(const MatmulProblem& p, int64_t j0, int group, int8_t* q, float* scale,
                  float* bias, int32_t* corr) {
  const int64_t k = p.k, ng = k / group;
  for (int r = 0; r < NR; ++r) {
    int8_t* qr = q + r * k;
    if (j0 + r < p.n) {
      unpack_row_fast(p.w_type, static_cast<const char*>(p.w) + (j0 + r) * p.ldw, k, qr,
                      scale + r * ng, bias + r * ng);
    } else {
      std::fill_n(qr, k, 0);
      std::fill_n(scale + r * ng, ng, 0.f);
      std::fill_n(bias + r * ng, ng, 0.f);
    }
    if (kEmulated && wide_codes(p.w_type)) {  // x taken signed: no offset to undo
      std::fill_n(corr + r * ng, ng, 0);
      for (int64_t c = 0; c < k; c += 32)  // k is a multiple of 32 (all wide types)
        _mm256_storeu_si256(
            reinterpret_cast<__m256i*>(q + NR * k + r * k + c),
            _mm256_abs_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qr + c))));
    } else if (group == 16)
      corr_sums<16>(qr, k, corr + r * ng);
    else
      corr_sums<32>(qr, k, corr + r * ng);
  }
}

inline VI bcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return iset1(v);
}

// out[r][kL * MB] = x rows of m-blocks mb0.. times weight rows of the panel (G = 32).
template <int G, int NR, int MB, bool kBias, bool kSigned>
void tile(const XPack& xp, int64_t mb0, const WPanel& wp, int64_t k, float* out) {
  const int64_t ng = k / G;
  const uint8_t* xq[MB];
  const float* dx[MB];
  for (int b = 0; b < MB; ++b) {
    xq[b] = xp.q + (mb0 + b) * xp.k4 * 4 * kL;
    dx[b] = xp.dx + (mb0 + b) * xp.nxb * kL;
  }
  VF facc[MB][NR];
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) facc[b][r] = fzero();
  for (int64_t g = 0; g < ng; ++g) {
    VI iacc[MB][NR];
    for (int r = 0; r < NR; ++r) {
      const VI c = iset1(wp.corr[r * ng + g]);
      for (int b = 0; b < MB; ++b) iacc[b][r] = c;
    }
    for (int s = 0; s < G / 4; s += 2) {
      const int64_t k4 = g * (G / 4) + s;
      VI x0[MB], x1[MB];
      for (int b = 0; b < MB; ++b) {
        x0[b] = xload<kSigned>(xq[b] + k4 * 4 * kL);
        x1[b] = xload<kSigned>(xq[b] + (k4 + 1) * 4 * kL);
      }
      for (int r = 0; r < NR; ++r) {
        const VI w0 = bcast32(wp.q + r * k + k4 * 4), w1 = bcast32(wp.q + r * k + k4 * 4 + 4);
        VI a0 = w0, a1 = w1;
        if constexpr (kSigned) {
          a0 = bcast32(wp.qabs + r * k + k4 * 4);
          a1 = bcast32(wp.qabs + r * k + k4 * 4 + 4);
        }
        for (int b = 0; b < MB; ++b)
          iacc[b][r] = dot8<kSigned>(iacc[b][r], x0[b], x1[b], w0, w1, a0, a1);
      }
    }
    // The group's x block (G divides kXBlock).
    const int64_t xb = g * G / kXBlock;
    VF d[MB];
    for (int b = 0; b < MB; ++b) d[b] = fload(dx[b] + xb * kL);
    for (int r = 0; r < NR; ++r) {
      const VF sc = fset1(wp.scale[r * ng + g]);
      for (int b = 0; b < MB; ++b) facc[b][r] = fmadd(fmul(cvt(iacc[b][r]), d[b]), sc, facc[b][r]);
    }
    if constexpr (kBias) {
      for (int b = 0; b < MB; ++b) {
        const VF xs = fload(xp.xs + ((mb0 + b) * xp.ng + g) * kL);
        for (int r = 0; r < NR; ++r) facc[b][r] = fmadd(xs, fset1(wp.bias[r * ng + g]), facc[b][r]);
      }
    }
  }
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) fstore(out + (r * MB + b) * kL, facc[b][r]);
}

// 16-value groups (Q2_K, Q3_K, Q6_K): the two groups of an x block share dx, so their int32 sums
// are scaled and added first and dx is applied once per block (3 float ops per 32 values and tile
// register instead of the 4 of tile<16>). That needs a third set of accumulators, hence panels of
// 4 weight rows: measured 1-10 % faster than tile<16> with 6 rows, and level with the old
// 256-blocks at 128 rows (-2 % to +1 %), 2-9 % faster at 16.
template <int NR, int MB, bool kBias>
void tile_g16(const XPack& xp, int64_t mb0, const WPanel& wp, int64_t k, float* out) {
  const int64_t ng = k / 16;
  const uint8_t* xq[MB];
  const float* dx[MB];
  for (int b = 0; b < MB; ++b) {
    xq[b] = xp.q + (mb0 + b) * xp.k4 * 4 * kL;
    dx[b] = xp.dx + (mb0 + b) * xp.nxb * kL;
  }
  VF facc[MB][NR];
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) facc[b][r] = fzero();
  for (int64_t xb = 0; xb < xp.nxb; ++xb) {
    VF fblk[MB][NR];
    for (int h = 0; h < 2; ++h) {
      const int64_t g = 2 * xb + h;
      VI iacc[MB][NR];
      for (int r = 0; r < NR; ++r) {
        const VI c = iset1(wp.corr[r * ng + g]);
        for (int b = 0; b < MB; ++b) iacc[b][r] = c;
      }
      for (int s = 0; s < 4; s += 2) {
        const int64_t k4 = g * 4 + s;
        VI x0[MB], x1[MB];
        for (int b = 0; b < MB; ++b) {
          x0[b] = iload(xq[b] + k4 * 4 * kL);
          x1[b] = iload(xq[b] + (k4 + 1) * 4 * kL);
        }
        for (int r = 0; r < NR; ++r) {
          const VI w0 = bcast32(wp.q + r * k + k4 * 4), w1 = bcast32(wp.q + r * k + k4 * 4 + 4);
          for (int b = 0; b < MB; ++b)
            iacc[b][r] = dot8<false>(iacc[b][r], x0[b], x1[b], w0, w1, w0, w1);
        }
      }
      for (int r = 0; r < NR; ++r) {
        const VF sc = fset1(wp.scale[r * ng + g]);
        for (int b = 0; b < MB; ++b)
          fblk[b][r] = h == 0 ? fmul(cvt(iacc[b][r]), sc) : fmadd(cvt(iacc[b][r]), sc, fblk[b][r]);
      }
      if constexpr (kBias) {  // xs has dx in it already
        for (int b = 0; b < MB; ++b) {
          const VF xs = fload(xp.xs + ((mb0 + b) * xp.ng + g) * kL);
          for (int r = 0; r < NR; ++r)
            facc[b][r] = fmadd(xs, fset1(wp.bias[r * ng + g]), facc[b][r]);
        }
      }
    }
    for (int b = 0; b < MB; ++b) {
      const VF d = fload(dx[b] + xb * kL);
      for (int r = 0; r < NR; ++r) facc[b][r] = fmadd(fblk[b][r], d, facc[b][r]);
    }
  }
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) fstore(out + (r * MB + b) * kL, facc[b][r]);
}

using TileFn = void (*)(const XPack&, int64_t, const WPanel&, int64_t, float*);

// The tile for nb (1 or kMaxMB) x blocks.
template <int G, int NR, bool kBias, bool kSigned = false>
TileFn tile_fn(int nb) {
  if constexpr (kMaxMB == 2)
    return nb == 2 ? tile<G, NR, 2, kBias, kSigned> : tile<G, NR, 1, kBias, kSigned>;
  return tile<G, NR, 1, kBias, kSigned>;
}
template <int NR, bool kBias>
TileFn tile_g16_fn(int nb) {
  if constexpr (kMaxMB == 2) return nb == 2 ? tile_g16<NR, 2, kBias> : tile_g16<NR, 1, kBias>;
  return tile_g16<NR, 1, kBias>;
}

// Every (panel of NR weight rows, chunk of x rows) task: unpack the panel, run the tiles.
template <int NR>
void run_panels(const MatmulProblem& p, ThreadPool& pool, const XPack& xp, int G, TileFn tile2,
                TileFn tile1) {
  const int64_t k = p.k, ng = k / G, mblocks = (p.m + kL - 1) / kL;
  const int64_t n_panels = (p.n + NR - 1) / NR;
  const int64_t mb_per_chunk = kMC / kL;
  const int64_t m_chunks = (mblocks + mb_per_chunk - 1) / mb_per_chunk;
  pool.parallel_for(n_panels * m_chunks, [&](int64_t task, int) {
    const int64_t panel = task % n_panels, chunk = task / n_panels;
    const int64_t j0 = panel * NR;
    const size_t wq_bytes = static_cast<size_t>(NR * k) * (kEmulated ? 2 : 1);  // q, |q|
    const size_t wf_bytes = static_cast<size_t>(NR * ng) * 4;
    auto* wbase = static_cast<uint8_t*>(thread_scratch(0, wq_bytes + 3 * wf_bytes + 256));
    auto* wq = reinterpret_cast<int8_t*>(wbase);
    auto* scale = reinterpret_cast<float*>(wbase + ((wq_bytes + 63) / 64) * 64);
    auto* bias = scale + NR * ng;
    auto* corr = reinterpret_cast<int32_t*>(bias + NR * ng);
    unpack_panel<NR>(p, j0, G, wq, scale, bias, corr);
    const WPanel wp{wq, kEmulated ? wq + NR * k : wq, scale, bias, corr};
    alignas(64) float out[NR * kL * kMaxMB];
    const int64_t mb_end = std::min(mblocks, (chunk + 1) * mb_per_chunk);
    for (int64_t mb = chunk * mb_per_chunk; mb < mb_end; mb += kMaxMB) {
      const int nb = mb + kMaxMB <= mb_end ? kMaxMB : 1;
      (nb == 1 ? tile1 : tile2)(xp, mb, wp, k, out);
      for (int b = 0; b < nb; ++b)
        for (int lane = 0; lane < kL; ++lane) {
          const int64_t i = (mb + b) * kL + lane;
          if (i >= p.m) break;
          float* y = p.y + i * p.ldy + j0;
          for (int r = 0; r < NR && j0 + r < p.n; ++r)
            y[r] = out[(r * nb + b) * kL + lane] + (p.bias ? p.bias[j0 + r] : 0.f);
        }
    }
  });
}

void matmul_batched(const MatmulProblem& p, ThreadPool& pool) {
  const GroupFormat gf = group_format(p.w_type);
  const int G = gf.group;
  const int64_t k = p.k, k4 = k / 4, nxb = k / kXBlock, ng = k / G;
  const int64_t mblocks = (p.m + kL - 1) / kL;
  // x pack, shared by all tasks (calling thread's scratch).
  const size_t q_bytes = static_cast<size_t>(mblocks * k4 * 4 * kL);
  const size_t dx_bytes = static_cast<size_t>(mblocks * nxb * kL) * sizeof(float);
  const size_t xs_bytes = static_cast<size_t>(mblocks * ng * kL) * sizeof(float);
  auto* base = static_cast<uint8_t*>(thread_scratch(2, q_bytes + dx_bytes + xs_bytes + 128));
  auto* xq = base;
  auto* dx = reinterpret_cast<float*>(base + ((q_bytes + 63) / 64) * 64);
  auto* xs = dx + mblocks * nxb * kL;
  pool.parallel_for(mblocks, [&](int64_t mb, int) {
    pack_x_block(p, mb, G, xq + mb * k4 * 4 * kL, dx + mb * nxb * kL, xs + mb * ng * kL);
  });
  const XPack xp{xq, dx, xs, k4, nxb, ng};

  switch (G * 2 + (gf.has_bias ? 1 : 0)) {
    case 64:
      if (kEmulated && wide_codes(p.w_type))
        run_panels<kNR32>(p, pool, xp, G, tile_fn<32, kNR32, false, true>(kMaxMB),
                          tile_fn<32, kNR32, false, true>(1));
      else
        run_panels<kNR32>(p, pool, xp, G, tile_fn<32, kNR32, false>(kMaxMB),
                          tile_fn<32, kNR32, false>(1));
      break;
    case 65:
      run_panels<kNR32>(p, pool, xp, G, tile_fn<32, kNR32, true>(kMaxMB),
                        tile_fn<32, kNR32, true>(1));
      break;
    case 32:
      run_panels<kNR16>(p, pool, xp, G, tile_g16_fn<kNR16, false>(kMaxMB),
                        tile_g16_fn<kNR16, false>(1));
      break;
    default:
      run_panels<kNR16>(p, pool, xp, G, tile_g16_fn<kNR16, true>(kMaxMB),
                        tile_g16_fn<kNR16, true>(1));
      break;
  }
}

}  // namespace

bool matmul_q8_supports(const MatmulProblem& p) {
  switch (p.w_type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:  // expanded to f32 a row at a time (matmul_float)
    case DType::F8_E5M2:
      return false;
    default:
      return true;
  }
}

void matmul_q8(const MatmulProblem& p, ThreadPool& pool) {
  // Types without a fused decode kernel take the batched path even for one row: it pads x to 16
  // rows but its SIMD unpacking still beats expanding the weights to float (measured ~10x).
  if (p.m <= kMatvecMaxRows && matvec_q8_supports(p.w_type))
    matvec_q8(p, pool);
  else
    matmul_batched(p, pool);
}

#endif

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
