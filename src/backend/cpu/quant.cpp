// Plain conversions, the 32-element formats (Q4_0 … Q8_0, IQ4_NL), IQ4_XS decoding and the
// dispatch/threading of quant.h. The K-quants live in quant_k.cpp.
//
// Decoding reproduces the reference decoder's float operations in the same order (for example
// (d*scale)*q - dmin*m), so results are bitwise identical. The file is built without FMA
// contraction (ISO C++ mode and no -mfma), which that exactness relies on.
#include "backend/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant_impl.h"
#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace eight {
namespace {

using namespace quant;

// ---- decoding -------------------------------------------------------------------------------

void dequantize_q4_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * static_cast<float>((b[i].qs[j] & 0xF) - 8);
      y[j + QK4_0 / 2] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = d * static_cast<float>(b[i].qs[j] & 0xF) + m;
      y[j + QK4_1 / 2] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

// 5-bit value j of a Q5 block: low nibble from qs, 5th bit j of the little-endian qh word.
template <class Block>
int q5_value(const Block& b, int j) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  const int lo = j < 16 ? (b.qs[j] & 0xF) : (b.qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1) << 4);
}

void dequantize_q5_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK5_0; ++j) y[j] = d * static_cast<float>(q5_value(b[i], j) - 16);
  }
}

void dequantize_q5_1(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < QK5_1; ++j) y[j] = d * static_cast<float>(q5_value(b[i], j)) + m;
  }
}

void dequantize_q8_0(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void dequantize_iq4_nl(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[j] = d * static_cast<float>(kvalues_iq4nl[b[i].qs[j] & 0xF]);
      y[j + QK4_NL / 2] = d * static_cast<float>(kvalues_iq4nl[b[i].qs[j] >> 4]);
    }
  }
}

