// Every Vulkan kernel against its CPU reference twin on fresh random inputs with odd sizes, with
// the tolerances per type written here. Helpers in vulkan_test_util.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant.h"
#include "backend/vulkan/vulkan.h"
#include "backend/vulkan_test_util.h"

using namespace eight;
using namespace eight::vulkan_test;

namespace {

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,   DType::Q4_1,
                              DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,   DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

// NMSE bounds of the device matmul against cpu::matmul_reference (float64 over the same decoded
// weights). Decoding on the device repeats the reference decoder's float operations (get_rows
// shows it bit-exact), so what is left is float32 accumulation in another order: measured on
// lavapipe ~1.5e-14 for every type on the matvec path (tree sums) and ~1.4e-13 on the tiled path
// (one running sum along k). The bounds keep two orders of magnitude of margin and are per type so
// a type with a looser path (an int8 dot product against quantized activations) can say so.
const std::map<DType, double> kMatmulTolerance = {
    {DType::F32, 1e-11},  {DType::F16, 1e-11},    {DType::BF16, 1e-11},  {DType::Q4_0, 1e-11},
    {DType::Q4_1, 1e-11}, {DType::Q5_0, 1e-11},   {DType::Q5_1, 1e-11},  {DType::Q8_0, 1e-11},
    {DType::Q2_K, 1e-11}, {DType::Q3_K, 1e-11},   {DType::Q4_K, 1e-11},  {DType::Q5_K, 1e-11},
    {DType::Q6_K, 1e-11}, {DType::IQ4_NL, 1e-11}, {DType::IQ4_XS, 1e-11}};

}  // namespace

TEST(Vulkan, MatmulMatchesCpuReferenceForEveryType) {
  EIGHT_REQUIRE_VULKAN();
  for (DType type : kWeightTypes) {
    ASSERT_TRUE(vulkan::matmul_weight_type_supported(type)) << dtype_name(type);
    // NMSE over every output of the type (one output alone can cancel to ~0 and make a ratio
    // meaningless), and per output the float32 summation bound k * 2^-24 * sum |w x|.
    double err[2] = {0, 0}, ref[2] = {0, 0};  // [0]: matvec path (m <= 8), [1]: tiled
    const bool k_quant = dtype_block_size(type) == 256;
    for (int64_t k :
         k_quant ? std::vector<int64_t>{256, 512} : std::vector<int64_t>{32, 96, 256, 512}) {
      for (int64_t n : {1, 7, 33, 257}) {
        for (int64_t m : {1, 5, 70}) {  // 70: the tiled prompt path, with a partial tile
          const auto w = random_weights(type, n, k);
          const auto x = eight::testing::random_floats(static_cast<size_t>(m * k));
          std::vector<float> want(static_cast<size_t>(m * n));
          cpu::matmul_reference({.m = m,
                                 .n = n,
                                 .k = k,
                                 .x = x.data(),
                                 .ldx = k,
                                 .w_type = type,
                                 .w = w.data(),
                                 .ldw = dtype_row_bytes(type, k),
                                 .y = want.data(),
                                 .ldy = n});
          // Put every operand at an offset that is not a multiple of the binding alignment.
          const size_t w_at = 2 * dtype_block_bytes(type);
          auto dw = std::make_unique<vulkan::Buffer>(device(), w.size() + w_at);
          vulkan::upload(*dw, w_at, w.data(), w.size());
          auto dx = std::make_unique<vulkan::Buffer>(device(), x.size() * 4 + 12);
          vulkan::upload(*dx, 12, x.data(), x.size() * 4);
          auto dy = std::make_unique<vulkan::Buffer>(device(), want.size() * 4 + 4);
          vulkan::matmul({.m = m,
                          .n = n,
                          .k = k,
                          .x = dref(dx, 12),
                          .ldx = k,
                          .w_type = type,
                          .w = dref(dw, w_at),
                          .ldw = dtype_row_bytes(type, k),
                          .y = dref(dy, 4),
                          .ldy = n});
          const auto got = to_host(*dy, want.size(), 4);
          std::vector<float> wf(static_cast<size_t>(n * k));
          dequantize_rows(type, w.data(), wf.data(), n, k);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double abs_sum = 0;
              for (int64_t l = 0; l < k; ++l)
                abs_sum += std::fabs(double(wf[static_cast<size_t>(j * k + l)]) *
                                     x[static_cast<size_t>(i * k + l)]);
              const size_t at = static_cast<size_t>(i * n + j);
              const double e = double(got[at]) - want[at];
              ASSERT_LE(std::fabs(e), double(k) * 0x1p-24 * abs_sum + 1e-30)
                  << dtype_name(type) << " m=" << m << " n=" << n << " k=" << k << " y[" << i << ","
                  << j << "]";
              err[m > 8] += e * e;
              ref[m > 8] += double(want[at]) * want[at];
            }
        }
      }
    }
    for (int path : {0, 1}) {
      const double e = err[path] / ref[path];
      EXPECT_LT(e, kMatmulTolerance.at(type)) << dtype_name(type) << (path ? " tiled" : " matvec");
      std::printf("[vulkan] matmul %-6s %-6s NMSE %.3g\n", std::string(dtype_name(type)).c_str(),
                  path ? "tiled" : "matvec", e);
    }
  }
}

