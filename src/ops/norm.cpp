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
  check(
      x.dtype() == DType::F32 && y.dtype() == DType::F32 && x.is_contiguous() && y.is_contiguous(),
      "[group_norm] x and y must be contiguous f32, got ", x.str(), " and ", y.str());
  const bool on_device =
      op_device("group_norm",
                {{"x", &x}, {"y", &y}, {"weight", params.weight}, {"bias", params.bias}})
          .kind == DeviceKind::Vulkan;
  const int64_t cd = params.channel_dim;
  check(cd >= 0 && cd < x.dim(), "[group_norm] channel_dim ", cd, " is not a dimension of ",
        x.shape().str());
  int64_t batch = 1;
  for (int64_t d = 0; d < cd; ++d) batch *= x.size(static_cast<int>(d));
  const int64_t c = x.size(static_cast<int>(cd));
  const int64_t spatial = batch * c > 0 ? x.numel() / (batch * c) : 0;
  check(params.groups > 0 && c % params.groups == 0, "[group_norm] ", c,
        " channels do not split into ", params.groups, " groups");
  check(params.eps >= 0, "[group_norm] eps must be >= 0, got ", params.eps);
  if (on_device) {
    vulkan::group_norm(
        vulkan::buffer_of(x), optional_device_vector("group_norm", "weight", params.weight, c),
        optional_device_vector("group_norm", "bias", params.bias, c), vulkan::buffer_of(y), batch,
        c, spatial, params.groups, params.eps, params.silu);
    return;
  }
  const float* w = optional_vector("group_norm", "weight", params.weight, c);
  const float* b = optional_vector("group_norm", "bias", params.bias, c);
  if (spatial == 0) return;
  const int64_t cg = c / params.groups, n = cg * spatial;
  const auto& k = cpu::nn_kernels();
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  auto one = [&](int64_t task) {
    const int64_t g = task % params.groups;
    k.group_norm(xs + task * n, w ? w + g * cg : nullptr, b ? b + g * cg : nullptr, ys + task * n,
                 cg, spatial, params.eps, params.silu);
  };
  const int64_t tasks = batch * params.groups;
  if (params.pool) {
    params.pool->parallel_for(tasks, [&](int64_t task, int) { one(task); });
  } else {
    for (int64_t task = 0; task < tasks; ++task) one(task);
  }
}

}  // namespace eight::ops
