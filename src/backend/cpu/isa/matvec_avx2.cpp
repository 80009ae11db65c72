// Decode kernels for AVX2 machines without AVX-512 (most consumer CPUs): x rows are quantized to
// int8 per block, and each weight block is multiplied in integers with vpmaddubsw (unsigned codes
// times signed x, pairs summed to int16) and vpmaddwd (pairs to int32, times the group scale).
// Q4_0, Q8_0, Q4_K, Q5_K and Q6_K have fused kernels that decode blocks in registers; every other
// quantized type is unpacked a row at a time to int8 codes with per-group scale and bias
// (isa/unpack.h) and runs through one generic kernel. Only the AVX2 copy has code.
#include "backend/cpu/isa/matvec_q8.h"

#if defined(EIGHT_ISA_avx2)
#include "backend/cpu/isa/intrin.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/isa/unpack.h"
#include "backend/cpu/isa/unpack_simd.h"
#include "backend/cpu/scratch.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

using namespace eight::quant;

// One x row quantized to int8 in blocks of `block` (32 or 256) with d = amax / 127, plus the sums
// of q over each 16 and 32 elements times d (the bias / offset terms need them).
struct XQ {
  const int8_t* q;
  const float* d;     // [k / block]
  const float* s16d;  // [k / 16]
  const float* s32d;  // [k / 32]
};

inline float hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

inline int hsum8i(__m256i a) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(_mm_hadd_epi32(s, s));
}

void quantize_x(const float* x, int64_t k, int block, int8_t* q, float* d, float* s16d,
                float* s32d) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / block; ++b) {
    const float* xb = x + b * block;
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < block; j += 8)
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float m = std::max(_mm_cvtss_f32(m4), _mm_cvtss_f32(_mm_shuffle_ps(m4, m4, 1)));
    const float db = m / 127.f;
    d[b] = db;
    const __m256 id = _mm256_set1_ps(m > 0 ? 127.f / m : 0.f);
    for (int j = 0; j < block; j += 16) {
      const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j), id));
      const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 8), id));
      // int32 -> int16 -> int8 (packs work within 128-bit lanes: fix the order after)
      const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, c), 0xD8);
      const __m128i w8 =
          _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * block + j), w8);
      s16d[(b * block + j) / 16] = static_cast<float>(hsum8i(_mm256_add_epi32(a, c))) * db;
    }
  }
  for (int64_t g = 0; g < k / 32; ++g) s32d[g] = s16d[2 * g] + s16d[2 * g + 1];
}

inline __m256i xload(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 32 unsigned codes (< 128) times 32 x values, times an int16 scale per half: 8 int32 lanes.
inline __m256i udot(__m256i codes, const int8_t* x, __m256i scale16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, xload(x)), scale16);
}

float dot_q4_0(const void* wrow, const XQ& x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_0*>(wrow);
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  float corr = 0;  // the codes are stored +8
  for (int64_t b = 0; b < nb; ++b) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    const __m256i codes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
    const float dw = fp16_to_fp32(w[b].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(codes, x.q + 32 * b, ones)),
                          _mm256_set1_ps(dw * x.d[b]), acc);
    corr += dw * x.s32d[b];
  }
  return hsum8(acc) - 8.f * corr;
}

float dot_q8_0(const void* wrow, const XQ& x, int64_t nb) {
  const auto* w = static_cast<const BlockQ8_0*>(wrow);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i wv = xload(w[b].qs);
    const __m256i p =
        _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xload(x.q + 32 * b), wv));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)),
                          _mm256_set1_ps(fp16_to_fp32(w[b].d) * x.d[b]), acc);
  }
  return hsum8(acc);
}

