// The K-quants (256-element super-blocks) and Q8_K, the activation format of their dot products.
//
// Encoding, per super-block: fit each sub-block's scale (and min) with a search
// (backend/cpu/quant_fit.h), quantize those sub-block scales against one fp16 super-block scale,
// then round every value against the scale it will really be decoded with. Decoding keeps the
// reference decoder's operation order ((d*sc)*q - dmin*m) so it is bitwise exact.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant_fit.h"
#include "backend/cpu/quant_impl.h"
#include "core/half.h"
#include "core/quant_blocks.h"

namespace eight::quant::detail {
namespace {

// Six-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block: 0..3 in the low 6 bits of
// bytes j and j+4; 4..7 in the nibbles of bytes j+4 with the top 2 bits in bytes j-4 and j.
void get_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void set_scale_min(int j, int sc, int m, uint8_t* q) {
  if (j < 4) {
    q[j] = static_cast<uint8_t>(sc);
    q[j + 4] = static_cast<uint8_t>(m);
  } else {
    q[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    q[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
    q[j] |= static_cast<uint8_t>((m >> 4) << 6);
  }
}

// Signed 6-bit scale j (0..15) of a Q3_K block, stored +32: low nibbles in bytes 0..7 (j and
// j-8 sharing a byte), high 2-bit pairs in bytes 8..11.
int q3_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

}  // namespace

// ---- decoding -------------------------------------------------------------------------------

void dequantize_q2_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // Element e: byte qs[32*(e/128) + e%32], bits 2*((e%128)/32); sub-block e/16.
    for (int e = 0; e < QK_K; ++e) {
      const int q = (b[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const uint8_t sc = b[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
      y[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

void dequantize_q3_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
    const float d = fp16_to_fp32(b[i].d);
    float dl[16];
    for (int j = 0; j < 16; ++j) dl[j] = d * static_cast<float>(q3_scale(b[i].scales, j));
    // Low 2 bits as Q2_K; the high bit of e is bit e/32 of hmask[e%32], and a clear bit means -4.
    for (int e = 0; e < QK_K; ++e) {
      const int lo = (b[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const int hi = (b[i].hmask[e % 32] >> (e / 32)) & 1;
      y[e] = dl[e / 16] * static_cast<float>(lo - (hi ? 0 : 4));
    }
  }
}

void dequantize_q4_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // Each 64-element chunk: 32 bytes, low nibbles = sub-block 2c, high nibbles = 2c+1.
    for (int j = 0; j < QK_K / 32; ++j, y += 32) {
      int sc, m;
      get_scale_min(j, b[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      const uint8_t* qs = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) y[l] = dl * static_cast<float>((qs[l] >> shift) & 0xF) - ml;
    }
  }
}

void dequantize_q5_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    // As Q4_K, plus the 5th bit of sub-block j in bit j of qh[l].
    for (int j = 0; j < QK_K / 32; ++j, y += 32) {
      int sc, m;
      get_scale_min(j, b[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      const uint8_t* qs = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int q = ((qs[l] >> shift) & 0xF) | (((b[i].qh[l] >> j) & 1) << 4);
        y[l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

void dequantize_q6_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
    const float d = fp16_to_fp32(b[i].d);
    // Per 128-element half h, quarter s (32 elements), l: low nibble from ql[64h + 32(s%2) + l]
    // (high nibble when s >= 2), high 2 bits from qh[32h + l] >> 2s.
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      const int lo = (b[i].ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 0xF;
      const int hi = (b[i].qh[32 * h + l] >> (2 * s)) & 3;
      const float dl = d * static_cast<float>(b[i].scales[e / 16]);
      y[e] = dl * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

void dequantize_q8_k(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K)
    for (int e = 0; e < QK_K; ++e) y[e] = b[i].d * static_cast<float>(b[i].qs[e]);
}

// ---- encoding -------------------------------------------------------------------------------

void quantize_q2_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16], mins[16], sw[16], w[16];
    for (int j = 0; j < 16; ++j) {
      sw[j] = 0;
      for (int l = 0; l < 16; ++l) {
        w[l] = std::fabs(x[16 * j + l]);
        sw[j] += w[l];
      }
      scales[j] = fit_scale_offset(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15,
                                   /*use_abs_error=*/true);
    }
    // 4-bit sub-block scales and mins, each set fitted to one fp16 super-block scale.
    uint8_t ls[16], lm[16];
    b[i].d = fp32_to_fp16(fit_scale_nonneg(16, 15, scales, sw, ls));
    b[i].dmin = fp32_to_fp16(fit_scale_nonneg(16, 15, mins, sw, lm));
    for (int j = 0; j < 16; ++j) b[i].scales[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
    // Re-round every value against the scale and min it will be decoded with.
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * (b[i].scales[j] & 0xF);
      if (dl == 0) continue;
      const float ml = dmin * (b[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] =
            static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + l] + ml) / dl), 0, 3));
    }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* q = L + 128 * h + l;
        b[i].qs[32 * h + l] =
            static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
      }
  }
}

void quantize_q3_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    int8_t L[QK_K];
    float scales[16];
    float amax = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_scale_refine_levels(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(b[i].scales, 0, sizeof b[i].scales);
    if (max_scale != 0) {
      // Signed 6-bit sub-block scales; the largest maps to -32, the side with one more level.
      const float iscale = -32 / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = clamp_int(nearest_int(iscale * scales[j]), -32, 31) + 32;
        if (j < 8)
          b[i].scales[j] = static_cast<uint8_t>(l & 0xF);
        else
          b[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        b[i].scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b[i].d = fp32_to_fp16(1 / iscale);
    } else {
      b[i].d = 0;
    }
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * q3_scale(b[i].scales, j);
      if (dl == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + l] / dl), -4, 3) + 4);
    }
    std::memset(b[i].hmask, 0, sizeof b[i].hmask);
    for (int e = 0; e < QK_K; ++e)
      if (L[e] > 3) {
        b[i].hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        L[e] = static_cast<int8_t>(L[e] - 4);
      }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int8_t* q = L + 128 * h + l;
        b[i].qs[32 * h + l] =
            static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
      }
  }
}