TEST(Vulkan, MatmulTakesFloatRowsOfAnyLength) {
  EIGHT_REQUIRE_VULKAN();
  // Convolutions as matmuls: CLIP's patch embedding has k = 3 x 14 x 14 = 588, Whisper's first
  // conv k = 80 x 3 = 240; neither is a multiple of 32.
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t k : {1, 7, 240, 588}) {
      for (int64_t m : {1, 3, 20}) {
        const int64_t n = 9;
        const auto wf = eight::testing::random_floats(static_cast<size_t>(n * k));
        std::vector<uint8_t> w(dtype_row_bytes(type, k) * static_cast<size_t>(n));
        quantize_rows(type, wf.data(), w.data(), n, k);
        const auto x = eight::testing::random_floats(static_cast<size_t>(m * k));
        std::vector<float> want(static_cast<size_t>(m * n));
        cpu::matmul_reference({.m = m,
                               .n = n,
                               .k = k,
                               .x = x.data(),
                               .ldx = k,
                               .w_type = type,
                               .w = w.data(),
                               .ldw = dtype_row_bytes(type, k),
                               .y = want.data(),
                               .ldy = n});
        auto dw = to_device(w), dx = to_device(x);
        auto dy = std::make_unique<vulkan::Buffer>(device(), want.size() * 4);
        vulkan::matmul({.m = m,
                        .n = n,
                        .k = k,
                        .x = dref(dx),
                        .ldx = k,
                        .w_type = type,
                        .w = dref(dw),
                        .ldw = dtype_row_bytes(type, k),
                        .y = dref(dy),
                        .ldy = n});
        EXPECT_LT(nmse(to_host(*dy, want.size()), want), 1e-11)
            << dtype_name(type) << " m=" << m << " k=" << k;
      }
      // get_rows of the same odd-length rows.
      const int64_t rows = 4;
      const auto tf = eight::testing::random_floats(static_cast<size_t>(rows * k));
      std::vector<uint8_t> table(dtype_row_bytes(type, k) * static_cast<size_t>(rows));
      quantize_rows(type, tf.data(), table.data(), rows, k);
      std::vector<float> want(static_cast<size_t>(2 * k));
      dequantize_row(type, table.data() + 3 * dtype_row_bytes(type, k), want.data(), k);
      dequantize_row(type, table.data(), want.data() + k, k);
      auto dt = to_device(table), di = to_device(std::vector<int32_t>{3, 0});
      auto dout = std::make_unique<vulkan::Buffer>(device(), want.size() * 4);
      vulkan::get_rows(type, dref(dt), dtype_row_bytes(type, k), rows, dref(di), dref(dout), 2, k);
      EXPECT_EQ(to_host(*dout, want.size()), want) << dtype_name(type) << " k=" << k;
    }
  }
}

