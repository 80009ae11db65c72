// Attention without a score matrix (flash-attention style): each (query, head) task walks the
// visible keys in chunks, keeps a running max m, normalizer l and output accumulator, and
// rescales them when a chunk raises the max. Memory per task: one chunk of scores and d floats.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/isa/dot.h"
#include "backend/cpu/isa/matmul_float.h"
#include "backend/cpu/isa/simd.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/scratch.h"
#include "core/thread_pool.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

constexpr int64_t kChunk = 64;

// One (query, head)'s running output over the visible keys, in two forms with the same arithmetic:
// RegHead keeps q and the accumulator in registers and reads F32/F16 rows in place (heads of
// NV vectors: a decode step's cross-attention reads 1500 keys per head, where calls and passes
// through buffers per row cost more than the products); MemHead serves any head size and type,
// decoding quantized rows into buffers.
template <int NV, class T>
struct RegHead {
  static constexpr int W = kVecWidth;
  VecF q[NV], acc[NV];
  RegHead(const float* qp, int64_t) {
    for (int v = 0; v < NV; ++v) {
      q[v] = VecF::load(qp + v * W);
      acc[v] = VecF::zero();
    }
  }
  // dot_row's sums: vector v into partial v % 4, or all into the first below four vectors.
  float dot(const void* row) const {
    const T* k = static_cast<const T*>(row);
    VecF part[4] = {VecF::zero(), VecF::zero(), VecF::zero(), VecF::zero()};
    for (int v = 0; v < NV; ++v) {
      const int a = NV >= 4 ? v % 4 : 0;
      part[a] = fma(q[v], load_row(k + v * W), part[a]);
    }
    return reduce_add((part[0] + part[1]) + (part[2] + part[3]));
  }
  void rescale(float c) {
    for (int v = 0; v < NV; ++v) acc[v] = acc[v] * VecF::set1(c);
  }
  void add(float w, const void* row) {
    const T* x = static_cast<const T*>(row);
    const VecF wv = VecF::set1(w);
    for (int v = 0; v < NV; ++v) acc[v] = fma(wv, load_row(x + v * W), acc[v]);
  }
  void store(float* o, float inv) const {
    for (int v = 0; v < NV; ++v) (acc[v] * VecF::set1(inv)).store(o + v * W);
  }
};

struct MemHead {
  DType type;
  int64_t d;
  const float* q;
  float *acc, *kbuf, *vbuf;
  MemHead(DType t, const float* qp, int64_t dim, float* scratch)
      : type(t), d(dim), q(qp), acc(scratch), kbuf(scratch + dim), vbuf(scratch + 2 * dim) {
    std::fill_n(acc, d, 0.f);
  }
  float dot(const void* row) const {
    if (type == DType::F32) return dot_row(q, static_cast<const float*>(row), d);
    if (type == DType::F16) return dot_row(q, static_cast<const uint16_t*>(row), d);
    dequantize_row_f32(type, row, kbuf, d);
    return dot_row(q, static_cast<const float*>(kbuf), d);
  }
  void rescale(float c) {
    constexpr int W = kVecWidth;
    int64_t e = 0;
    for (; e + W <= d; e += W) (VecF::load(acc + e) * VecF::set1(c)).store(acc + e);
    for (; e < d; ++e) acc[e] *= c;
  }
  void add(float w, const void* row) {
    if (type == DType::F16) return axpy_row(w, static_cast<const uint16_t*>(row), acc, d);
    const float* x = static_cast<const float*>(row);
    if (type != DType::F32) {
      dequantize_row_f32(type, row, vbuf, d);
      x = vbuf;
    }
    axpy_row(w, x, acc, d);
  }
  void store(float* o, float inv) const {
    for (int64_t e = 0; e < d; ++e) o[e] = acc[e] * inv;
  }
};