void dequantize_iq4_xs(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockIQ4_XS*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    // 8 sub-blocks of 32; 6-bit scale = low nibble from scales_l | 2 bits of scales_h << 4.
    for (int ib = 0; ib < QK_K / 32; ++ib, y += 32) {
      const int ls = ((b[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                     (((b[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kvalues_iq4nl[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kvalues_iq4nl[qs[j] >> 4]);
      }
    }
  }
}

// ---- encoding (32-element blocks) ----------------------------------------------------------
// Round-to-nearest with the block scale chosen from the extreme value, as ggml's reference
// quantizers do (llama-quantize uses exactly these without an importance matrix).

// min(hi, (int)v) for the offset levels, which are >= 0 for finite input; clamping first keeps a
// NaN or infinite input from becoming an out-of-range float-to-int conversion.
inline int trunc_level(float v, int hi) {
  v = 0.f < v ? v : 0.f;
  v = v < static_cast<float>(hi) ? v : static_cast<float>(hi);
  return static_cast<int>(v);
}

float signed_absmax(const float* x, int n, float* amax_out) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  *amax_out = amax;
  return max;
}

void quantize_q4_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
    float amax;
    const float max = signed_absmax(x, QK4_0, &amax);
    // The extreme value maps to -8, the side of the 4-bit range with one more level.
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = trunc_level(x[j] * id + 8.5f, 15);
      const int q1 = trunc_level(x[j + QK4_0 / 2] * id + 8.5f, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_q4_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
    const auto [lo, hi] = std::minmax_element(x, x + QK4_1);
    const float min = *lo, d = (*hi - *lo) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const int q0 = trunc_level((x[j] - min) * id + 0.5f, 15);
      const int q1 = trunc_level((x[j + QK4_1 / 2] - min) * id + 0.5f, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Packs 32 five-bit values into qs nibbles (element j low, j+16 high) and the qh bit plane.
void pack_q5(const int* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quantize_q5_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
    float amax;
    const float max = signed_absmax(x, QK5_0, &amax);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    int q[QK5_0];
    for (int j = 0; j < QK5_0; ++j) q[j] = trunc_level(x[j] * id + 16.5f, 31);
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

void quantize_q5_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
    const auto [lo, hi] = std::minmax_element(x, x + QK5_1);
    const float min = *lo, d = (*hi - *lo) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(min);
    int q[QK5_1];
    for (int j = 0; j < QK5_1; ++j) q[j] = trunc_level((x[j] - min) * id + 0.5f, 31);
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

// roundf (halves away from zero) for |v| <= 128 without a libm call: v - trunc(v) is exact.
inline int round_away(float v) {
  v = -128.f < v ? v : 0.f;  // NaN (from non-finite input) becomes 0
  v = v < 128.f ? v : 127.f;
  int i = static_cast<int>(v);
  const float frac = v - static_cast<float>(i);
  if (frac >= 0.5f) ++i;
  if (frac <= -0.5f) --i;
  return i;
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax;
    signed_absmax(x, QK8_0, &amax);
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = static_cast<int8_t>(round_away(x[j] * id));
  }
}

// ---- plain types -----------------------------------------------------------------------------

void f16_to_f32(const void* src, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(h[i]);
}
void bf16_to_f32(const void* src, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(h[i]);
}
void f8_e4m3_to_f32(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp8_e4m3_to_fp32(b[i]);
}
void f8_e5m2_to_f32(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp8_e5m2_to_fp32(b[i]);
}
void f32_copy_from(const void* src, float* y, int64_t n) {
  std::memcpy(y, src, static_cast<size_t>(n) * sizeof(float));
}
void f32_to_f16(const float* x, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
}
void f32_to_bf16(const float* x, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(x[i]);
}
void f32_copy_to(const float* x, void* dst, int64_t n) {
  std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
}

// ---- dispatch --------------------------------------------------------------------------------

using DequantFn = void (*)(const void*, float*, int64_t);
using QuantFn = void (*)(const float*, void*, int64_t);

struct Codec {
  DType type;
  DequantFn dequantize;
  QuantFn quantize;  // nullptr: decode only
};

constexpr Codec kCodecs[] = {
    {DType::F32, f32_copy_from, f32_copy_to},
    {DType::F16, f16_to_f32, f32_to_f16},
    {DType::BF16, bf16_to_f32, f32_to_bf16},
    {DType::F8_E4M3, f8_e4m3_to_f32, nullptr},
    {DType::F8_E5M2, f8_e5m2_to_f32, nullptr},
    {DType::Q4_0, dequantize_q4_0, quantize_q4_0},
    {DType::Q4_1, dequantize_q4_1, quantize_q4_1},
    {DType::Q5_0, dequantize_q5_0, quantize_q5_0},
    {DType::Q5_1, dequantize_q5_1, quantize_q5_1},
    {DType::Q8_0, dequantize_q8_0, quantize_q8_0},
    {DType::Q2_K, detail::dequantize_q2_k, detail::quantize_q2_k},
    {DType::Q3_K, detail::dequantize_q3_k, detail::quantize_q3_k},
    {DType::Q4_K, detail::dequantize_q4_k, detail::quantize_q4_k},
    {DType::Q5_K, detail::dequantize_q5_k, detail::quantize_q5_k},
    {DType::Q6_K, detail::dequantize_q6_k, detail::quantize_q6_k},
    {DType::Q8_K, detail::dequantize_q8_k, detail::quantize_q8_k},
    {DType::IQ4_NL, dequantize_iq4_nl, nullptr},
    {DType::IQ4_XS, dequantize_iq4_xs, nullptr},
};

const Codec* find_codec(DType type) {
  for (const auto& c : kCodecs)
    if (c.type == type) return &c;
  return nullptr;
}

void check_row(const char* op, DType type, int64_t n) {
  check(n >= 0, "[", op, "] negative row length ", n);
  const int64_t bs = dtype_block_size(type);
  check(n % bs == 0, "[", op, "] a ", dtype_name(type), " row must be a multiple of ", bs,
        " elements, got ", n);
}

// Rows per task: enough work per task to amortise scheduling, few enough tasks to balance.
int64_t rows_per_task(int64_t n_rows, int64_t n_per_row, int threads) {
  const int64_t min_elems = 1 << 16;
  int64_t rows = std::max<int64_t>(1, min_elems / std::max<int64_t>(1, n_per_row));
  const int64_t balanced = (n_rows + 4 * threads - 1) / (4 * threads);
  return std::max<int64_t>(1, std::min(rows, balanced));
}

}  // namespace

bool can_dequantize(DType type) {
  return find_codec(type) != nullptr;
}
bool can_quantize(DType type) {
  const Codec* c = find_codec(type);
  return c && c->quantize;
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  const Codec* c = find_codec(type);
  check(c != nullptr, "[dequantize] no decoder for type ", dtype_name(type));
  check_row("dequantize", type, n);
  c->dequantize(src, dst, n);
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  const Codec* c = find_codec(type);
  check(c && c->quantize, "[quantize] cannot quantize to type ", dtype_name(type));
  check_row("quantize", type, n);
  c->quantize(src, dst, n);
}

size_t quantize_rows(DType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                     ThreadPool* pool) {
  const Codec* c = find_codec(type);
  check(c && c->quantize, "[quantize] cannot quantize to type ", dtype_name(type));
  check_row("quantize", type, n_per_row);
  check(n_rows >= 0, "[quantize] negative row count ", n_rows);
  const size_t row_bytes = dtype_row_bytes(type, n_per_row);
  auto* out = static_cast<uint8_t*>(dst);
  if (!pool || pool->size() <= 1 || n_rows <= 1) {
    for (int64_t r = 0; r < n_rows; ++r)
      c->quantize(src + r * n_per_row, out + static_cast<size_t>(r) * row_bytes, n_per_row);
  } else {
    const int64_t per = rows_per_task(n_rows, n_per_row, pool->size());
    pool->parallel_for((n_rows + per - 1) / per, [&](int64_t task, int) {
      const int64_t end = std::min(n_rows, (task + 1) * per);
      for (int64_t r = task * per; r < end; ++r)
        c->quantize(src + r * n_per_row, out + static_cast<size_t>(r) * row_bytes, n_per_row);
    });
  }
  return row_bytes * static_cast<size_t>(n_rows);
}

void dequantize_rows(DType type, const void* src, float* dst, int64_t n_rows, int64_t n_per_row,
                     ThreadPool* pool) {
  const Codec* c = find_codec(type);
  check(c != nullptr, "[dequantize] no decoder for type ", dtype_name(type));
  check_row("dequantize", type, n_per_row);
  check(n_rows >= 0, "[dequantize] negative row count ", n_rows);
  const size_t row_bytes = dtype_row_bytes(type, n_per_row);
  const auto* in = static_cast<const uint8_t*>(src);
  auto one = [&](int64_t r) {
    c->dequantize(in + static_cast<size_t>(r) * row_bytes, dst + r * n_per_row, n_per_row);
  };
  if (!pool || pool->size() <= 1 || n_rows <= 1) {
    for (int64_t r = 0; r < n_rows; ++r) one(r);
  } else {
    const int64_t per = rows_per_task(n_rows, n_per_row, pool->size());
    pool->parallel_for((n_rows + per - 1) / per, [&](int64_t task, int) {
      const int64_t end = std::min(n_rows, (task + 1) * per);
      for (int64_t r = task * per; r < end; ++r) one(r);
    });
  }
}

}  // namespace eight