TEST(Vulkan, MatmulCoversMoreRowsThanOneGridDimension) {
  EIGHT_REQUIRE_VULKAN();
  // An LM head's vocabulary (e.g. 151936) exceeds the 65535 workgroups of one grid dimension.
  const int64_t n = 66000, k = 32;
  const auto w = random_weights(DType::Q4_0, n, k);
  const auto x = eight::testing::random_floats(static_cast<size_t>(k));
  std::vector<float> want(static_cast<size_t>(n));
  cpu::matmul_reference({.m = 1,
                         .n = n,
                         .k = k,
                         .x = x.data(),
                         .ldx = k,
                         .w_type = DType::Q4_0,
                         .w = w.data(),
                         .ldw = dtype_row_bytes(DType::Q4_0, k),
                         .y = want.data(),
                         .ldy = n});
  auto dw = to_device(w), dx = to_device(x);
  auto dy = std::make_unique<vulkan::Buffer>(device(), want.size() * 4);
  vulkan::matmul({.m = 1,
                  .n = n,
                  .k = k,
                  .x = dref(dx),
                  .ldx = k,
                  .w_type = DType::Q4_0,
                  .w = dref(dw),
                  .ldw = dtype_row_bytes(DType::Q4_0, k),
                  .y = dref(dy),
                  .ldy = n});
  EXPECT_LT(nmse(to_host(*dy, want.size()), want), 1e-11);
}

TEST(Vulkan, MatmulRejectsWhatItCannotRun) {
  EIGHT_REQUIRE_VULKAN();
  auto b = std::make_unique<vulkan::Buffer>(device(), 4096);
  EXPECT_THROW(vulkan::matmul({.m = 1,
                               .n = 1,
                               .k = 100,
                               .x = dref(b),
                               .ldx = 100,
                               .w_type = DType::Q4_0,
                               .w = dref(b),
                               .ldw = 64,
                               .y = dref(b),
                               .ldy = 1}),
               Error);  // k not a multiple of 32
  EXPECT_THROW(vulkan::matmul({.m = 1,
                               .n = 64,
                               .k = 256,
                               .x = dref(b),
                               .ldx = 256,
                               .w_type = DType::F32,
                               .w = dref(b),
                               .ldw = 1024,
                               .y = dref(b),
                               .ldy = 64}),
               Error);  // weights past the buffer
  EXPECT_FALSE(vulkan::matmul_weight_type_supported(DType::Q8_K));
}

TEST(Vulkan, GetRowsDecodesEveryTypeExactly) {
  EIGHT_REQUIRE_VULKAN();
  for (DType type : kWeightTypes) {
    const int64_t cols = dtype_block_size(type) == 256 ? 512 : 96, rows = 9;
    const auto w = random_weights(type, rows, cols);
    const std::vector<int32_t> ids = {3, 0, 8, -1, 8, 9, 5};
    const size_t row_bytes = dtype_row_bytes(type, cols);
    std::vector<float> want(ids.size() * static_cast<size_t>(cols), 0.f);
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= 0 && ids[i] < rows)
        dequantize_row(type, w.data() + static_cast<size_t>(ids[i]) * row_bytes,
                       want.data() + i * static_cast<size_t>(cols), cols);
    auto dw = to_device(w);
    auto di = to_device(ids);
    auto dout = std::make_unique<vulkan::Buffer>(device(), want.size() * 4);
    vulkan::get_rows(type, dref(dw), row_bytes, rows, dref(di), dref(dout),
                     static_cast<int64_t>(ids.size()), cols);
    const auto got = to_host(*dout, want.size());
    // The same float operations as the reference decoder; only a fused multiply-add in
    // d * q + m (Q4_1, Q5_1) or d * q - m (K-quants) may differ in the last bit.
    EXPECT_LT(nmse(got, want), 1e-12) << dtype_name(type);
    int exact = 0;
    for (size_t i = 0; i < got.size(); ++i) exact += got[i] == want[i];
    std::printf("[vulkan] get_rows %-6s %d of %zu values bit-exact\n",
                std::string(dtype_name(type)).c_str(), exact, got.size());
  }
}

