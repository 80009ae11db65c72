#pragma once
// Weight-row decoding shared by every kernel: one block of any block type is unpacked into int8
// codes q and, per group of G elements, a float scale and bias, so that w[j] = scale * q[j] + bias.
// G is 32 for every type except the K-quants whose scales cover 16 elements (Q2_K, Q3_K, Q6_K).
// The integer kernels multiply q directly; the float kernels expand scale * q + bias.
//
// Compiled per ISA inside EIGHT_ISA_NAMESPACE (a header shared by differently-flagged translation
// units must not define the same inline symbols twice). Layouts: core/quant_blocks.h.
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/half.h"
#include "core/quant_blocks.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

struct GroupFormat {
  int group = 32;         // elements per scale
  bool has_bias = false;  // any nonzero bias (asymmetric types)
};

inline GroupFormat group_format(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {32, true};
    case DType::Q2_K:
      return {16, true};
    case DType::Q3_K:
    case DType::Q6_K:
      return {16, false};
    default:
      return {32, false};
  }
}

namespace unpack_detail {

using namespace eight::quant;

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 6-bit scale and min j of a Q4_K / Q5_K super-block (12 packed bytes).
inline void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

inline void q4_0(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ4_0*>(src);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((b.qs[j] & 0xF) - 8);
    q[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - 8);
  }
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = 0;
}

inline void q4_1(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ4_1*>(src);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(b.qs[j] & 0xF);
    q[j + 16] = static_cast<int8_t>(b.qs[j] >> 4);
  }
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = fp16_to_fp32(b.m);
}

template <class Block>
inline void q5(const Block& b, int8_t* q, int offset) {
  const uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - offset);
    q[j + 16] = static_cast<int8_t>(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
  }
}

inline void q5_0(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ5_0*>(src);
  q5(b, q, 16);
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = 0;
}

inline void q5_1(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ5_1*>(src);
  q5(b, q, 0);
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = fp16_to_fp32(b.m);
}

inline void q8_0(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ8_0*>(src);
  std::memcpy(q, b.qs, 32);
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = 0;
}

inline void iq4_nl(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockIQ4_NL*>(src);
  for (int j = 0; j < 16; ++j) {
    q[j] = kvalues_iq4nl[b.qs[j] & 0xF];
    q[j + 16] = kvalues_iq4nl[b.qs[j] >> 4];
  }
  scale[0] = fp16_to_fp32(b.d);
  bias[0] = 0;
}

// Q2_K: 16 groups of 16; per 128 elements, 32 bytes of qs hold 4 two-bit planes.
inline void q2_k(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ2_K*>(src);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int g = 0; g < 16; ++g) {
    scale[g] = d * static_cast<float>(b.scales[g] & 0xF);
    bias[g] = -dmin * static_cast<float>(b.scales[g] >> 4);
  }
  for (int half = 0; half < 2; ++half) {
    const uint8_t* qs = b.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      int8_t* out = q + 128 * half + 32 * plane;
      for (int l = 0; l < 32; ++l) out[l] = static_cast<int8_t>((qs[l] >> (2 * plane)) & 3);
    }
  }
}

// Q3_K: 16 groups of 16 with signed 6-bit scales; value = low 2 bits - (high bit clear ? 4 : 0).
inline void q3_k(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ3_K*>(src);
  const float d = fp16_to_fp32(b.d);
  const uint8_t* s = b.scales;
  for (int g = 0; g < 16; ++g) {
    const int lo = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
    const int hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
    scale[g] = d * static_cast<float>((lo | (hi << 4)) - 32);
    bias[g] = 0;
  }
  for (int half = 0; half < 2; ++half) {
    const uint8_t* qs = b.qs + 32 * half;
    for (int plane = 0; plane < 4; ++plane) {
      const int bit = 4 * half + plane;
      int8_t* out = q + 128 * half + 32 * plane;
      for (int l = 0; l < 32; ++l) {
        const int low = (qs[l] >> (2 * plane)) & 3;
        out[l] = static_cast<int8_t>(low - (((b.hmask[l] >> bit) & 1) ? 0 : 4));
      }
    }
  }
}

