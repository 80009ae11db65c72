// Tiled (flash-attention style) attention for long query blocks: a task is one head and a block of
// kBQ queries; it walks the visible keys kBK at a time, with every product a register-tiled
// matrix product and the softmax vectorized across queries:
//
//   Sᵀ [keys, queries] = K_block [keys, d] · (scale Q_block)ᵀ [d, queries]
//   per query: m_new = max(m, max_j Sᵀ[j]); P = exp(Sᵀ - m_new); l = l e^(m - m_new) + Σ_j P
//   O [queries, d] = O e^(m - m_new) + Pᵀ · V_block [keys, d]
//
// Scores are kept transposed so the query block is transposed once per task (not the keys once
// per block) and so a key row of scores is a vector of queries. Memory per task: the blocks
// above (attention_scratch_bytes); no score matrix over the whole sequence. f32 K/V heads whose
// size is a multiple of the vector width are read in place; others are decoded a block at a time.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/isa/matmul_float.h"
#include "backend/cpu/isa/simd.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/scratch.h"
#include "core/thread_pool.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

constexpr int W = kVecWidth;
constexpr int64_t kBQ = kAttentionTileQueries;  // queries per task (a multiple of W)
constexpr int64_t kBK = kAttentionTileKeys;     // keys per block
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// c[r][0..NV W) (+)= Σ_t a(r, t) b[t][0..NV W) for r < R, where a(r, t) = a[r * ars + t * acs]:
// R x NV vector accumulators, one broadcast of a and NV loads of b per step.
template <int R, int NV>
void tile(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, float* c,
          int64_t ldc, int64_t kdim, bool accumulate) {
  VecF acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? VecF::load(c + r * ldc + v * W) : VecF::zero();
  for (int64_t t = 0; t < kdim; ++t) {
    VecF bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = VecF::load(b + t * ldb + v * W);
    for (int r = 0; r < R; ++r) {
      const VecF av = VecF::set1(a[r * ars + t * acs]);
      for (int v = 0; v < NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v].store(c + r * ldc + v * W);
}

template <int NV>
void tile_rows(int64_t rows, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb,
               float* c, int64_t ldc, int64_t kdim, bool accumulate) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    tile<4, NV>(a + r * ars, ars, acs, b, ldb, c + r * ldc, ldc, kdim, accumulate);
  const float* ar = a + r * ars;
  float* cr = c + r * ldc;
  switch (rows - r) {
    case 3:
      tile<3, NV>(ar, ars, acs, b, ldb, cr, ldc, kdim, accumulate);
      break;
    case 2:
      tile<2, NV>(ar, ars, acs, b, ldb, cr, ldc, kdim, accumulate);
      break;
    case 1:
      tile<1, NV>(ar, ars, acs, b, ldb, cr, ldc, kdim, accumulate);
      break;
    default:
      break;
  }
}

// c[rows][cols] (+)= a(rows x kdim) · b[kdim][cols]; cols is a multiple of W.
void gemm(int64_t rows, int64_t cols, int64_t kdim, const float* a, int64_t ars, int64_t acs,
          const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  int64_t j = 0;
  for (; j + 2 * W <= cols; j += 2 * W)
    tile_rows<2>(rows, a, ars, acs, b + j, ldb, c + j, ldc, kdim, accumulate);
  for (; j < cols; j += W)
    tile_rows<1>(rows, a, ars, acs, b + j, ldb, c + j, ldc, kdim, accumulate);
}

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

}  // namespace