TEST(Vulkan, RmsNormMatchesReference) {
  EIGHT_REQUIRE_VULKAN();
  for (int64_t n : {1, 7, 33, 257, 1000}) {
    const int64_t rows = 3;
    const auto x = eight::testing::random_floats(static_cast<size_t>(rows * n));
    const auto w = eight::testing::random_floats(static_cast<size_t>(n));
    for (bool with_w : {true, false}) {
      std::vector<float> want(x.size());
      for (int64_t r = 0; r < rows; ++r)
        cpu::rms_norm_reference(x.data() + r * n, with_w ? w.data() : nullptr, want.data() + r * n,
                                n, 1e-5f);
      auto dx = to_device(x), dw = to_device(w);
      auto dy = std::make_unique<vulkan::Buffer>(device(), x.size() * 4);
      vulkan::rms_norm(dref(dx), with_w ? dref(dw) : vulkan::BufferRef{}, dref(dy), rows, n, 1e-5f);
      EXPECT_LT(nmse(to_host(*dy, x.size()), want), 1e-12) << "n=" << n << " w=" << with_w;
    }
  }
}

TEST(Vulkan, SoftmaxMatchesReferenceWithMaskAndScale) {
  EIGHT_REQUIRE_VULKAN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 7, 33, 257, 1000}) {
    const int64_t rows = 4, mask_rows = 2;
    const auto x = eight::testing::random_floats(static_cast<size_t>(rows * n), -4.f, 4.f);
    auto mask = eight::testing::random_floats(static_cast<size_t>(mask_rows * n));
    for (int64_t i = 0; i < n; i += 3) mask[static_cast<size_t>(i)] = -inf;   // row 0 partly masked
    for (int64_t i = 0; i < n; ++i) mask[static_cast<size_t>(n + i)] = -inf;  // row 1 fully
    for (bool with_mask : {true, false}) {
      std::vector<float> want(x.size());
      for (int64_t r = 0; r < rows; ++r)
        cpu::softmax_reference(x.data() + r * n,
                               with_mask ? mask.data() + (r % mask_rows) * n : nullptr,
                               want.data() + r * n, n, 0.7f);
      auto dx = to_device(x), dm = to_device(mask);
      auto dy = std::make_unique<vulkan::Buffer>(device(), x.size() * 4);
      vulkan::softmax(dref(dx), with_mask ? dref(dm) : vulkan::BufferRef{}, mask_rows, dref(dy),
                      rows, n, 0.7f);
      const auto got = to_host(*dy, x.size());
      EXPECT_LT(nmse(got, want), 1e-12) << "n=" << n << " mask=" << with_mask;
      for (float v : got) ASSERT_TRUE(std::isfinite(v));
    }
  }
}

