// Attention without a score matrix (flash-attention style): each (query, head) task walks the
// visible keys in chunks, keeps a running max m, normalizer l and output accumulator, and
// rescales them when a chunk raises the max. Memory per task: one chunk of scores and d floats.
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

constexpr int64_t kChunk = 64;

// One head of a K or V row as floats: F32 in place, F16/Q8_0 decoded into buf.
const float* kv_row(DType t, const void* src, int64_t d, float* buf) {
  if (t == DType::F32) return static_cast<const float*>(src);
  dequantize_row_f32(t, src, buf, d);
  return buf;
}

}  // namespace

void attention(const AttentionProblem& p, ThreadPool& pool) {
  constexpr int W = kVecWidth;
  const int64_t group = p.n_head / p.n_kv_head;
  const size_t head_bytes = dtype_row_bytes(p.kv_type, p.d);
  pool.parallel_for(p.tq * p.n_head, [&](int64_t task, int) {
    const int64_t t = task / p.n_head, h = task % p.n_head, kh = h / group;
    const int64_t pos = p.pos0 + t;
    int64_t j0 = 0, j1 = p.tk;  // visible keys [j0, j1)
    if (p.causal) j1 = std::min(j1, pos + 1);
    if (p.window > 0) j0 = std::max<int64_t>(0, pos - p.window + 1);
    float* o = p.out + t * p.ldo + h * p.d;
    if (j1 <= j0) {
      std::fill_n(o, p.d, 0.f);
      return;
    }
    static_assert(kChunk == 64, "attention_scratch_bytes counts 64 scores");
    auto* acc =
        static_cast<float*>(thread_scratch(kAttentionScratchSlot, attention_scratch_bytes(p.d)));
    float* kbuf = acc + p.d;
    float* vbuf = kbuf + p.d;
    float* s = vbuf + p.d;
    std::fill_n(acc, p.d, 0.f);
    const float* q = p.q + t * p.ldq + h * p.d;
    const auto* kbase = static_cast<const char*>(p.k) + kh * head_bytes;
    const auto* vbase = static_cast<const char*>(p.v) + kh * head_bytes;
    float m = -std::numeric_limits<float>::infinity(), l = 0;
    for (int64_t c0 = j0; c0 < j1; c0 += kChunk) {
      const int64_t c1 = std::min(j1, c0 + kChunk);
      float cmax = -std::numeric_limits<float>::infinity();
      for (int64_t j = c0; j < c1; ++j) {
        const float* kr = kv_row(p.kv_type, kbase + j * p.ldk, p.d, kbuf);
        s[j - c0] = dot_f32(q, kr, p.d) * p.scale;
        cmax = std::max(cmax, s[j - c0]);
      }
      const float m_new = std::max(m, cmax);
      const float corr = std::exp(m - m_new);  // 0 on the first chunk (m = -inf)
      l *= corr;
      const VecF cv = VecF::set1(corr);
      int64_t e = 0;
      for (; e + W <= p.d; e += W) (VecF::load(acc + e) * cv).store(acc + e);
      for (; e < p.d; ++e) acc[e] *= corr;
      // The chunk's weights exp(s - m_new), a vector at a time.
      const int64_t cn = c1 - c0;
      const VecF mv = VecF::set1(m_new);
      int64_t jj = 0;
      for (; jj + W <= cn; jj += W) exp(VecF::load(s + jj) - mv).store(s + jj);
      for (; jj < cn; ++jj) s[jj] = std::exp(s[jj] - m_new);
      for (int64_t j = c0; j < c1; ++j) {
        const float w = s[j - c0];
        l += w;
        const float* vr = kv_row(p.kv_type, vbase + j * p.ldv, p.d, vbuf);
        const VecF wv = VecF::set1(w);
        for (e = 0; e + W <= p.d; e += W)
          fma(wv, VecF::load(vr + e), VecF::load(acc + e)).store(acc + e);
        for (; e < p.d; ++e) acc[e] += w * vr[e];
      }
      m = m_new;
    }
    const float inv = 1.f / l;
    for (int64_t e = 0; e < p.d; ++e) o[e] = acc[e] * inv;
  });
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