// Online softmax over keys [j0, j1) a chunk at a time; s holds one chunk of scores.
template <class Head>
void attend(Head& hd, const AttentionProblem& p, const char* kbase, const char* vbase, int64_t j0,
            int64_t j1, float* s, float* o) {
  constexpr int W = kVecWidth;
  float m = -std::numeric_limits<float>::infinity(), l = 0;
  for (int64_t c0 = j0; c0 < j1; c0 += kChunk) {
    const int64_t c1 = std::min(j1, c0 + kChunk);
    float cmax = -std::numeric_limits<float>::infinity();
    for (int64_t j = c0; j < c1; ++j) {
      s[j - c0] = hd.dot(kbase + j * p.ldk) * p.scale;
      cmax = std::max(cmax, s[j - c0]);
    }
    const float m_new = std::max(m, cmax);
    const float corr = std::exp(m - m_new);  // 0 on the first chunk (m = -inf)
    l *= corr;
    hd.rescale(corr);
    // The chunk's weights exp(s - m_new), a vector at a time.
    const int64_t cn = c1 - c0;
    const VecF mv = VecF::set1(m_new);
    int64_t jj = 0;
    for (; jj + W <= cn; jj += W) exp(VecF::load(s + jj) - mv).store(s + jj);
    for (; jj < cn; ++jj) s[jj] = std::exp(s[jj] - m_new);
    for (int64_t j = c0; j < c1; ++j) {
      l += s[j - c0];
      hd.add(s[j - c0], vbase + j * p.ldv);
    }
    m = m_new;
  }
  hd.store(o, 1.f / l);
}

template <int NV, class T>
void attend_reg(const AttentionProblem& p, const float* q, const char* kbase, const char* vbase,
                int64_t j0, int64_t j1, float* s, float* o) {
  RegHead<NV, T> hd(q, p.d);
  attend(hd, p, kbase, vbase, j0, j1, s, o);
}

using AttendFn = void (*)(const AttentionProblem&, const float*, const char*, const char*, int64_t,
                          int64_t, float*, float*);

// The register kernel for this head size and cache type, or nullptr.
template <class T>
AttendFn reg_kernel(int64_t nv) {
  switch (nv) {
    case 1:
      return attend_reg<1, T>;
    case 2:
      return attend_reg<2, T>;
    case 4:
      return attend_reg<4, T>;
    case 8:
      return attend_reg<8, T>;
    default:
      return nullptr;
  }
}

AttendFn pick_kernel(const AttentionProblem& p) {
  if (p.d % kVecWidth != 0) return nullptr;
  if (p.kv_type == DType::F16) return reg_kernel<uint16_t>(p.d / kVecWidth);
  if (p.kv_type == DType::F32) return reg_kernel<float>(p.d / kVecWidth);
  return nullptr;
}

}  // namespace

void attention(const AttentionProblem& p, ThreadPool& pool) {
  const int64_t group = p.n_head / p.n_kv_head;
  const size_t head_bytes = p.head_stride();
  const AttendFn reg = pick_kernel(p);
  // Head-major task order: consecutive tasks (a beam search step's queries) read the same head's
  // keys and values, which then come from the core's L2 instead of memory.
  pool.parallel_for(p.tq * p.n_head, [&](int64_t task, int) {
    const int64_t h = task / p.tq, t = task % p.tq, kh = h / group;
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
    auto* scratch =
        static_cast<float*>(thread_scratch(kAttentionScratchSlot, attention_scratch_bytes(p.d)));
    const float* q = p.q + t * p.ldq + h * p.d;
    const auto* kbase = static_cast<const char*>(p.k) + kh * head_bytes;
    const auto* vbase = static_cast<const char*>(p.v) + kh * head_bytes;
    float* s = scratch + 3 * p.d;
    if (reg) return reg(p, q, kbase, vbase, j0, j1, s, o);
    MemHead hd(p.kv_type, q, p.d, scratch);
    attend(hd, p, kbase, vbase, j0, j1, s, o);
  });
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
