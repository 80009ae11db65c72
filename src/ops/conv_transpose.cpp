// Transposed 1-D convolution (see conv.h): each input frame's contribution to every output
// channel and tap is one row of a matmul product, so the arithmetic runs on the matmul kernels;
// the overlap-add of those rows into y is the only other pass over the data.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops/conv.h"
#include "ops/matmul.h"
#include "ops/transpose.h"

namespace eight::ops {
namespace {

constexpr int64_t kTileBytes = int64_t{8} << 20;

void check_args(const Tensor& x, const Tensor& w, const ConvTranspose1dParams& p) {
  check(x.defined() && w.defined(), "[conv_transpose1d] undefined tensor argument");
  check(x.dim() == 2 && w.dim() == 3, "[conv_transpose1d] x must be [C_in, L] and w [C_in, ",
        "C_out, k], got ", x.shape().str(), " and ", w.shape().str());
  check(x.dtype() == DType::F32 && w.dtype() == DType::F32,
        "[conv_transpose1d] x and w must be f32, got ", dtype_name(x.dtype()), " and ",
        dtype_name(w.dtype()));
  check(x.size(0) == w.size(0), "[conv_transpose1d] x has ", x.size(0), " channels but w expects ",
        w.size(0));
  check(x.size(1) >= 1 && w.size(1) >= 1 && w.size(2) >= 1,
        "[conv_transpose1d] empty input or weight: x ", x.shape().str(), ", w ", w.shape().str());
  check(p.stride >= 1 && p.dilation >= 1, "[conv_transpose1d] stride ", p.stride, " and dilation ",
        p.dilation, " must be >= 1");
}

}  // namespace

Dims conv_transpose1d_output_shape(const Tensor& x, const Tensor& w,
                                   const ConvTranspose1dParams& p) {
  check_args(x, w, p);
  return {w.size(1), (x.size(1) - 1) * p.stride + p.dilation * (w.size(2) - 1) + 1};
}

void conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
                      const ConvTranspose1dParams& p) {
  const Dims out_shape = conv_transpose1d_output_shape(x, w, p);
  check(y.defined() && y.dtype() == DType::F32 && y.is_contiguous() && y.shape() == out_shape,
        "[conv_transpose1d] y must be contiguous f32 ", out_shape.str(), ", got ",
        y.defined() ? y.str() : std::string("undefined"));
  const int64_t c_in = x.size(0), len = x.size(1), c_out = w.size(1), k = w.size(2);
  const int64_t l_out = out_shape[1];
  if (p.bias) {
    check(p.bias->dtype() == DType::F32 && p.bias->dim() == 1 && p.bias->size(0) == c_out &&
              p.bias->is_contiguous(),
          "[conv_transpose1d] bias must be contiguous f32 [", c_out, "], got ", p.bias->str());
  }
  // Frames as rows ([L, C_in]) and the weight as one row per (output channel, tap).
  const Tensor xt = Tensor::empty({len, c_in}, DType::F32);
  transpose(x, xt, &pool);
  const Tensor wt = Tensor::empty({c_out * k, c_in}, DType::F32);
  transpose(w.contiguous().reshape({c_in, c_out * k}), wt, &pool);

  float* yd = y.data<float>();
  pool.parallel_for(c_out, [&](int64_t o, int) {
    const float b = p.bias ? p.bias->data<float>()[o] : 0.f;
    std::fill(yd + o * l_out, yd + (o + 1) * l_out, b);
  });
  const int64_t row = c_out * k;
  const int64_t tile = std::clamp<int64_t>(kTileBytes / (row * 4), 1, len);
  const Tensor prod = Tensor::empty({tile, row}, DType::F32);
  for (int64_t t0 = 0; t0 < len; t0 += tile) {
    const int64_t rows = std::min(tile, len - t0);
    matmul(xt.slice(0, t0, t0 + rows), wt, prod.slice(0, 0, rows), pool);
    const float* pd = prod.data<float>();
    // Each task owns one output channel, so the overlap-add needs no synchronisation.
    pool.parallel_for(c_out, [&](int64_t o, int) {
      float* yo = yd + o * l_out;
      for (int64_t t = 0; t < rows; ++t) {
        const float* src = pd + t * row + o * k;
        float* dst = yo + (t0 + t) * p.stride;
        for (int64_t j = 0; j < k; ++j) dst[j * p.dilation] += src[j];
      }
    });
  }
}

}  // namespace eight::ops
