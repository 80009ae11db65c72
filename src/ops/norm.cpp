#include "ops/norm.h"

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

void rms_norm(const Tensor& x, const Tensor& y, const RmsNormParams& params) {
  check_same_shape("rms_norm", x, "x", y, "y");
  if (op_device("rms_norm", {{"x", &x}, {"y", &y}, {"weight", params.weight}}).kind ==
      DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("rms_norm", "x", x);
    const DeviceRows yr = as_packed_device_rows("rms_norm", "y", y);
    check(params.eps >= 0, "[rms_norm] eps must be >= 0, got ", params.eps);
    vulkan::rms_norm(xr.ref, optional_device_vector("rms_norm", "weight", params.weight, xr.n),
                     yr.ref, xr.count, xr.n, params.eps);
    return;
  }
  const Rows xr = as_rows("rms_norm", "x", x), yr = as_rows("rms_norm", "y", y);
  const float* w = optional_vector("rms_norm", "weight", params.weight, xr.n);
  check(params.eps >= 0, "[rms_norm] eps must be >= 0, got ", params.eps);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < xr.count; ++i) k.rms_norm(xr.row(i), w, yr.row(i), xr.n, params.eps);
}

void layer_norm(const Tensor& x, const Tensor& y, const LayerNormParams& params) {
  check_same_shape("layer_norm", x, "x", y, "y");
  if (op_device("layer_norm",
                {{"x", &x}, {"y", &y}, {"weight", params.weight}, {"bias", params.bias}})
          .kind == DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("layer_norm", "x", x);
    const DeviceRows yr = as_packed_device_rows("layer_norm", "y", y);
    vulkan::layer_norm(xr.ref, optional_device_vector("layer_norm", "weight", params.weight, xr.n),
                       optional_device_vector("layer_norm", "bias", params.bias, xr.n), yr.ref,
                       xr.count, xr.n, params.eps);
    return;
  }
  const Rows xr = as_rows("layer_norm", "x", x), yr = as_rows("layer_norm", "y", y);
  const float* w = optional_vector("layer_norm", "weight", params.weight, xr.n);
  const float* b = optional_vector("layer_norm", "bias", params.bias, xr.n);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < xr.count; ++i) k.layer_norm(xr.row(i), w, b, yr.row(i), xr.n, params.eps);
}

void group_norm(const Tensor& x, const Tensor& y, const GroupNormParams& params) {
  check_same_shape("group_norm", x, "x", y, "y");
  check(x.dtype() == DType::F32 && y.dtype() == DType::F32 && x.is_contiguous() &&
            y.is_contiguous() && x.dim() >= 1,
        "[group_norm] x and y must be contiguous f32 [C, ...], got ", x.str(), " and ", y.str());
  const int64_t c = x.size(0), per_channel = c ? x.numel() / c : 0;
  check(params.groups > 0 && c % params.groups == 0, "[group_norm] ", c,
        " channels do not split into ", params.groups, " groups");
  const float* w = optional_vector("group_norm", "weight", params.weight, c);
  const float* b = optional_vector("group_norm", "bias", params.bias, c);
  const int64_t cg = c / params.groups, n = cg * per_channel;
  const auto& k = cpu::nn_kernels();
  for (int64_t g = 0; g < params.groups; ++g) {
    const float* xs = x.data<float>() + g * n;
    float* ys = y.data<float>() + g * n;
    k.layer_norm(xs, nullptr, nullptr, ys, n, params.eps);
    for (int64_t ch = 0; ch < cg; ++ch) {
      const int64_t cc = g * cg + ch;
      const float s = w ? w[cc] : 1.f, o = b ? b[cc] : 0.f;
      float* row = ys + ch * per_channel;
      for (int64_t i = 0; i < per_channel; ++i) row[i] = row[i] * s + o;
    }
  }
}

}  // namespace eight::ops
