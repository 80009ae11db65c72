// Hand-built blocks pin the decoders to the documented bit layouts
// (../shared/reference/models.md §0), independently of our encoders and of the golden files.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/half.h"
#include "core/quant_blocks.h"

using namespace eight;
using namespace eight::quant;

namespace {

template <class Block>
std::vector<float> decode(DType t, const Block& b) {
  std::vector<float> y(dtype_block_size(t));
  dequantize_row(t, &b, y.data(), static_cast<int64_t>(y.size()));
  return y;
}

}  // namespace

TEST(QuantLayout, Q4_0) {
  BlockQ4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::Q4_0, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j - 8));
  }
}

TEST(QuantLayout, Q5_1AndQ8_0) {
  BlockQ5_1 b{};
  b.d = fp32_to_fp16(2.f);
  b.m = fp32_to_fp16(-1.f);
  const uint32_t qh = 0x80000001u;  // 5th bit of elements 0 and 31
  std::memcpy(b.qh, &qh, 4);
  b.qs[0] = 0x21;  // element 0 low nibble 1, element 16 nibble 2
  const auto y = decode(DType::Q5_1, b);
  EXPECT_EQ(y[0], 2.f * 17 - 1);
  EXPECT_EQ(y[16], 2.f * 2 - 1);
  EXPECT_EQ(y[31], 2.f * 16 - 1);
  EXPECT_EQ(y[1], -1.f);

  BlockQ8_0 c{};
  c.d = fp32_to_fp16(0.25f);
  for (int j = 0; j < 32; ++j) c.qs[j] = static_cast<int8_t>(j - 16);
  const auto z = decode(DType::Q8_0, c);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(z[j], 0.25f * (j - 16));
}

TEST(QuantLayout, Q2_K) {
  BlockQ2_K b{};
  b.d = fp32_to_fp16(1.f);
  b.dmin = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>((j % 15 + 1) | (2 << 4));
  // Element e lives in qs[32*(e/128) + e%32] at bit 2*((e%128)/32): set e = 128 + 64 + 5 to 3.
  const int e = 128 + 64 + 5;
  b.qs[32 + 5] = 3 << 4;
  const auto y = decode(DType::Q2_K, b);
  for (int i = 0; i < 256; ++i) {
    const float sc = float(i / 16 % 15 + 1);
    EXPECT_EQ(y[i], sc * (i == e ? 3 : 0) - 1.f) << i;
  }
}

TEST(QuantLayout, Q3_K) {
  BlockQ3_K b{};
  b.d = fp32_to_fp16(1.f);
  // Scale of sub-block 13 = 45 (stored +32 → 13 + 32): low nibble in scales[5] high half,
  // high 2 bits in scales[8 + 13 % 4] at shift 2*(13/4).
  const int stored = 45;
  b.scales[13 - 8] = static_cast<uint8_t>((stored & 0xF) << 4);
  b.scales[8 + 13 % 4] = static_cast<uint8_t>((stored >> 4) << (2 * (13 / 4)));
  // All other sub-blocks have stored scale 0 → -32. Element 13*16 + 3 = 211: low bits 2, hmask set.
  const int e = 211;
  b.qs[32 * (e / 128) + e % 32] = static_cast<uint8_t>(2 << (2 * ((e % 128) / 32)));
  b.hmask[e % 32] = static_cast<uint8_t>(1 << (e / 32));
  const auto y = decode(DType::Q3_K, b);
  EXPECT_EQ(y[e], 13.f * 2);
  EXPECT_EQ(y[e + 1], 13.f * -4);
  EXPECT_EQ(y[0], -32.f * -4);
}

TEST(QuantLayout, Q4_KAndQ5_K) {
  BlockQ5_K b{};
  b.d = fp32_to_fp16(1.f);
  b.dmin = fp32_to_fp16(1.f);
  // Sub-block 6: scale 37, min 50 (j >= 4 packing); sub-block 1: scale 5, min 7.
  b.scales[6 + 4] = static_cast<uint8_t>((37 & 0xF) | ((50 & 0xF) << 4));
  b.scales[6 - 4] = static_cast<uint8_t>((37 >> 4) << 6);
  b.scales[6] = static_cast<uint8_t>((50 >> 4) << 6);
  b.scales[1] = 5;
  b.scales[5] = 7;
  // Element 6*32 + 9 = 201: chunk 3, low nibble of qs[96 + 9] (sub-block 2*3); 5th bit = bit 6
  // of qh[9].
  b.qs[96 + 9] = 0x0A;
  b.qh[9] = 1 << 6;
  b.qs[9] = 0x30;  // element 32 + 9 (sub-block 1) = 3
  const auto y = decode(DType::Q5_K, b);
  EXPECT_EQ(y[201], 37.f * (10 + 16) - 50.f);
  EXPECT_EQ(y[41], 5.f * 3 - 7.f);
  EXPECT_EQ(y[200], -50.f);

  BlockQ4_K c{};
  c.d = b.d;
  c.dmin = b.dmin;
  std::memcpy(c.scales, b.scales, sizeof c.scales);
  std::memcpy(c.qs, b.qs, sizeof c.qs);
  const auto z = decode(DType::Q4_K, c);
  EXPECT_EQ(z[201], 37.f * 10 - 50.f);
  EXPECT_EQ(z[41], 5.f * 3 - 7.f);
}

TEST(QuantLayout, Q6_K) {
  BlockQ6_K b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j - 8);
  // Element 128 + 96 + 4 = 228: half 1, quarter 3 → high nibble of ql[64 + 32 + 4], high bits
  // (qh[32 + 4] >> 6) & 3. Value 0x3F - 32 = 31.
  b.ql[64 + 32 + 4] = 0xF0;
  b.qh[32 + 4] = 3 << 6;
  const auto y = decode(DType::Q6_K, b);
  EXPECT_EQ(y[228], 0.5f * (228 / 16 - 8) * 31);
  EXPECT_EQ(y[0], 0.5f * -8 * -32);
}

TEST(QuantLayout, IQ4) {
  BlockIQ4_NL b{};
  b.d = fp32_to_fp16(1.f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::IQ4_NL, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], kvalues_iq4nl[j]);
    EXPECT_EQ(y[j + 16], kvalues_iq4nl[15 - j]);
  }

  BlockIQ4_XS c{};
  c.d = fp32_to_fp16(1.f);
  // Sub-block 5: ls = 0x2 | (3 << 4) = 50 → scale 18; others 0 → -32.
  c.scales_l[2] = 0x2 << 4;
  c.scales_h = 3 << 10;
  c.qs[16 * 5 + 1] = 0x9F;  // element 5*32+1 → kvalues[15]; element 5*32+17 → kvalues[9]
  const auto z = decode(DType::IQ4_XS, c);
  EXPECT_EQ(z[161], 18.f * kvalues_iq4nl[15]);
  EXPECT_EQ(z[177], 18.f * kvalues_iq4nl[9]);
  EXPECT_EQ(z[0], -32.f * kvalues_iq4nl[0]);
}