TEST(Vulkan, ElementwiseOpsMatchReference) {
  EIGHT_REQUIRE_VULKAN();
  for (int64_t n : {1, 7, 33, 257, 70001}) {
    const auto a = eight::testing::random_floats(static_cast<size_t>(n), -6.f, 6.f);
    const auto b = eight::testing::random_floats(static_cast<size_t>(n));
    auto da = to_device(a), db = to_device(b);
    auto dy = std::make_unique<vulkan::Buffer>(device(), a.size() * 4);
    std::vector<float> want(a.size());

    cpu::swiglu_reference(a.data(), b.data(), want.data(), n);
    vulkan::swiglu(dref(da), dref(db), dref(dy), n);
    EXPECT_LT(nmse(to_host(*dy, a.size()), want), 1e-12) << "swiglu n=" << n;

    cpu::binary_reference(cpu::BinaryOp::Add, a.data(), b.data(), want.data(), n);
    vulkan::binary(vulkan::BinaryOp::Add, dref(da), dref(db), dref(dy), n, n);
    EXPECT_EQ(to_host(*dy, a.size()), want) << "add n=" << n;

    cpu::binary_reference(cpu::BinaryOp::Mul, a.data(), b.data(), want.data(), n);
    vulkan::binary(vulkan::BinaryOp::Mul, dref(da), dref(db), dref(dy), n, n);
    EXPECT_EQ(to_host(*dy, a.size()), want) << "mul n=" << n;

    for (size_t i = 0; i < a.size(); ++i) want[i] = a[i] * 0.37f;
    vulkan::scale(dref(da), 0.37f, dref(dy), n);
    EXPECT_EQ(to_host(*dy, a.size()), want) << "scale n=" << n;
  }
  // A row broadcast: y[r, i] = a[r, i] + b[i].
  const int64_t rows = 5, cols = 33;
  const auto a = eight::testing::random_floats(static_cast<size_t>(rows * cols));
  const auto b = eight::testing::random_floats(static_cast<size_t>(cols));
  std::vector<float> want(a.size());
  for (int64_t r = 0; r < rows; ++r)
    cpu::binary_reference(cpu::BinaryOp::Add, a.data() + r * cols, b.data(), want.data() + r * cols,
                          cols);
  auto da = to_device(a), db = to_device(b);
  auto dy = std::make_unique<vulkan::Buffer>(device(), a.size() * 4);
  vulkan::binary(vulkan::BinaryOp::Add, dref(da), dref(db), dref(dy), rows * cols, cols);
  EXPECT_EQ(to_host(*dy, a.size()), want);
}

TEST(Vulkan, UnaryOpsMatchReference) {
  EIGHT_REQUIRE_VULKAN();
  const std::pair<cpu::UnaryOp, vulkan::UnaryOp> ops[] = {
      {cpu::UnaryOp::SiLU, vulkan::UnaryOp::SiLU},
      {cpu::UnaryOp::GELU, vulkan::UnaryOp::GELU},
      {cpu::UnaryOp::GELUTanh, vulkan::UnaryOp::GELUTanh},
      {cpu::UnaryOp::QuickGELU, vulkan::UnaryOp::QuickGELU},
      {cpu::UnaryOp::ReLU, vulkan::UnaryOp::ReLU}};
  for (int64_t n : {1, 7, 257, 5000}) {
    auto x = eight::testing::random_floats(static_cast<size_t>(n), -8.f, 8.f);
    if (n > 3) x[0] = -100.f, x[1] = 100.f, x[2] = 0.f;  // saturated tails and zero
    auto dx = to_device(x);
    auto dy = std::make_unique<vulkan::Buffer>(device(), x.size() * 4);
    for (auto [cop, vop] : ops) {
      std::vector<float> want(x.size());
      cpu::unary_reference(cop, x.data(), want.data(), n);
      vulkan::unary(vop, dref(dx), dref(dy), n);
      const auto got = to_host(*dy, x.size());
      // Per value: erf is approximated on the device (absolute error < 1.5e-7) and 1 + tanh
      // cancels in float32 in the negative tail, so the bound scales with |x|, not with the
      // (tiny) result there. Over the row: NMSE.
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(std::isfinite(got[i])) << "op " << static_cast<int>(cop) << " x=" << x[i];
        ASSERT_LE(std::fabs(double(got[i]) - want[i]),
                  4e-7 * std::fabs(x[i]) + 2e-6 * std::fabs(want[i]))
            << "op " << static_cast<int>(cop) << " x=" << x[i];
      }
      if (n >= 257) {  // enough values that the row is not all tail
        EXPECT_LT(nmse(got, want), 1e-12) << "op " << static_cast<int>(cop) << " n=" << n;
      }
    }
  }
}

