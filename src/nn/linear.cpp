#include "nn/linear.h"

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "nn/shape_text.h"
#include "ops/matmul.h"

namespace eight::nn {

void linear(const Tensor& y, const Tensor& x, const Linear& l, ThreadPool& pool) {
  if (l.scale.defined()) {  // the bias comes after the scale
    ops::matmul(x, l.weight, y, pool);
    scale_columns(y, l.scale);
    if (!l.bias.defined()) return;
    const int64_t n = y.size(-1);
    const float* b = l.bias.data<float>();
    for (int64_t t = 0; t < y.numel() / n; ++t) {
      auto* row = static_cast<float*>(y.row(t));
      for (int64_t j = 0; j < n; ++j) row[j] += b[j];
    }
    return;
  }
  const ops::MatmulParams params{.bias = l.bias.defined() ? &l.bias : nullptr};
  Tensor out = y;
  ops::matmul(x, l.weight, out, pool, params);
}

void scale_columns(const Tensor& y, const Tensor& scale) {
  const int64_t n = y.size(-1);
  check(y.dtype() == DType::F32 && y.dim() == 2 && y.stride(1) == 1 &&
            scale.dtype() == DType::F32 && scale.numel() == n && scale.is_contiguous(),
        "[linear] scale ", ShapeText(scale.shape()), " does not fit output ", ShapeText(y.shape()));
  const float* s = scale.data<float>();
  for (int64_t t = 0; t < y.size(0); ++t) {
    auto* row = static_cast<float*>(y.row(t));
    for (int64_t j = 0; j < n; ++j) row[j] *= s[j];
  }
}

void scale_rows(const Tensor& y, const Tensor& scale, const int32_t* tokens, int64_t T) {
  check(y.dtype() == DType::F32 && y.dim() == 2 && y.size(0) >= T && y.stride(1) == 1 &&
            scale.dtype() == DType::F32 && scale.is_contiguous(),
        "[embedding] scale ", ShapeText(scale.shape()), " does not fit ", ShapeText(y.shape()));
  for (int64_t t = 0; t < T; ++t) {
    check(tokens[t] >= 0 && tokens[t] < scale.numel(), "[embedding] token id ", tokens[t],
          " is outside the scale's ", scale.numel(), " rows");
    const float s = scale.data<float>()[tokens[t]];
    auto* row = static_cast<float*>(y.row(t));
    for (int64_t j = 0; j < y.size(1); ++j) row[j] *= s;
  }
}

void embedding(const Tensor& y, const Tensor& table, const int32_t* tokens, int64_t T) {
  check(table.dim() == 2 && table.stride(1) == 1,
        "[embedding] table must be 2-D with contiguous rows, got ", ShapeText(table.shape()));
  const int64_t n_rows = table.size(0), dim = table.size(1);
  check(y.dtype() == DType::F32 && y.dim() == 2 && y.size(0) >= T && y.size(1) == dim &&
            y.stride(1) == 1,
        "[embedding] output ", ShapeText(y.shape()), " does not fit [", T, ", ", dim, "]");
  for (int64_t t = 0; t < T; ++t) {
    check(tokens[t] >= 0 && tokens[t] < n_rows, "[embedding] token id ", tokens[t], " at position ",
          t, " is outside the vocabulary of ", n_rows);
    dequantize_row(table.dtype(), table.row(tokens[t]), static_cast<float*>(y.row(t)), dim);
  }
}

}  // namespace eight::nn
