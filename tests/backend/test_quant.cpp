// Self-contained tests of the reference quantizers (no ../shared needed): round-trip error bounds
// per type, thread-count independence, edge cases, bad input, and hand-built blocks that pin the
// bit layouts independently of the encoder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "test_util.h"

using namespace eight;
using namespace eight::quant;

namespace {

struct TypeBound {
  DType type;
  double max_rel_rmse;  // RMSE / RMS of the input, for gaussian rows
};

// Bounds for N(0,1) rows, about 1.3x what the reference algorithms reach.
const TypeBound kQuantTypes[] = {
    {DType::F32, 0.0},    {DType::F16, 4e-4},  {DType::BF16, 3e-3}, {DType::Q4_0, 0.12},
    {DType::Q4_1, 0.12},  {DType::Q5_0, 0.06}, {DType::Q5_1, 0.06}, {DType::Q8_0, 8e-3},
    {DType::Q2_K, 0.42},  {DType::Q3_K, 0.23}, {DType::Q4_K, 0.11}, {DType::Q5_K, 0.055},
    {DType::Q6_K, 0.028}, {DType::Q8_K, 9e-3},
};

std::vector<float> gaussian(size_t n, float sigma = 1.f) {
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(eight::testing::rng());
  return v;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x, int64_t n_per_row,
                              ThreadPool* pool = nullptr) {
  const int64_t rows = static_cast<int64_t>(x.size()) / n_per_row;
  std::vector<uint8_t> q(dtype_row_bytes(t, n_per_row) * rows);
  EXPECT_EQ(quantize_rows(t, x.data(), q.data(), rows, n_per_row, pool), q.size());
  std::vector<float> y(x.size());
  dequantize_rows(t, q.data(), y.data(), rows, n_per_row, pool);
  return y;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / a.size());
}

