#include "backend/cpu/scratch.h"

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"

namespace eight::cpu {

void* thread_scratch(int slot, size_t bytes) {
  thread_local HostBuffer buffers[kScratchSlots];
  check(slot >= 0 && slot < kScratchSlots, "[cpu] scratch slot ", slot, " out of range");
  HostBuffer& b = buffers[slot];
  if (b.size() < bytes) {
    b.reset();  // release first so growth does not briefly hold both
    b = HostBuffer(scratch_alloc_bytes(bytes));
  }
  return b.data();
}

size_t scratch_alloc_bytes(size_t bytes) {
  return bytes + bytes / 4;
}

MatmulScratch matmul_scratch(DType w, int64_t m, int64_t k, ISA isa) {
  MatmulScratch s;
  const auto kk = static_cast<size_t>(k);
  const bool is_float = w == DType::F32 || w == DType::F16 || w == DType::BF16 ||
                        w == DType::F8_E4M3 || w == DType::F8_E5M2;
  const bool avx2 = isa == ISA::AVX2 || isa == ISA::AVX2VNNI;
  const bool int8 = !is_float && isa != ISA::Generic;  // the generic table is float throughout
  if (int8 && m <= 8) {                                // kMatvecMaxRows in isa/matvec_q8.h
    // matvec_q8 / matvec_avx2: every x row quantized once with its block scales and sums.
    const size_t block = dtype_block_size(w) == 256 ? 256 : 32;
    s.caller[3] =
        (kk + (kk / block + 2 * (kk / 16) + 2 * (kk / 32)) * 4 + 256) * static_cast<size_t>(m);
    // matvec_avx2: per task one unpacked weight row for the types without a fused kernel.
    const bool fused = w == DType::Q4_0 || w == DType::Q8_0 || w == DType::Q4_K ||
                       w == DType::Q5_K || w == DType::Q6_K;
    if (avx2 && !fused) s.task[0] = kk + 2 * (kk / 16) * 4 + 256;
    return s;
  }
  if (int8) {
    // matmul_batched: x packed in blocks of one vector's lanes of rows (16 on AVX-512, 8 on AVX2;
    // int8 values, per-32 scales, per-group sums), and per task one unpacked panel of weight rows
    // (int8 + scale, bias, correction): 6 rows for 32-value groups, 4 for 16-value groups; 4 and
    // 3 on AVX2 without VNNI (isa/matmul_q8.cpp, kNR32 and kNR16).
    const size_t lanes = avx2 ? 8 : 16;
    const size_t group = w == DType::Q2_K || w == DType::Q3_K || w == DType::Q6_K ? 16 : 32;
    const bool emulated = isa == ISA::AVX2;  // smaller tiles: 16 ymm registers, no vpdpbusd
    const size_t panel = group == 16 ? (emulated ? 3 : 4) : (emulated ? 4 : 6);
    const auto mblocks = (static_cast<size_t>(m) + lanes - 1) / lanes;
    const size_t nxb = kk / 32, ng = kk / group;
    s.caller[2] = mblocks * (kk / 4) * 4 * lanes + (mblocks * nxb + mblocks * ng) * lanes * 4 + 128;
    // AVX2 without VNNI keeps |q| beside q (used by the wide-code types, Q8_0 and IQ4).
    s.task[0] = (emulated ? 2 : 1) * panel * kk + 3 * panel * ng * 4 + 256;
    return s;
  }
  // matmul_float: a dequantized weight row per task for few x rows (up to 8 with float weights,
  // isa/matmul_float.cpp), otherwise a transposed panel of two vectors' width of weight rows and
  // those rows' next 256 columns dequantized.
  const size_t width = isa == ISA::AVX512 ? 16 : 8;
  if (m <= 3 || (is_float && m <= 8)) {
    s.task[0] = kk * 4;
  } else {
    s.task[0] = kk * 2 * width * 4;
    s.task[1] = std::min<size_t>(kk, 256) * 2 * width * 4;
  }
  return s;
}

size_t attention_scratch_bytes(int64_t d) {
  // Per query: an accumulator, a K row and a V row of d floats, and one chunk of 64 scores.
  const int64_t per_query = 3 * d + 64;
  // Tiled: scaled Qᵀ [d][BQ], the output [BQ][dp], scores [BK][BQ], decoded keys [BK][d] and
  // values [BK][dp], five vectors of BQ (dp: d rounded up to the widest vector, 16 floats).
  const int64_t dp = (d + 15) / 16 * 16, bq = kAttentionTileQueries, bk = kAttentionTileKeys;
  const int64_t tiled = d * bq + bq * dp + bk * bq + bk * d + bk * dp + 5 * bq;
  return static_cast<size_t>(std::max(per_query, tiled)) * sizeof(float);
}

}  // namespace eight::cpu