inline void q4_k(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ4_K*>(src);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int g = 0; g < 8; ++g) {
    int sc, m;
    scale_min_k4(g, b.scales, &sc, &m);
    scale[g] = d * static_cast<float>(sc);
    bias[g] = -dmin * static_cast<float>(m);
  }
  for (int p = 0; p < 4; ++p) {
    const uint8_t* qs = b.qs + 32 * p;
    for (int l = 0; l < 32; ++l) {
      q[64 * p + l] = static_cast<int8_t>(qs[l] & 0xF);
      q[64 * p + 32 + l] = static_cast<int8_t>(qs[l] >> 4);
    }
  }
}

inline void q5_k(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ5_K*>(src);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int g = 0; g < 8; ++g) {
    int sc, m;
    scale_min_k4(g, b.scales, &sc, &m);
    scale[g] = d * static_cast<float>(sc);
    bias[g] = -dmin * static_cast<float>(m);
  }
  for (int p = 0; p < 4; ++p) {
    const uint8_t* qs = b.qs + 32 * p;
    for (int l = 0; l < 32; ++l) {
      const int h0 = (b.qh[l] >> (2 * p)) & 1, h1 = (b.qh[l] >> (2 * p + 1)) & 1;
      q[64 * p + l] = static_cast<int8_t>((qs[l] & 0xF) | (h0 << 4));
      q[64 * p + 32 + l] = static_cast<int8_t>((qs[l] >> 4) | (h1 << 4));
    }
  }
}

// Q6_K: per 128 elements, 64 bytes of ql (low nibbles) and 32 of qh (2-bit planes).
inline void q6_k(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockQ6_K*>(src);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 16; ++g) {
    scale[g] = d * static_cast<float>(b.scales[g]);
    bias[g] = 0;
  }
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    int8_t* out = q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<int8_t>(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
      out[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      out[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      out[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

inline void iq4_xs(const void* src, int8_t* q, float* scale, float* bias) {
  const auto& b = *static_cast<const BlockIQ4_XS*>(src);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    const int ls =
        ((b.scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((b.scales_h >> (2 * g)) & 3) << 4);
    scale[g] = d * static_cast<float>(ls - 32);
    bias[g] = 0;
    const uint8_t* qs = b.qs + 16 * g;
    for (int j = 0; j < 16; ++j) {
      q[32 * g + j] = kvalues_iq4nl[qs[j] & 0xF];
      q[32 * g + 16 + j] = kvalues_iq4nl[qs[j] >> 4];
    }
  }
}

}  // namespace unpack_detail

using UnpackBlockFn = void (*)(const void* src, int8_t* q, float* scale, float* bias);

// The block unpacker of a quantized type (nullptr for float types).
inline UnpackBlockFn unpack_block_fn(DType t) {
  namespace u = unpack_detail;
  switch (t) {
    case DType::Q4_0:
      return u::q4_0;
    case DType::Q4_1:
      return u::q4_1;
    case DType::Q5_0:
      return u::q5_0;
    case DType::Q5_1:
      return u::q5_1;
    case DType::Q8_0:
      return u::q8_0;
    case DType::IQ4_NL:
      return u::iq4_nl;
    case DType::Q2_K:
      return u::q2_k;
    case DType::Q3_K:
      return u::q3_k;
    case DType::Q4_K:
      return u::q4_k;
    case DType::Q5_K:
      return u::q5_k;
    case DType::Q6_K:
      return u::q6_k;
    case DType::IQ4_XS:
      return u::iq4_xs;
    default:
      return nullptr;
  }
}

// Unpacks a row of k elements (whole blocks): q[k], scale[k / G], bias[k / G].
inline void unpack_row(DType t, const void* src, int64_t k, int8_t* q, float* scale, float* bias) {
  const UnpackBlockFn fn = unpack_block_fn(t);
  const int64_t bs = dtype_block_size(t);
  const size_t bb = dtype_block_bytes(t);
  const int groups = static_cast<int>(bs / group_format(t).group);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < k / bs; ++i)
    fn(p + i * bb, q + i * bs, scale + i * groups, bias + i * groups);
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE
