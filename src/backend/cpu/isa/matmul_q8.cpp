// Batched int8 matmul (many x rows): the prompt-processing path.
//
// x is quantized per row in blocks of 32 (dx = amax / 127) and stored as unsigned bytes (q + 128),
// interleaved for vpdpbusd: [m / 16][k / 4][16 rows][4]. A panel of NR weight rows is unpacked
// once per task into int8 codes plus per-group scale and bias (isa/unpack.h), then a register
// tile of 16 * MB x rows times NR weight rows accumulates
//   sum_k q_w * (q_x + 128)            (vpdpbusd, started at -128 * sum q_w to undo the offset)
// per group in int32 and folds it into float with dx of its x block times the group's scale (and
// the bias times the group's x sum, dx included). 32-value groups: tile(), 6 weight rows, one
// multiply and one fma per group; 16-value groups (Q2_K, Q3_K, Q6_K): tile_g16(), 4 weight rows,
// the two groups of an x block summed before one dx fma.
//
// Why blocks of 32: real models have outlier activations (a few channels 10-100x the rest), and
// one scale per 256 values left the other 255 with a few int8 levels. On SmolLM2-135M Q4_1 the
// prompt logits went from NMSE 1.3e-3-4.6e-3 against float64 math to 2.6e-4-7.0e-4, the one-token
// path's level (docs/kernels.md). The extra float work did not slow the 16- and 128-row
// benchmarks: the tiles keep their accumulators in registers over all of k (no per-256 update of
// the tile in memory), which paid for it.
#include "backend/cpu/isa/matmul_q8.h"

#if defined(EIGHT_ISA_avx2)
#include "backend/cpu/isa/matvec_q8.h"
#endif

#if defined(EIGHT_ISA_avx512)
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

#if defined(EIGHT_ISA_avx2)

// AVX2: the int8 decode kernels for a few x rows; larger batches take the float path.
bool matmul_q8_supports(const MatmulProblem& p) {
  return p.m <= kMatvecMaxRows && matvec_q8_supports(p.w_type);
}
void matmul_q8(const MatmulProblem& p, ThreadPool& pool) {
  matvec_q8(p, pool);
}

#elif !defined(EIGHT_ISA_avx512)

bool matmul_q8_supports(const MatmulProblem&) {
  return false;
}
void matmul_q8(const MatmulProblem&, ThreadPool&) {}

#else

namespace {

constexpr int kNR = 6;        // weight rows per register tile (32-value groups)
constexpr int kXBlock = 32;   // x quantization block (one dx per 32 values)
constexpr int64_t kMC = 128;  // x rows per task (the x chunk stays in L2)

// x quantized for the tile kernel; pointers into per-call scratch.
struct XPack {
  const uint8_t* q;  // [mblocks][k / 4][64]
  const float* dx;   // [mblocks][nxb][16]
  const float* xs;   // [mblocks][k / G][16]: dx times the sum of q over each group of G
  int64_t k4, nxb, ng;
};

// Quantizes x rows [16 * mb, 16 * mb + 16) (rows past m are zero). k is a multiple of kXBlock
// (every quantized type's block is 32 or 256) and group (16 or 32) divides kXBlock.
void pack_x_block(const MatmulProblem& p, int64_t mb, int group, uint8_t* q, float* dx, float* xs) {
  static_assert(kXBlock == 32, "one x block is two zmm of floats");
  const int64_t nxb = p.k / kXBlock;
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));  // int8 q -> uint8 q + 128
  for (int r = 0; r < 16; ++r) {
    const int64_t i = mb * 16 + r;
    const float* x = i < p.m ? p.x + i * p.ldx : nullptr;
    for (int64_t b = 0; b < nxb; ++b) {
      const int64_t k0 = b * kXBlock;
      uint8_t* qb = q + (k0 / 4) * 64 + r * 4;  // 4 values every 64 bytes
      if (!x) {
        dx[b * 16 + r] = 0;
        for (int j = 0; j < kXBlock / 4; ++j) std::memset(qb + j * 64, 128, 4);
        for (int g = 0; g < kXBlock / group; ++g) xs[(k0 / group + g) * 16 + r] = 0;
        continue;
      }
      const __m512 v0 = _mm512_loadu_ps(x + k0), v1 = _mm512_loadu_ps(x + k0 + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
      const float d = amax / 127.f;
      const __m512 id = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
      // round to nearest even (the default MXCSR mode, as std::nearbyint)
      const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
      const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
      alignas(16) uint8_t bytes[kXBlock];
      _mm_store_si128(reinterpret_cast<__m128i*>(bytes),
                      _mm_xor_si128(_mm512_cvtepi32_epi8(i0), flip));
      _mm_store_si128(reinterpret_cast<__m128i*>(bytes + 16),
                      _mm_xor_si128(_mm512_cvtepi32_epi8(i1), flip));
      for (int j = 0; j < kXBlock / 4; ++j) std::memcpy(qb + j * 64, bytes + 4 * j, 4);
      dx[b * 16 + r] = d;
      if (group == 32) {
        xs[(k0 / 32) * 16 + r] =
            d * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1)));
      } else {
        xs[(k0 / 16) * 16 + r] = d * static_cast<float>(_mm512_reduce_add_epi32(i0));
        xs[(k0 / 16 + 1) * 16 + r] = d * static_cast<float>(_mm512_reduce_add_epi32(i1));
      }
    }
  }
}

// A panel of NR weight rows: q [NR][k], scale/bias/corr [NR][k / G].
struct WPanel {
  const int8_t* q;
  const float* scale;
  const float* bias;
  const int32_t* corr;
};

// corr[g] = -128 * (sum of the codes of group g) for the k codes of one row (G = 16 or 32, k a
// multiple of G). vpsadbw sums 8 bytes per qword; the codes are signed, so they are biased by
// 128 first (xor 0x80) and 8 * 128 taken off each qword sum. The G / 8 qwords of a group are
// then added in int64 lanes and narrowed: 64 / G sums per 64 codes.
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
    if (group == 16)
      corr_sums<16>(qr, k, corr + r * ng);
    else
      corr_sums<32>(qr, k, corr + r * ng);
  }
}

inline __m512i bcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// out[r][16 * MB] = x rows of m-blocks mb0.. times weight rows of the panel (G = 32).
template <int G, int NR, int MB, bool kBias>
void tile(const XPack& xp, int64_t mb0, const WPanel& wp, int64_t k, float* out) {
  const int64_t ng = k / G;
  const uint8_t* xq[MB];
  const float* dx[MB];
  for (int b = 0; b < MB; ++b) {
    xq[b] = xp.q + (mb0 + b) * xp.k4 * 64;
    dx[b] = xp.dx + (mb0 + b) * xp.nxb * 16;
  }
  __m512 facc[MB][NR];
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) facc[b][r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    __m512i iacc[MB][NR];
    for (int r = 0; r < NR; ++r) {
      const __m512i c = _mm512_set1_epi32(wp.corr[r * ng + g]);
      for (int b = 0; b < MB; ++b) iacc[b][r] = c;
    }
    for (int s = 0; s < G / 4; ++s) {
      const int64_t k4 = g * (G / 4) + s;
      __m512i xv[MB];
      for (int b = 0; b < MB; ++b) xv[b] = _mm512_loadu_si512(xq[b] + k4 * 64);
      for (int r = 0; r < NR; ++r) {
        const __m512i w = bcast32(wp.q + r * k + k4 * 4);
        for (int b = 0; b < MB; ++b) iacc[b][r] = _mm512_dpbusd_epi32(iacc[b][r], xv[b], w);
      }
    }
    // The group's x block (G divides kXBlock).
    const int64_t xb = g * G / kXBlock;
    __m512 d[MB];
    for (int b = 0; b < MB; ++b) d[b] = _mm512_loadu_ps(dx[b] + xb * 16);
    for (int r = 0; r < NR; ++r) {
      const __m512 sc = _mm512_set1_ps(wp.scale[r * ng + g]);
      for (int b = 0; b < MB; ++b)
        facc[b][r] =
            _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(iacc[b][r]), d[b]), sc, facc[b][r]);
    }
    if constexpr (kBias) {
      for (int b = 0; b < MB; ++b) {
        const __m512 xs = _mm512_loadu_ps(xp.xs + ((mb0 + b) * xp.ng + g) * 16);
        for (int r = 0; r < NR; ++r)
          facc[b][r] = _mm512_fmadd_ps(xs, _mm512_set1_ps(wp.bias[r * ng + g]), facc[b][r]);
      }
    }
  }
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) _mm512_storeu_ps(out + (r * MB + b) * 16, facc[b][r]);
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
    xq[b] = xp.q + (mb0 + b) * xp.k4 * 64;
    dx[b] = xp.dx + (mb0 + b) * xp.nxb * 16;
  }
  __m512 facc[MB][NR];
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) facc[b][r] = _mm512_setzero_ps();
  for (int64_t xb = 0; xb < xp.nxb; ++xb) {
    __m512 fblk[MB][NR];
    for (int h = 0; h < 2; ++h) {
      const int64_t g = 2 * xb + h;
      __m512i iacc[MB][NR];
      for (int r = 0; r < NR; ++r) {
        const __m512i c = _mm512_set1_epi32(wp.corr[r * ng + g]);
        for (int b = 0; b < MB; ++b) iacc[b][r] = c;
      }
      for (int s = 0; s < 4; ++s) {
        const int64_t k4 = g * 4 + s;
        __m512i xv[MB];
        for (int b = 0; b < MB; ++b) xv[b] = _mm512_loadu_si512(xq[b] + k4 * 64);
        for (int r = 0; r < NR; ++r) {
          const __m512i w = bcast32(wp.q + r * k + k4 * 4);
          for (int b = 0; b < MB; ++b) iacc[b][r] = _mm512_dpbusd_epi32(iacc[b][r], xv[b], w);
        }
      }
      for (int r = 0; r < NR; ++r) {
        const __m512 sc = _mm512_set1_ps(wp.scale[r * ng + g]);
        for (int b = 0; b < MB; ++b)
          fblk[b][r] = h == 0 ? _mm512_mul_ps(_mm512_cvtepi32_ps(iacc[b][r]), sc)
                              : _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[b][r]), sc, fblk[b][r]);
      }
      if constexpr (kBias) {  // xs has dx in it already
        for (int b = 0; b < MB; ++b) {
          const __m512 xs = _mm512_loadu_ps(xp.xs + ((mb0 + b) * xp.ng + g) * 16);
          for (int r = 0; r < NR; ++r)
            facc[b][r] = _mm512_fmadd_ps(xs, _mm512_set1_ps(wp.bias[r * ng + g]), facc[b][r]);
        }
      }
    }
    for (int b = 0; b < MB; ++b) {
      const __m512 d = _mm512_loadu_ps(dx[b] + xb * 16);
      for (int r = 0; r < NR; ++r) facc[b][r] = _mm512_fmadd_ps(fblk[b][r], d, facc[b][r]);
    }
  }
  for (int b = 0; b < MB; ++b)
    for (int r = 0; r < NR; ++r) _mm512_storeu_ps(out + (r * MB + b) * 16, facc[b][r]);
}