namespace {

// Shared by Q4_K and Q5_K: fits 8 sub-blocks of 32 with nmax levels, stores the 6-bit scales and
// mins and the fp16 d/dmin, and writes the final levels to L.
template <class Block>
void fit_k_block(const float* x, int nmax, Block& b, uint8_t* L) {
  // Importance of each value: its magnitude plus the super-block's RMS (times sqrt 2), so small
  // values still count but large ones (which dominate the dot products) count more.
  float sum_x2 = 0;
  for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
  const float av_x = std::sqrt(2 * sum_x2 / QK_K);
  float scales[8], mins[8], sw[8], w[32];
  for (int j = 0; j < 8; ++j) {
    sw[j] = 0;
    for (int l = 0; l < 32; ++l) {
      w[l] = av_x + std::fabs(x[32 * j + l]);
      sw[j] += w[l];
    }
    uint8_t scratch[32];
    scales[j] = fit_scale_offset(32, nmax, x + 32 * j, w, scratch, &mins[j], -0.9f, 0.05f, 36,
                                 /*use_abs_error=*/false);
  }
  // The 6-bit sub-block scales and mins: fitted to one super-block scale each, weighted by how
  // much each sub-block matters.
  uint8_t ls[8], lm[8];
  const float d_block = fit_scale_nonneg(8, 63, scales, sw, ls);
  const float m_block = fit_scale_nonneg(8, 63, mins, sw, lm);
  std::memset(b.scales, 0, sizeof b.scales);
  for (int j = 0; j < 8; ++j) set_scale_min(j, ls[j], lm[j], b.scales);
  b.d = fp32_to_fp16(d_block);
  b.dmin = fp32_to_fp16(m_block);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    get_scale_min(j, b.scales, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] =
          dl == 0
              ? 0
              : static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + ml) / dl), 0, nmax));
  }
}

}  // namespace

void quantize_q4_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    fit_k_block(x, 15, b[i], L);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    fit_k_block(x, 31, b[i], L);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

void quantize_q6_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16];
    float amax = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_scale_symmetric(16, 32, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    if (amax < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    // int8 sub-block scales against one fp16 scale; the largest maps to -128.
    const float iscale = -128 / max_scale;
    b[i].d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j)
      b[i].scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * b[i].scales[j];
      if (dl == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] =
            static_cast<uint8_t>(clamp_int(nearest_int(x[16 * j + l] / dl), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* q = L + 128 * h + l;
        b[i].ql[64 * h + l] = static_cast<uint8_t>((q[0] & 0xF) | ((q[64] & 0xF) << 4));
        b[i].ql[64 * h + 32 + l] = static_cast<uint8_t>((q[32] & 0xF) | ((q[96] & 0xF) << 4));
        b[i].qh[32 * h + l] = static_cast<uint8_t>((q[0] >> 4) | ((q[32] >> 4) << 2) |
                                                   ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
      }
  }
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float amax = 0, max = 0;
    for (int e = 0; e < QK_K; ++e)
      if (std::fabs(x[e]) > amax) {
        amax = std::fabs(x[e]);
        max = x[e];
      }
    if (amax == 0) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    // The extreme value maps to -127 exactly, so every level fits in int8 without clipping -128.
    const float iscale = -127 / max;
    for (int e = 0; e < QK_K; ++e)
      b[i].qs[e] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[e])));
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = 1 / iscale;
  }
}

}  // namespace eight::quant::detail