TEST(Vulkan, LayerNormMatchesReference) {
  EIGHT_REQUIRE_VULKAN();
  for (int64_t n : {1, 7, 33, 257, 1000}) {
    const int64_t rows = 3;
    // An offset mean, so a one-pass variance would lose digits.
    const auto x = eight::testing::random_floats(static_cast<size_t>(rows * n), 9.f, 11.f);
    const auto w = eight::testing::random_floats(static_cast<size_t>(n));
    const auto b = eight::testing::random_floats(static_cast<size_t>(n));
    for (bool affine : {true, false}) {
      std::vector<float> want(x.size());
      for (int64_t r = 0; r < rows; ++r)
        cpu::layer_norm_reference(x.data() + r * n, affine ? w.data() : nullptr,
                                  affine ? b.data() : nullptr, want.data() + r * n, n, 1e-5f);
      auto dx = to_device(x), dw = to_device(w), db = to_device(b);
      auto dy = std::make_unique<vulkan::Buffer>(device(), x.size() * 4);
      vulkan::layer_norm(dref(dx), affine ? dref(dw) : vulkan::BufferRef{},
                         affine ? dref(db) : vulkan::BufferRef{}, dref(dy), rows, n, 1e-5f);
      EXPECT_LT(nmse(to_host(*dy, x.size()), want), 1e-10) << "n=" << n << " affine=" << affine;
    }
  }
}

TEST(Vulkan, ArgmaxPicksTheFirstLargest) {
  EIGHT_REQUIRE_VULKAN();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t n = 1000;
  std::vector<float> x = eight::testing::random_floats(static_cast<size_t>(4 * n));
  x[static_cast<size_t>(0 * n + 777)] = 5.f;  // row 0: one maximum
  x[static_cast<size_t>(1 * n + 900)] = 5.f;  // row 1: a tie, the first one wins
  x[static_cast<size_t>(1 * n + 300)] = 5.f;
  x[static_cast<size_t>(2 * n + 5)] = nan;  // row 2: NaNs skipped
  x[static_cast<size_t>(2 * n + 6)] = 9.f;
  x[static_cast<size_t>(2 * n + 7)] = nan;
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(3 * n + i)] = nan;  // row 3: no numbers
  auto dx = to_device(x);
  auto dout = std::make_unique<vulkan::Buffer>(device(), 4 * sizeof(int32_t));
  vulkan::argmax(dref(dx), dref(dout), 4, n);
  std::vector<int32_t> got(4);
  vulkan::download(*dout, 0, got.data(), got.size() * sizeof(int32_t));
  EXPECT_EQ(got, (std::vector<int32_t>{777, 300, 6, 0}));
}

TEST(Vulkan, ConvertRowsWritesTheKvCacheTypes) {
  EIGHT_REQUIRE_VULKAN();
  const int64_t rows = 5, n = 96, ld_src = 100;
  const auto x = eight::testing::random_floats(static_cast<size_t>(rows * ld_src), -3.f, 3.f);
  auto dx = to_device(x);
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    // Rows land at an odd multiple of 2 bytes, so fields share words with their neighbours.
    const size_t row_bytes = dtype_row_bytes(type, n),
                 ld_dst = row_bytes + (type == DType::F32 ? 4 : 2);
    const size_t at = type == DType::F32 ? 8 : 6;
    std::vector<uint8_t> fill(at + ld_dst * rows, 0xAB);
    auto dd = to_device(fill);
    vulkan::convert_rows(dref(dx), ld_src, type, dref(dd, at), ld_dst, rows, n);
    std::vector<uint8_t> got(fill.size());
    vulkan::download(*dd, 0, got.data(), got.size());
    std::vector<float> want_f(static_cast<size_t>(n)), got_f(static_cast<size_t>(n));
    std::vector<uint8_t> want_q(row_bytes);
    double err = 0, ref = 0;
    int exact = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = got.data() + at + static_cast<size_t>(r) * ld_dst;
      quantize_row(type, x.data() + r * ld_src, want_q.data(), n);
      exact += std::memcmp(row, want_q.data(), row_bytes) == 0;
      dequantize_row(type, want_q.data(), want_f.data(), n);
      dequantize_row(type, row, got_f.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        err += (double(got_f[i]) - want_f[i]) * (double(got_f[i]) - want_f[i]);
        ref += double(want_f[i]) * want_f[i];
      }
      // The gap bytes between rows are untouched.
      for (size_t b = row_bytes; b < ld_dst; ++b) EXPECT_EQ(row[b], 0xAB) << dtype_name(type);
    }
    for (size_t b = 0; b < at; ++b) EXPECT_EQ(got[b], 0xAB) << dtype_name(type);
    // F32 and F16 are exact; Q8_0 may differ where the device's division rounds d differently.
    if (type != DType::Q8_0) {
      EXPECT_EQ(exact, rows) << dtype_name(type);
    }
    EXPECT_LT(ref > 0 ? err / ref : err, 1e-6) << dtype_name(type);
    std::printf("[vulkan] convert_rows %-5s %d of %lld rows bit-exact, NMSE vs CPU %.3g\n",
                std::string(dtype_name(type)).c_str(), exact, static_cast<long long>(rows),
                err / ref);
  }
  // And a plain recorded copy.
  auto dc = std::make_unique<vulkan::Buffer>(device(), 64);
  vulkan::copy(dref(dx, 4), dref(dc, 8), 40);
  EXPECT_EQ(to_host(*dc, 10, 8), std::vector<float>(x.begin() + 1, x.begin() + 11));
}