double rms(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return std::sqrt(s / a.size());
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace

TEST(Quant, SupportedTypes) {
  for (const auto& tb : kQuantTypes) {
    EXPECT_TRUE(can_quantize(tb.type)) << dtype_name(tb.type);
    EXPECT_TRUE(can_dequantize(tb.type)) << dtype_name(tb.type);
  }
  EXPECT_TRUE(can_dequantize(DType::IQ4_NL));
  EXPECT_TRUE(can_dequantize(DType::IQ4_XS));
  EXPECT_FALSE(can_quantize(DType::IQ4_NL));
  EXPECT_FALSE(can_quantize(DType::IQ4_XS));
  EXPECT_FALSE(can_dequantize(DType::IQ2_XXS));
}

TEST(Quant, RoundTripErrorWithinBounds) {
  const int64_t n_per_row = 1024;
  const auto x = gaussian(n_per_row * 16);
  for (const auto& tb : kQuantTypes) {
    const auto y = round_trip(tb.type, x, n_per_row);
    const double rel = rmse(x, y) / rms(x);
    EXPECT_LE(rel, tb.max_rel_rmse) << dtype_name(tb.type);
    EXPECT_TRUE(all_finite(y)) << dtype_name(tb.type);
    std::printf("  %-5s relative rmse %.5f (bound %.5f)\n",
                std::string(dtype_name(tb.type)).c_str(), rel, tb.max_rel_rmse);
  }
}

TEST(Quant, MoreBitsMeansLessError) {
  const auto x = gaussian(256 * 64);
  const DType order[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K,
                         DType::Q5_K, DType::Q6_K, DType::Q8_0};
  double prev = 1e9;
  for (DType t : order) {
    const double e = rmse(x, round_trip(t, x, 256));
    EXPECT_LT(e, prev) << dtype_name(t);
    prev = e;
  }
}

TEST(Quant, ThreadCountDoesNotChangeBytes) {
  ThreadPool pool(3);
  for (const auto& tb : kQuantTypes) {
    const int64_t n_per_row = 2 * dtype_block_size(tb.type) * (tb.type == DType::F32 ? 32 : 1);
    for (int64_t rows : {1, 3, 7, 33}) {
      const auto x = gaussian(static_cast<size_t>(rows * n_per_row));
      const size_t bytes = dtype_row_bytes(tb.type, n_per_row) * rows;
      std::vector<uint8_t> a(bytes), b(bytes);
      quantize_rows(tb.type, x.data(), a.data(), rows, n_per_row, nullptr);
      quantize_rows(tb.type, x.data(), b.data(), rows, n_per_row, &pool);
      EXPECT_EQ(a, b) << dtype_name(tb.type) << " rows " << rows;
      // Row r of a batch equals quantize_row on that row alone.
      std::vector<uint8_t> one(dtype_row_bytes(tb.type, n_per_row));
      quantize_row(tb.type, x.data() + (rows - 1) * n_per_row, one.data(), n_per_row);
      EXPECT_EQ(0, std::memcmp(one.data(), a.data() + bytes - one.size(), one.size()));
    }
  }
}

TEST(Quant, ZerosStayZero) {
  const std::vector<float> x(512, 0.f);
  for (const auto& tb : kQuantTypes) {
    const auto y = round_trip(tb.type, x, 512);
    for (float v : y) ASSERT_EQ(v, 0.f) << dtype_name(tb.type);
  }
}

TEST(Quant, ConstantRows) {
  for (float c : {1.f, -0.37f, 1e-3f, 250.f}) {
    const std::vector<float> x(512, c);
    for (const auto& tb : kQuantTypes) {
      const auto y = round_trip(tb.type, x, 512);
      ASSERT_TRUE(all_finite(y)) << dtype_name(tb.type);
      // A constant is the easiest row there is: every format should get within a few percent.
      EXPECT_LE(rmse(x, y), 0.05 * std::fabs(c) + 1e-7) << dtype_name(tb.type) << " c=" << c;
    }
  }
}

TEST(Quant, HugeAndTinyMagnitudesStayFiniteAndRelative) {
  for (float sigma : {1e3f, 1e-2f}) {
    const auto x = gaussian(256 * 8, sigma);
    for (const auto& tb : kQuantTypes) {
      const auto y = round_trip(tb.type, x, 256);
      ASSERT_TRUE(all_finite(y)) << dtype_name(tb.type) << " sigma " << sigma;
      EXPECT_LE(rmse(x, y) / rms(x), tb.max_rel_rmse * 1.1 + 1e-4)
          << dtype_name(tb.type) << " sigma " << sigma;
    }
  }
  // Far below the fp16 scale range the formats lose precision (as in ggml), but stay finite and
  // stay within a few times the input's magnitude (fp16 subnormal grid).
  const auto x = gaussian(256 * 8, 1e-7f);
  for (const auto& tb : kQuantTypes) {
    const auto y = round_trip(tb.type, x, 256);
    ASSERT_TRUE(all_finite(y)) << dtype_name(tb.type);
    EXPECT_LE(rmse(x, y), 4 * rms(x)) << dtype_name(tb.type);
  }
}

TEST(Quant, OneOutlierPerBlock) {
  // A single large value must be represented closely (it sets the scale) and the rest stay finite.
  auto x = gaussian(256 * 4, 0.01f);
  for (size_t b = 0; b < x.size(); b += 256) x[b + 17] = 5.f;
  for (const auto& tb : kQuantTypes) {
    const auto y = round_trip(tb.type, x, 256);
    ASSERT_TRUE(all_finite(y));
    for (size_t b = 0; b < x.size(); b += 256)
      EXPECT_NEAR(y[b + 17], 5.f, 5.f * 0.15) << dtype_name(tb.type);
  }
}

TEST(Quant, Q8KSumsMatchQuants) {
  const auto x = gaussian(QK_K * 3);
  std::vector<BlockQ8_K> b(3);
  quantize_row(DType::Q8_K, x.data(), b.data(), QK_K * 3);
  for (const auto& blk : b) {
    for (int j = 0; j < QK_K / 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += blk.qs[16 * j + l];
      EXPECT_EQ(blk.bsums[j], s);
    }
    int amax = 0;
    for (int8_t q : blk.qs) amax = std::max(amax, std::abs(int(q)));
    EXPECT_EQ(amax, 127);
  }
}

TEST(Quant, BadInputIsAnError) {
  std::vector<float> x(300);
  std::vector<uint8_t> q(4096);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), q.data(), 300), Error);
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::IQ4_XS, x.data(), q.data(), 256), Error);
  EXPECT_THROW(dequantize_row(DType::IQ2_XXS, q.data(), x.data(), 256), Error);
  EXPECT_THROW(quantize_rows(DType::Q8_0, x.data(), q.data(), -1, 32), Error);
  try {
    quantize_row(DType::Q6_K, x.data(), q.data(), 100);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("100"), std::string::npos) << e.what();
  }
}

TEST(Quant, NonFiniteInputDoesNotCrash) {
  // Garbage in, garbage out, but no undefined float-to-int conversions or out-of-range levels.
  auto x = gaussian(512);
  x[3] = std::nanf("");
  x[300] = INFINITY;
  x[301] = -INFINITY;
  for (const auto& tb : kQuantTypes) {
    std::vector<uint8_t> q(dtype_row_bytes(tb.type, 512));
    quantize_row(tb.type, x.data(), q.data(), 512);
    std::vector<float> y(512);
    dequantize_row(tb.type, q.data(), y.data(), 512);
  }
}