// Q4_K / Q5_K: 8 groups of 32 with 6-bit scales and mins.
template <bool kQ5>
float dot_q45_k(const void* wrow, const XQ& x, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), bit = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* qs;
    const uint8_t* scales;
    uint16_t dh, dminh;
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kQ5) {
      const auto& b = static_cast<const BlockQ5_K*>(wrow)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
      hb = xload(reinterpret_cast<const int8_t*>(b.qh));
    } else {
      const auto& b = static_cast<const BlockQ4_K*>(wrow)[i];
      qs = b.qs, scales = b.scales, dh = b.d, dminh = b.dmin;
    }
    int sc[8], mn[8];
    for (int j = 0; j < 8; ++j) unpack_detail::scale_min_k4(j, scales, &sc[j], &mn[j]);
    const int8_t* xq = x.q + 256 * i;
    __m256i isum = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i v = xload(reinterpret_cast<const int8_t*>(qs + 32 * p));
      __m256i lo = _mm256_and_si256(v, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if constexpr (kQ5) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, bit), 4));
        hi = _mm256_or_si256(hi,
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), bit), 4));
        hb = _mm256_srli_epi16(hb, 2);
      }
      isum = _mm256_add_epi32(isum, udot(lo, xq + 64 * p, _mm256_set1_epi16(sc[2 * p])));
      isum = _mm256_add_epi32(isum, udot(hi, xq + 64 * p + 32, _mm256_set1_epi16(sc[2 * p + 1])));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(fp16_to_fp32(dh) * x.d[i]), acc);
    const __m256 mf = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mn)));
    accm = _mm256_fmadd_ps(_mm256_mul_ps(mf, _mm256_set1_ps(fp16_to_fp32(dminh))),
                           _mm256_loadu_ps(x.s32d + 8 * i), accm);
  }
  return hsum8(acc) - hsum8(accm);
}

// Q6_K: 16 groups of 16 with signed 8-bit scales; codes stored +32.
float dot_q6_k(const void* wrow, const XQ& x, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
  __m256 acc = _mm256_setzero_ps(), accc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const auto& b = static_cast<const BlockQ6_K*>(wrow)[i];
    const int8_t* xq = x.q + 256 * i;
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = xload(reinterpret_cast<const int8_t*>(b.ql + 64 * h));
      const __m256i l1 = xload(reinterpret_cast<const int8_t*>(b.ql + 64 * h + 32));
      const __m256i qh = xload(reinterpret_cast<const int8_t*>(b.qh + 32 * h));
      for (int t = 0; t < 4; ++t) {
        const __m256i l = (t % 2) ? l1 : l0;
        const __m256i nib =
            t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * t)), m3);
        const __m256i codes = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
        const int g = 8 * h + 2 * t;  // groups g (elements 0-15) and g + 1 (16-31)
        const __m256i scale =
            _mm256_set_m128i(_mm_set1_epi16(b.scales[g + 1]), _mm_set1_epi16(b.scales[g]));
        isum = _mm256_add_epi32(isum, udot(codes, xq + 128 * h + 32 * t, scale));
      }
    }
    const float d = fp16_to_fp32(b.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * x.d[i]), acc);
    // - 32 d sum_g scale_g (dx sum of x over g)
    for (int half = 0; half < 2; ++half) {
      const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 8 * half))));
      accc = _mm256_fmadd_ps(_mm256_mul_ps(sc, _mm256_set1_ps(d)),
                             _mm256_loadu_ps(x.s16d + 16 * i + 8 * half), accc);
    }
  }
  return hsum8(acc) - 32.f * hsum8(accc);
}

// Any other type: the row unpacked to signed codes q with a scale and bias per group of G (16 or
// 32), taken 32 codes at a time (one or two groups).
float dot_unpacked(const int8_t* q, const float* scale, const float* bias, int group, bool has_bias,
                   const XQ& x, int block, int64_t k) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i halves = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  __m256 acc = _mm256_setzero_ps();
  // Per x block: the group scales without dx, then dx once for the block.
  for (int64_t c0 = 0; c0 < k / 32; c0 += block / 32) {
    __m256 blk = _mm256_setzero_ps();
    for (int64_t c = c0; c < c0 + block / 32; ++c) {
      const __m256i w = xload(q + 32 * c);
      const __m256i s = _mm256_madd_epi16(
          _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xload(x.q + 32 * c), w)),
          ones);
      // group 16: scale 2c for the low 4 lanes (the first 16 codes), 2c + 1 for the high ones
      const __m256 sv = group == 32 ? _mm256_broadcast_ss(scale + c)
                                    : _mm256_permutevar8x32_ps(
                                          _mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd(
                                              reinterpret_cast<const double*>(scale + 2 * c)))),
                                          halves);
      blk = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sv, blk);
    }
    acc = _mm256_fmadd_ps(blk, _mm256_set1_ps(x.d[c0 * 32 / block]), acc);
  }
  if (has_bias) {  // sum_g bias_g * (dx * sum of x over g), 8 groups at a time
    const float* sums = group == 16 ? x.s16d : x.s32d;
    const int64_t ng = k / group;
    int64_t g = 0;
    for (; g + 8 <= ng; g += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(bias + g), _mm256_loadu_ps(sums + g), acc);
    float b = 0;
    for (; g < ng; ++g) b += bias[g] * sums[g];
    return hsum8(acc) + b;
  }
  return hsum8(acc);
}

