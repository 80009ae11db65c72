#include "ops/activation.h"

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

void activation(Activation op, const Tensor& x, const Tensor& y) {
  check_same_shape("activation", x, "x", y, "y");
  if (op_device("activation", {{"x", &x}, {"y", &y}}).kind == DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("activation", "x", x);
    vulkan::unary(static_cast<vulkan::UnaryOp>(static_cast<int>(op)), xr.ref,
                  as_packed_device_rows("activation", "y", y).ref, xr.count * xr.n);
    return;
  }
  const Rows xr = as_rows("activation", "x", x), yr = as_rows("activation", "y", y);
  const auto& k = cpu::nn_kernels();
  const auto u = static_cast<cpu::UnaryOp>(static_cast<int>(op));
  for (int64_t i = 0; i < xr.count; ++i) k.unary(u, xr.row(i), yr.row(i), xr.n);
}

void swiglu(const Tensor& gate, const Tensor& up, const Tensor& y) {
  check_same_shape("swiglu", gate, "gate", up, "up");
  check_same_shape("swiglu", gate, "gate", y, "y");
  if (op_device("swiglu", {{"gate", &gate}, {"up", &up}, {"y", &y}}).kind == DeviceKind::Vulkan) {
    const DeviceRows g = as_packed_device_rows("swiglu", "gate", gate);
    vulkan::swiglu(g.ref, as_packed_device_rows("swiglu", "up", up).ref,
                   as_packed_device_rows("swiglu", "y", y).ref, g.count * g.n);
    return;
  }
  const Rows g = as_rows("swiglu", "gate", gate), u = as_rows("swiglu", "up", up),
             yr = as_rows("swiglu", "y", y);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < g.count; ++i) k.swiglu(g.row(i), u.row(i), yr.row(i), g.n);
}

namespace {

void check_geglu_shapes(const Tensor& x, const Tensor& y, int64_t xn, int64_t yn, int64_t x_rows,
                        int64_t y_rows) {
  check(xn % 2 == 0 && yn * 2 == xn && x_rows == y_rows && x.dim() == y.dim(),
        "[geglu] x must be [..., 2n] and y [..., n] with the same leading dimensions, got ",
        x.shape().str(), " and ", y.shape().str());
  for (int d = 0; d + 1 < x.dim(); ++d)
    check(x.size(d) == y.size(d), "[geglu] x ", x.shape().str(), " and y ", y.shape().str(),
          " differ in dimension ", d);
}

}  // namespace

void geglu(const Tensor& x, const Tensor& y) {
  if (op_device("geglu", {{"x", &x}, {"y", &y}}).kind == DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("geglu", "x", x);
    const DeviceRows yr = as_packed_device_rows("geglu", "y", y);
    check_geglu_shapes(x, y, xr.n, yr.n, xr.count, yr.count);
    vulkan::geglu(xr.ref, yr.ref, yr.count, yr.n);
    return;
  }
  const Rows xr = as_rows("geglu", "x", x), yr = as_rows("geglu", "y", y);
  check_geglu_shapes(x, y, xr.n, yr.n, xr.count, yr.count);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < xr.count; ++i) k.geglu(xr.row(i), xr.row(i) + yr.n, yr.row(i), yr.n);
}

}  // namespace eight::ops