using TileFn = void (*)(const XPack&, int64_t, const WPanel&, int64_t, float*);

template <int G, bool kBias>
TileFn tile_fn(int mb) {
  return mb == 2 ? tile<G, kNR, 2, kBias> : tile<G, kNR, 1, kBias>;
}

// Every (panel of NR weight rows, chunk of x rows) task: unpack the panel, run the tiles.
template <int NR>
void run_panels(const MatmulProblem& p, ThreadPool& pool, const XPack& xp, int G, TileFn tile2,
                TileFn tile1) {
  const int64_t k = p.k, ng = k / G, mblocks = (p.m + 15) / 16;
  const int64_t n_panels = (p.n + NR - 1) / NR;
  const int64_t mb_per_chunk = kMC / 16;
  const int64_t m_chunks = (mblocks + mb_per_chunk - 1) / mb_per_chunk;
  pool.parallel_for(n_panels * m_chunks, [&](int64_t task, int) {
    const int64_t panel = task % n_panels, chunk = task / n_panels;
    const int64_t j0 = panel * NR;
    const size_t wq_bytes = static_cast<size_t>(NR * k);
    const size_t wf_bytes = static_cast<size_t>(NR * ng) * 4;
    auto* wbase = static_cast<uint8_t*>(thread_scratch(0, wq_bytes + 3 * wf_bytes + 256));
    auto* wq = reinterpret_cast<int8_t*>(wbase);
    auto* scale = reinterpret_cast<float*>(wbase + ((wq_bytes + 63) / 64) * 64);
    auto* bias = scale + NR * ng;
    auto* corr = reinterpret_cast<int32_t*>(bias + NR * ng);
    unpack_panel<NR>(p, j0, G, wq, scale, bias, corr);
    const WPanel wp{wq, scale, bias, corr};
    alignas(64) float out[NR * 32];
    const int64_t mb_end = std::min(mblocks, (chunk + 1) * mb_per_chunk);
    for (int64_t mb = chunk * mb_per_chunk; mb < mb_end; mb += 2) {
      const int nb = mb + 1 < mb_end ? 2 : 1;
      (nb == 2 ? tile2 : tile1)(xp, mb, wp, k, out);
      for (int b = 0; b < nb; ++b)
        for (int lane = 0; lane < 16; ++lane) {
          const int64_t i = (mb + b) * 16 + lane;
          if (i >= p.m) break;
          float* y = p.y + i * p.ldy + j0;
          for (int r = 0; r < NR && j0 + r < p.n; ++r)
            y[r] = out[(r * nb + b) * 16 + lane] + (p.bias ? p.bias[j0 + r] : 0.f);
        }
    }
  });
}