void attention_tiled(const AttentionProblem& p, ThreadPool& pool) {
  const int64_t group = p.n_head / p.n_kv_head, d = p.d, dp = round_up(d, W);
  const size_t head_bytes = p.head_stride();
  const int64_t q_blocks = (p.tq + kBQ - 1) / kBQ;
  // f32 heads of a whole number of vectors are read where they are (rows of ld floats).
  const bool k_in_place = p.kv_type == DType::F32;
  const bool v_in_place = p.kv_type == DType::F32 && d % W == 0;
  pool.parallel_for(p.n_head * q_blocks, [&](int64_t task, int) {
    const int64_t h = task / q_blocks, q0 = task % q_blocks * kBQ;
    const int64_t nq = std::min(kBQ, p.tq - q0), kh = h / group;
    auto* qt = static_cast<float*>(
        thread_scratch(kAttentionScratchSlot, attention_scratch_bytes(d)));  // [d][kBQ] scaled Qᵀ
    float* o = qt + d * kBQ;       // [kBQ][dp] output accumulator
    float* st = o + kBQ * dp;      // [kBK][kBQ] scores, transposed
    float* kbuf = st + kBK * kBQ;  // [kBK][d] decoded keys
    float* vbuf = kbuf + kBK * d;  // [kBK][dp] decoded values (padding columns 0)
    float* m = vbuf + kBK * dp;    // [kBQ] running max per query
    float* l = m + kBQ;            // [kBQ] running normalizer
    float* corr = l + kBQ;         // [kBQ] e^(m_old - m_new)
    float* mu = corr + kBQ;        // [kBQ] the max the weights subtract (finite)
    float* bsum = mu + kBQ;        // [kBQ] this block's sum of weights

    // Keys visible to some query of the block: [lo, hi); the mask below settles each query.
    const int64_t pos_first = p.pos0 + q0, pos_last = p.pos0 + q0 + nq - 1;
    const int64_t hi = p.causal ? std::min(p.tk, pos_last + 1) : p.tk;
    const int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos_first - p.window + 1) : 0;

    for (int64_t t = 0; t < nq; ++t) {
      const float* qr = p.q + (q0 + t) * p.ldq + h * d;
      for (int64_t e = 0; e < d; ++e) qt[e * kBQ + t] = qr[e] * p.scale;
    }
    for (int64_t e = 0; e < d; ++e) std::fill(qt + e * kBQ + nq, qt + (e + 1) * kBQ, 0.f);
    std::fill_n(o, kBQ * dp, 0.f);
    std::fill_n(m, kBQ, kNegInf);
    std::fill_n(l, kBQ, 0.f);
    if (!v_in_place)
      for (int64_t j = 0; j < kBK; ++j) std::fill(vbuf + j * dp + d, vbuf + (j + 1) * dp, 0.f);

    const auto* kbase = static_cast<const char*>(p.k) + kh * head_bytes;
    const auto* vbase = static_cast<const char*>(p.v) + kh * head_bytes;
    for (int64_t j0 = lo; j0 < hi; j0 += kBK) {
      const int64_t nk = std::min(kBK, hi - j0);
      // Sᵀ = K_block · (scale Q)ᵀ
      const float* kb = kbuf;
      int64_t ldk = d;
      if (k_in_place) {
        kb = reinterpret_cast<const float*>(kbase + j0 * p.ldk);
        ldk = static_cast<int64_t>(p.ldk / sizeof(float));
      } else {
        for (int64_t j = 0; j < nk; ++j)
          dequantize_row_f32(p.kv_type, kbase + (j0 + j) * p.ldk, kbuf + j * d, d);
      }
      gemm(nk, kBQ, d, kb, ldk, 1, qt, kBQ, st, kBQ, false);
      // Key j0 + j is hidden from query q0 + t when past it (causal) or out of its window.
      if (p.causal || p.window > 0)
        for (int64_t j = 0; j < nk; ++j)
          for (int64_t t = 0; t < nq; ++t) {
            const int64_t pos = p.pos0 + q0 + t, key = j0 + j;
            if ((p.causal && key > pos) || (p.window > 0 && key <= pos - p.window))
              st[j * kBQ + t] = kNegInf;
          }
      // Online softmax, a vector of queries at a time.
      for (int64_t t = 0; t < kBQ; t += W) {
        VecF mx = VecF::set1(kNegInf);
        for (int64_t j = 0; j < nk; ++j) mx = max(mx, VecF::load(st + j * kBQ + t));
        const VecF m_old = VecF::load(m + t), m_new = max(m_old, mx);
        // A query that has seen no visible key keeps m = -inf; it subtracts the lowest float
        // instead, so its weights exp(-inf) and its rescale exp(m_old - mu) are 0, never NaN.
        const VecF mu_v = max(m_new, VecF::set1(std::numeric_limits<float>::lowest()));
        exp(m_old - mu_v).store(corr + t);
        m_new.store(m + t);
        mu_v.store(mu + t);
      }
      for (int64_t t = 0; t < kBQ; t += W) {
        const VecF mv = VecF::load(mu + t);
        VecF sum = VecF::zero();
        for (int64_t j = 0; j < nk; ++j) {
          const VecF e = exp(VecF::load(st + j * kBQ + t) - mv);
          e.store(st + j * kBQ + t);
          sum = sum + e;
        }
        sum.store(bsum + t);
      }
      for (int64_t t = 0; t < nq; ++t) {
        l[t] = l[t] * corr[t] + bsum[t];
        if (corr[t] == 1.f) continue;
        const VecF cv = VecF::set1(corr[t]);
        for (int64_t e = 0; e < dp; e += W) (VecF::load(o + t * dp + e) * cv).store(o + t * dp + e);
      }
      // O += Pᵀ · V_block (P is Sᵀ read with swapped strides)
      const float* vb = vbuf;
      int64_t ldv = dp;
      if (v_in_place) {
        vb = reinterpret_cast<const float*>(vbase + j0 * p.ldv);
        ldv = static_cast<int64_t>(p.ldv / sizeof(float));
      } else {
        for (int64_t j = 0; j < nk; ++j)
          dequantize_row_f32(p.kv_type, vbase + (j0 + j) * p.ldv, vbuf + j * dp, d);
      }
      gemm(nq, dp, nk, st, 1, kBQ, vb, ldv, o, dp, true);
    }
    for (int64_t t = 0; t < nq; ++t) {
      float* out = p.out + (q0 + t) * p.ldo + h * d;
      const float inv = l[t] > 0 ? 1.f / l[t] : 0.f;  // no visible key: zeros, as attention()
      for (int64_t e = 0; e < d; ++e) out[e] = o[t * dp + e] * inv;
    }
  });
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
