#pragma once
// Byte layouts of the ggml block-quantized types eight computes on, as stored in GGUF files
// (core, because both CPU and Vulkan backends decode them)
// (ggml-common.h; see ../shared/reference/models.md §0). Field order is byte order; fp16 fields
// are raw IEEE binary16 bits (core/half.h converts). Blocks run along the contiguous dimension.
#include <cstdint>

namespace eight::quant {

inline constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int QK_K = 256;  // super-block size of the K-quants
inline constexpr int K_SCALE_SIZE = 12;
inline constexpr int QK4_NL = 32;

struct BlockQ4_0 {
  uint16_t d;             // scale
  uint8_t qs[QK4_0 / 2];  // elem j: low nibble of qs[j]; elem j+16: high nibble; value (q-8)*d
};
struct BlockQ4_1 {
  uint16_t d, m;  // scale, min: value q*d + m
  uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];          // 5th bits, bit j of the little-endian u32 for elem j
  uint8_t qs[QK5_0 / 2];  // value (q-16)*d
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
struct BlockQ8_1 {
  uint16_t d, s;  // scale and d * sum(qs)
  int8_t qs[QK8_1];
};
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];  // low nibble scale, high nibble min, per 16 elements
  uint8_t qs[QK_K / 4];       // 2-bit quants
  uint16_t d, dmin;
};
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];  // high bit
  uint8_t qs[QK_K / 4];     // low 2 bits
  uint8_t scales[12];       // 16 six-bit scales
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];  // 8 six-bit scales and 8 six-bit mins
  uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];  // low 4 bits
  uint8_t qh[QK_K / 4];  // high 2 bits
  int8_t scales[QK_K / 16];
  uint16_t d;
};
struct BlockQ8_K {  // activations for K-quant dot products (not stored in files)
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];  // sum of qs per 16 elements
};
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[QK4_NL / 2];  // indices into kvalues_iq4nl, nibble layout as Q4_0
};
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;            // high 2 bits of 8 six-bit scales
  uint8_t scales_l[QK_K / 64];  // low 4 bits, two per byte
  uint8_t qs[QK_K / 2];
};

// The 16 non-linear levels of IQ4_NL / IQ4_XS.
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);

}  // namespace eight::quant
