// conv_transpose1d against PyTorch's ConvTranspose1d definition as a direct double-precision
// loop: y[o, t * stride + j * dilation] = bias[o] + sum_i x[i, t] w[i, o, j]. Tolerance 1e-5
// relative to the largest |reference|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "ops/conv.h"

namespace eight {
namespace {

using testing::filled;
using testing::random_floats;

void check_case(int64_t c_in, int64_t len, int64_t c_out, int64_t k, int64_t stride,
                int64_t dilation, bool bias, int threads) {
  SCOPED_TRACE(cat("c_in=", c_in, " L=", len, " c_out=", c_out, " k=", k, " stride=", stride,
                   " dilation=", dilation, " threads=", threads));
  const auto xv = random_floats(size_t(c_in * len)), wv = random_floats(size_t(c_in * c_out * k)),
             bv = random_floats(size_t(c_out));
  const Tensor x = filled({c_in, len}, xv), w = filled({c_in, c_out, k}, wv),
               b = filled({c_out}, bv);
  const ops::ConvTranspose1dParams p{
      .stride = stride, .dilation = dilation, .bias = bias ? &b : nullptr};
  const Dims shape = ops::conv_transpose1d_output_shape(x, w, p);
  const int64_t l_out = (len - 1) * stride + dilation * (k - 1) + 1;
  ASSERT_EQ(shape, (Dims{c_out, l_out}));
  const Tensor y = Tensor::empty(shape, DType::F32);
  ThreadPool pool(threads);
  ops::conv_transpose1d(x, w, y, pool, p);

  std::vector<double> ref(static_cast<size_t>(c_out * l_out), 0.0);
  for (int64_t o = 0; o < c_out; ++o)
    for (int64_t q = 0; q < l_out; ++q) ref[o * l_out + q] = bias ? bv[o] : 0.0;
  for (int64_t i = 0; i < c_in; ++i)
    for (int64_t t = 0; t < len; ++t)
      for (int64_t o = 0; o < c_out; ++o)
        for (int64_t j = 0; j < k; ++j)
          ref[o * l_out + t * stride + j * dilation] +=
              double(xv[i * len + t]) * wv[(i * c_out + o) * k + j];
  double peak = 0, err = 0;
  for (size_t n = 0; n < ref.size(); ++n) {
    peak = std::max(peak, std::abs(ref[n]));
    err = std::max(err, std::abs(ref[n] - y.data<float>()[n]));
  }
  EXPECT_LE(err, 1e-5 * peak) << "max |err| " << err << " of peak " << peak;
}

TEST(ConvTranspose1d, MatchesDefinition) {
  check_case(1, 1, 1, 1, 1, 1, false, 1);
  check_case(3, 7, 2, 4, 2, 1, true, 2);
  check_case(16, 25, 8, 16, 8, 1, true, 3);  // SEANet's kernel 2 * ratio, stride ratio
  check_case(8, 13, 4, 10, 5, 1, true, 2);
  check_case(5, 9, 3, 3, 1, 2, false, 1);  // dilated, overlapping taps
  check_case(4, 6, 6, 2, 4, 1, true, 2);   // stride above the kernel: gaps stay at the bias
}

TEST(ConvTranspose1d, LargeInputRunsInTiles) {
  // More than one 8 MiB product tile: 4096 frames x (64 channels x 16 taps x 4 bytes) = 16 MiB.
  check_case(32, 4096, 64, 16, 8, 1, true, 2);
}

TEST(ConvTranspose1d, RejectsBadShapes) {
  ThreadPool pool(1);
  const Tensor x = Tensor::zeros({4, 5}, DType::F32), w = Tensor::zeros({3, 2, 4}, DType::F32);
  const Tensor y = Tensor::zeros({2, 12}, DType::F32);
  EXPECT_THROW(ops::conv_transpose1d(x, w, y, pool, {.stride = 2}), Error);  // C_in 4 vs 3
  const Tensor w4 = Tensor::zeros({4, 2, 4}, DType::F32);
  EXPECT_THROW(
      ops::conv_transpose1d(x, w4, Tensor::zeros({2, 11}, DType::F32), pool, {.stride = 2}),
      Error);  // L_out is 12
  EXPECT_THROW(ops::conv_transpose1d(x, w4, y, pool, {.stride = 0}), Error);
  EXPECT_NO_THROW(ops::conv_transpose1d(x, w4, y, pool, {.stride = 2}));
}

}  // namespace
}  // namespace eight