TEST(Vulkan, AttentionMatchesReference) {
  EIGHT_REQUIRE_VULKAN();
  struct Case {
    int64_t tq, tk, n_head, n_kv_head, d, pos0, window;
    bool causal;
  };
  const Case cases[] = {
      {1, 70, 4, 2, 64, 69, 0, true},   // decode over two key chunks, grouped heads
      {5, 5, 2, 2, 32, 0, 0, true},     // a short prompt
      {7, 77, 4, 1, 128, 70, 0, true},  // prompt continuing a cache, one KV head
      {6, 40, 2, 2, 64, 34, 3, true},   // sliding window
      {9, 9, 3, 3, 96, 0, 0, false},    // encoder (no mask)
      {3, 0, 2, 2, 32, 0, 0, false},    // no keys: zeros
  };
  for (DType kv : {DType::F32, DType::F16, DType::Q8_0}) {
    double err = 0, ref = 0;
    for (const Case& c : cases) {
      const size_t head_bytes = dtype_row_bytes(kv, c.d);
      const size_t row_bytes = head_bytes * static_cast<size_t>(c.n_kv_head);
      const int64_t q_cols = c.n_head * c.d;
      const auto q = eight::testing::random_floats(static_cast<size_t>(c.tq * q_cols));
      const int64_t kv_vals = std::max<int64_t>(1, c.tk) * c.n_kv_head * c.d;
      const auto kf = eight::testing::random_floats(static_cast<size_t>(kv_vals));
      const auto vf = eight::testing::random_floats(static_cast<size_t>(kv_vals));
      std::vector<uint8_t> kb(row_bytes * static_cast<size_t>(std::max<int64_t>(1, c.tk)));
      std::vector<uint8_t> vb(kb.size());
      quantize_rows(kv, kf.data(), kb.data(), kv_vals / c.d, c.d);
      quantize_rows(kv, vf.data(), vb.data(), kv_vals / c.d, c.d);
      std::vector<float> want(static_cast<size_t>(c.tq * q_cols));
      const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
      cpu::attention_reference({.tq = c.tq,
                                .tk = c.tk,
                                .n_head = c.n_head,
                                .n_kv_head = c.n_kv_head,
                                .d = c.d,
                                .q = q.data(),
                                .ldq = q_cols,
                                .kv_type = kv,
                                .k = kb.data(),
                                .v = vb.data(),
                                .ldk = row_bytes,
                                .ldv = row_bytes,
                                .out = want.data(),
                                .ldo = q_cols,
                                .scale = scale,
                                .causal = c.causal,
                                .pos0 = c.pos0,
                                .window = c.window});
      auto dq = to_device(q), dk = to_device(kb), dv = to_device(vb);
      auto dout = std::make_unique<vulkan::Buffer>(device(), want.size() * 4);
      vulkan::attention({.tq = c.tq,
                         .tk = c.tk,
                         .n_head = c.n_head,
                         .n_kv_head = c.n_kv_head,
                         .d = c.d,
                         .q = dref(dq),
                         .ldq = q_cols,
                         .kv_type = kv,
                         .k = dref(dk),
                         .v = dref(dv),
                         .ldk = row_bytes,
                         .ldv = row_bytes,
                         .out = dref(dout),
                         .ldo = q_cols,
                         .scale = scale,
                         .causal = c.causal,
                         .pos0 = c.pos0,
                         .window = c.window});
      const auto got = to_host(*dout, want.size());
      if (c.tk == 0) {
        EXPECT_EQ(got, want) << "no keys";
        continue;
      }
      const double e = nmse(got, want);
      EXPECT_LT(e, 1e-11) << dtype_name(kv) << " tq=" << c.tq << " tk=" << c.tk << " d=" << c.d;
      for (size_t i = 0; i < got.size(); ++i) {
        err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        ref += double(want[i]) * want[i];
      }
    }
    std::printf("[vulkan] attention kv=%-5s NMSE %.3g\n", std::string(dtype_name(kv)).c_str(),
                err / ref);
  }
}

