#include "nn/norm.h"

#include <cmath>

#include "core/error.h"
#include "nn/shape_text.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/norm.h"

namespace eight::nn {

void rms_norm(const Tensor& y, const Tensor& x, const Tensor& weight, float eps) {
  // On a GPU: the device kernel (the host loop below sums in double and stays bit-stable).
  if (ops::op_device("rms_norm", {{"y", &y}, {"x", &x}, {"weight", &weight}}).kind !=
      DeviceKind::CPU)
    return ops::rms_norm(x, y, {.weight = &weight, .eps = eps});
  check(x.dtype() == DType::F32 && y.dtype() == DType::F32 && weight.dtype() == DType::F32,
        "[rms_norm] tensors must be f32 (weight is ", dtype_name(weight.dtype()), ")");
  check(x.dim() == 2 && y.shape() == x.shape() && x.is_contiguous() && y.is_contiguous(),
        "[rms_norm] x ", ShapeText(x.shape()), " and y ", ShapeText(y.shape()), " must match");
  const int64_t T = x.size(0), dim = x.size(1);
  check(weight.numel() == dim, "[rms_norm] weight has ", weight.numel(), " elements, rows have ",
        dim);
  const float* w = weight.data<float>();
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x.data<float>() + t * dim;
    float* yr = y.data<float>() + t * dim;
    double ss = 0;  // sum in double: dim is up to 4096 and this is not on the hot path
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale * w[i];
  }
}

void add_inplace(const Tensor& y, const Tensor& x) {
  if (ops::op_device("add", {{"y", &y}, {"x", &x}}).kind != DeviceKind::CPU)
    return ops::add(y, x, y);
  check(y.dtype() == DType::F32 && x.dtype() == DType::F32 && y.shape() == x.shape() &&
            y.is_contiguous() && x.is_contiguous(),
        "[add] y ", ShapeText(y.shape()), " and x ", ShapeText(x.shape()), " must be matching f32");
  float* a = y.data<float>();
  const float* b = x.data<float>();
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace eight::nn
