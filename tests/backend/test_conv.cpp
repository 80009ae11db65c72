// conv2d / conv1d against a direct double-precision loop (on every ISA, since they run on
// matmul), pooling and upsampling against hand-worked and PyTorch-documented values.
// Tolerance: 1e-5 relative to the largest |reference| (f32, f16 and bf16 weights; the int8 path
// is never taken because convolution weights are float).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kernel_test_util.h"
#include "ops/conv.h"
#include "ops/pool.h"

namespace eight {
namespace {

using testing::filled;
using testing::random_floats;

struct ConvCase {
  int64_t c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

void check_conv(const ConvCase& c, DType wtype, std::array<int64_t, 2> pad_end = {-1, -1}) {
  SCOPED_TRACE(cat("c_in=", c.c_in, " h=", c.h, " w=", c.w, " k=", c.kh, "x", c.kw,
                   " groups=", c.groups, " ", dtype_name(wtype)));
  const auto xv = random_floats(c.c_in * c.h * c.w);
  auto wv = random_floats(c.c_out * (c.c_in / c.groups) * c.kh * c.kw);
  const auto bv = random_floats(c.c_out);
  const Tensor x = filled({c.c_in, c.h, c.w}, xv);
  Tensor w = Tensor::empty({c.c_out, c.c_in / c.groups, c.kh, c.kw}, wtype);
  for (size_t i = 0; i < wv.size(); ++i) {
    if (wtype == DType::F16) {
      w.data<uint16_t>()[i] = fp32_to_fp16(wv[i]);
      wv[i] = fp16_to_fp32(w.data<uint16_t>()[i]);
    } else if (wtype == DType::BF16) {
      w.data<uint16_t>()[i] = fp32_to_bf16(wv[i]);
      wv[i] = bf16_to_fp32(w.data<uint16_t>()[i]);
    } else {
      w.data<float>()[i] = wv[i];
    }
  }
  const Tensor b = filled({c.c_out}, bv);
  const ops::Conv2dParams p{.stride = {c.sh, c.sw},
                            .padding = {c.ph, c.pw},
                            .padding_end = pad_end,
                            .dilation = {c.dh, c.dw},
                            .groups = c.groups,
                            .bias = &b};
  const Dims shape = ops::conv2d_output_shape(x, w, p);
  for (int i = 0; i < 2; ++i) {
    const int64_t in = i == 0 ? c.h : c.w, k = i == 0 ? c.kh : c.kw, d = i == 0 ? c.dh : c.dw;
    const int64_t pad = i == 0 ? c.ph : c.pw, s = i == 0 ? c.sh : c.sw;
    const int64_t end = pad_end[i] < 0 ? pad : pad_end[i];
    EXPECT_EQ(shape[i + 1], (in + pad + end - d * (k - 1) - 1) / s + 1);
  }
  Tensor y = Tensor::empty(shape, DType::F32);
  ThreadPool pool(2);
  ops::conv2d(x, w, y, pool, p);
  const int64_t ho = shape[1], wo = shape[2], cg = c.c_in / c.groups, og = c.c_out / c.groups;
  double worst = 0, scale = 1e-30;
  for (int64_t co = 0; co < c.c_out; ++co)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        double acc = bv[co];
        const int64_t grp = co / og;
        for (int64_t ci = 0; ci < cg; ++ci)
          for (int64_t ky = 0; ky < c.kh; ++ky)
            for (int64_t kx = 0; kx < c.kw; ++kx) {
              const int64_t iy = oy * c.sh - c.ph + ky * c.dh, ix = ox * c.sw - c.pw + kx * c.dw;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              acc += static_cast<double>(xv[((grp * cg + ci) * c.h + iy) * c.w + ix]) *
                     wv[((co * cg + ci) * c.kh + ky) * c.kw + kx];
            }
        const double got = y.data<float>()[(co * ho + oy) * wo + ox];
        worst = std::max(worst, std::fabs(got - acc));
        scale = std::max(scale, std::fabs(acc));
      }
  EXPECT_LT(worst / scale, 1e-5);
  // A weight prepared once (as models hold it) gives the same bits, batched or not.
  const ops::Conv2dWeight prepared = ops::conv2d_prepare_weight(w, &pool);
  Tensor y2 = Tensor::empty(shape, DType::F32);
  ops::conv2d(x, prepared, y2, pool, p);
  EXPECT_EQ(0, std::memcmp(y.raw(), y2.raw(), y.nbytes()));
  const Tensor x2 = x.reshape({1, x.size(0), x.size(1), x.size(2)});
  Tensor y3 = Tensor::empty({1, shape[0], shape[1], shape[2]}, DType::F32);
  ops::conv2d(x2, ops::conv2d_prepare_weight(w), y3, pool, p);
  EXPECT_EQ(0, std::memcmp(y.raw(), y3.raw(), y.nbytes()));
}

TEST(Conv2d, MatchesDirectLoops) {
  check_conv({3, 17, 19, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1}, DType::F32);
  check_conv({4, 16, 15, 6, 3, 2, 2, 1, 0, 1, 1, 2, 2}, DType::F32);
  check_conv({8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8}, DType::F32);  // depthwise
  check_conv({5, 12, 13, 7, 4, 4, 2, 2, 1, 1, 1, 1, 1}, DType::F16);
  check_conv({2, 5, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1}, DType::F16);
  // SDXL's kinds at odd sizes: 3x3 stride 1 and 2 with padding 1, 1x1, bf16 weights.
  check_conv({33, 31, 17, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1}, DType::F16);
  check_conv({31, 33, 31, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1}, DType::F32);
  check_conv({33, 17, 15, 31, 1, 1, 1, 1, 0, 0, 1, 1, 1}, DType::BF16);
  // 64 x 3 x 3 taps over 65 x 63 pixels: the unfolded input (9.4 MiB) spans two tiles.
  check_conv({64, 65, 63, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1}, DType::F16);
  // The VAE encoder's downsampler: stride 2, zeros only below and to the right (0, 1, 0, 1).
  check_conv({33, 16, 18, 31, 3, 3, 2, 2, 0, 0, 1, 1, 1}, DType::F16, {1, 1});
  check_conv({5, 15, 12, 7, 3, 3, 2, 2, 0, 1, 1, 1, 1}, DType::F32, {2, 0});
}

TEST(Conv2d, BatchIsEachSampleAlone) {
  // x: [2, 5, 9, 11] -> y: [2, 7, 5, 6] (stride 2, padding 1); sample n equals conv2d(x[n]).
  const auto xv = random_floats(2 * 5 * 9 * 11), wv = random_floats(7 * 5 * 9);
  const Tensor x = filled({2, 5, 9, 11}, xv), w = filled({7, 5, 3, 3}, wv);
  const ops::Conv2dParams p{.stride = {2, 2}, .padding = {1, 1}};
  EXPECT_EQ(ops::conv2d_output_shape(x, w, p), (Dims{2, 7, 5, 6}));
  Tensor y = Tensor::empty({2, 7, 5, 6}, DType::F32);
  ThreadPool pool(2);
  ops::conv2d(x, w, y, pool, p);
  for (int64_t n = 0; n < 2; ++n) {
    Tensor yn = Tensor::empty({7, 5, 6}, DType::F32);
    ops::conv2d(x.slice(0, n, n + 1).reshape({5, 9, 11}), w, yn, pool, p);
    for (int64_t i = 0; i < yn.numel(); ++i)
      ASSERT_EQ(y.data<float>()[n * 210 + i], yn.data<float>()[i]) << n << " " << i;
  }
  Tensor q = Tensor::empty({7, 5, 3, 32}, DType::Q8_0);
  Tensor wide = filled({5, 9, 11}, std::vector<float>(xv.begin(), xv.begin() + 495));
  EXPECT_THROW(ops::conv2d(wide, q, y, pool, p), Error);
}

TEST(Conv1d, MatchesConv2dWithHeightOne) {
  const auto xv = random_floats(4 * 33), wv = random_floats(6 * 4 * 3);
  const Tensor x = filled({4, 33}, xv), w = filled({6, 4, 3}, wv);
  Tensor y = Tensor::empty({6, 17}, DType::F32);
  ThreadPool pool(1);
  ops::conv1d(x, w, y, pool, {.stride = 2, .padding = 1});
  for (int64_t co = 0; co < 6; ++co)
    for (int64_t o = 0; o < 17; ++o) {
      double acc = 0;
      for (int64_t ci = 0; ci < 4; ++ci)
        for (int64_t k = 0; k < 3; ++k) {
          const int64_t i = o * 2 - 1 + k;
          if (i >= 0 && i < 33)
            acc += static_cast<double>(xv[ci * 33 + i]) * wv[(co * 4 + ci) * 3 + k];
        }
      EXPECT_NEAR(y.data<float>()[co * 17 + o], acc, 1e-5);
    }
  Tensor bad = Tensor::empty({6, 16}, DType::F32);
  EXPECT_THROW(ops::conv1d(x, w, bad, pool, {.stride = 2, .padding = 1}), Error);
}

TEST(Pool2d, AvgAndMax) {
  const Tensor x = filled({1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  Tensor y = Tensor::empty({1, 2, 2}, DType::F32);
  ops::pool2d(x, y, {.kind = ops::PoolKind::Max});
  EXPECT_EQ(std::vector<float>(y.data<float>(), y.data<float>() + 4),
            (std::vector<float>{6, 8, 14, 16}));
  ops::pool2d(x, y, {.kind = ops::PoolKind::Avg});
  EXPECT_EQ(std::vector<float>(y.data<float>(), y.data<float>() + 4),
            (std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f}));
  // 3x3, stride 2, padding 1: corners average 4 values over an area of 9.
  ops::pool2d(x, y, {.kind = ops::PoolKind::Avg, .kernel = {3, 3}, .padding = {1, 1}});
  EXPECT_FLOAT_EQ(y.data<float>()[0], (1 + 2 + 5 + 6) / 9.f);
  Tensor wrong = Tensor::empty({1, 3, 3}, DType::F32);
  EXPECT_THROW(ops::pool2d(x, wrong, {}), Error);
}

TEST(Upsample, NearestAndBilinearMatchPyTorch) {
  const Tensor x = filled({1, 2, 2}, {1, 2, 3, 4});
  Tensor y = Tensor::empty({1, 4, 4}, DType::F32);
  ops::upsample(x, y, {.mode = ops::UpsampleMode::Nearest});
  EXPECT_EQ(std::vector<float>(y.data<float>(), y.data<float>() + 16),
            (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
  // torch.nn.functional.interpolate(x, size=4, mode="bilinear", align_corners=False)
  ops::upsample(x, y, {.mode = ops::UpsampleMode::Bilinear});
  const std::vector<float> ref = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                                  2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], ref[i]) << i;
}

}  // namespace
}  // namespace eight