TEST(Vulkan, RopeMatchesReferenceInBothStyles) {
  EIGHT_REQUIRE_VULKAN();
  const int64_t T = 5, n_head = 3;
  for (auto [head_dim, n_dims] : {std::pair<int64_t, int64_t>{64, 64}, {66, 32}, {8, 2}}) {
    for (auto style : {cpu::RopeStyle::Norm, cpu::RopeStyle::Neox}) {
      const auto x = eight::testing::random_floats(static_cast<size_t>(T * n_head * head_dim));
      // cos_sin [T, n_dims / 2, 2] from random angles, as nn::rope_table writes them.
      const int64_t half = n_dims / 2;
      const auto angles = eight::testing::random_floats(static_cast<size_t>(T * half), -3.f, 3.f);
      std::vector<float> cs(static_cast<size_t>(T * n_dims)), c(static_cast<size_t>(half)),
          s(static_cast<size_t>(half));
      std::vector<float> want(x.size());
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < half; ++i) {
          const float a = angles[static_cast<size_t>(t * half + i)];
          c[static_cast<size_t>(i)] = cs[static_cast<size_t>(t * n_dims + 2 * i)] = std::cos(a);
          s[static_cast<size_t>(i)] = cs[static_cast<size_t>(t * n_dims + 2 * i + 1)] = std::sin(a);
        }
        for (int64_t h = 0; h < n_head; ++h) {
          const size_t at = static_cast<size_t>((t * n_head + h) * head_dim);
          cpu::rope_reference(x.data() + at, want.data() + at, c.data(), s.data(), n_dims, head_dim,
                              style);
        }
      }
      const auto vstyle =
          style == cpu::RopeStyle::Neox ? vulkan::RopeStyle::Neox : vulkan::RopeStyle::Norm;
      auto dx = to_device(x), dcs = to_device(cs);
      auto dy = std::make_unique<vulkan::Buffer>(device(), x.size() * 4);
      const int64_t row = n_head * head_dim;
      vulkan::rope(dref(dx), row, dref(dy), row, dref(dcs), T, n_head, head_dim, n_dims, vstyle);
      EXPECT_LT(nmse(to_host(*dy, x.size()), want), 1e-13) << head_dim << "/" << n_dims;
      vulkan::rope(dref(dx), row, dref(dx), row, dref(dcs), T, n_head, head_dim, n_dims,
                   vstyle);  // in place
      EXPECT_LT(nmse(to_host(*dx, x.size()), want), 1e-13) << "in place " << head_dim;
    }
  }
}