void matmul_batched(const MatmulProblem& p, ThreadPool& pool) {
  const GroupFormat gf = group_format(p.w_type);
  const int G = gf.group;
  const int64_t k = p.k, k4 = k / 4, nxb = k / kXBlock, ng = k / G;
  const int64_t mblocks = (p.m + 15) / 16;
  // x pack, shared by all tasks (calling thread's scratch).
  const size_t q_bytes = static_cast<size_t>(mblocks * k4 * 64);
  const size_t dx_bytes = static_cast<size_t>(mblocks * nxb * 16) * sizeof(float);
  const size_t xs_bytes = static_cast<size_t>(mblocks * ng * 16) * sizeof(float);
  auto* base = static_cast<uint8_t*>(thread_scratch(2, q_bytes + dx_bytes + xs_bytes + 128));
  auto* xq = base;
  auto* dx = reinterpret_cast<float*>(base + ((q_bytes + 63) / 64) * 64);
  auto* xs = dx + mblocks * nxb * 16;
  pool.parallel_for(mblocks, [&](int64_t mb, int) {
    pack_x_block(p, mb, G, xq + mb * k4 * 64, dx + mb * nxb * 16, xs + mb * ng * 16);
  });
  const XPack xp{xq, dx, xs, k4, nxb, ng};

  switch (G * 2 + (gf.has_bias ? 1 : 0)) {
    case 64:
      run_panels<kNR>(p, pool, xp, G, tile_fn<32, false>(2), tile_fn<32, false>(1));
      break;
    case 65:
      run_panels<kNR>(p, pool, xp, G, tile_fn<32, true>(2), tile_fn<32, true>(1));
      break;
    case 32:
      run_panels<4>(p, pool, xp, G, tile_g16<4, 2, false>, tile_g16<4, 1, false>);
      break;
    default:
      run_panels<4>(p, pool, xp, G, tile_g16<4, 2, true>, tile_g16<4, 1, true>);
      break;
  }
}

}  // namespace

bool matmul_q8_supports(const MatmulProblem& p) {
  switch (p.w_type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
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