using DotFn = float (*)(const void* wrow, const XQ& x, int64_t nb);

DotFn dot_fn(DType t) {
  switch (t) {
    case DType::Q4_0:
      return dot_q4_0;
    case DType::Q8_0:
      return dot_q8_0;
    case DType::Q4_K:
      return dot_q45_k<false>;
    case DType::Q5_K:
      return dot_q45_k<true>;
    case DType::Q6_K:
      return dot_q6_k;
    default:
      return nullptr;
  }
}

constexpr int64_t kMinRowsPerClaim = 16;  // weight rows per claim of the guided loop (at least)

}  // namespace

bool matvec_q8_supports(DType t) {
  return t != DType::F32 && t != DType::F16 && t != DType::BF16 && unpack_block_fn(t) != nullptr;
}

void matvec_q8(const MatmulProblem& p, ThreadPool& pool) {
  const DotFn dot = dot_fn(p.w_type);
  const int block = dtype_block_size(p.w_type) == 256 ? 256 : 32;
  const int64_t k = p.k, nb = k / dtype_block_size(p.w_type);
  const size_t per_row =
      static_cast<size_t>(k) + (k / block + 2 * (k / 16) + 2 * (k / 32)) * 4 + 256;
  auto* base = static_cast<uint8_t*>(thread_scratch(3, per_row * static_cast<size_t>(p.m)));
  XQ xs[kMatvecMaxRows];
  for (int64_t i = 0; i < p.m; ++i) {
    uint8_t* r = base + i * per_row;
    auto* q = reinterpret_cast<int8_t*>(r);
    auto* d = reinterpret_cast<float*>(r + ((k + 63) / 64) * 64);
    float* s16d = d + k / block;
    float* s32d = s16d + k / 16;
    quantize_x(p.x + i * p.ldx, k, block, q, d, s16d, s32d);
    xs[i] = {q, d, s16d, s32d};
  }
  pool.parallel_chunks(p.n, kMinRowsPerClaim, [&](int64_t j0, int64_t j1, int) {
    int8_t* uq = nullptr;
    float *us = nullptr, *ub = nullptr;
    const int group = group_format(p.w_type).group;
    const bool has_bias = group_format(p.w_type).has_bias;
    if (!dot) {  // generic: one unpacked weight row per task
      auto* t = static_cast<uint8_t*>(
          thread_scratch(0, static_cast<size_t>(k) + 2 * static_cast<size_t>(k / 16) * 4 + 256));
      uq = reinterpret_cast<int8_t*>(t);
      us = reinterpret_cast<float*>(t + ((k + 63) / 64) * 64);
      ub = us + k / group;
    }
    for (int64_t j = j0; j < j1; ++j) {
      const void* w = static_cast<const char*>(p.w) + j * p.ldw;
      const float b = p.bias ? p.bias[j] : 0.f;
      if (!dot && !unpack_row_simd(p.w_type, w, k, uq, us, ub))
        unpack_row(p.w_type, w, k, uq, us, ub);
      for (int64_t i = 0; i < p.m; ++i)
        p.y[i * p.ldy + j] =
            (dot ? dot(w, xs[i], nb) : dot_unpacked(uq, us, ub, group, has_bias, xs[i], block, k)) +
            b;
    }
  });
}

void unpack_row_fast(DType t, const void* src, int64_t k, int8_t* q, float* scale, float* bias) {
  if (!unpack_row_simd(t, src, k, q, scale, bias)) unpack_row(t, src, k, q, scale, bias);
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#endif
