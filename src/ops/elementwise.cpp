#include "ops/elementwise.h"

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

namespace {

void binary(const char* op, cpu::BinaryOp kind, const Tensor& a, const Tensor& b, const Tensor& y) {
  check_same_shape(op, a, "a", y, "y");
  if (op_device(op, {{"a", &a}, {"b", &b}, {"y", &y}}).kind == DeviceKind::Vulkan) {
    const DeviceRows ar = as_packed_device_rows(op, "a", a), yr = as_packed_device_rows(op, "y", y);
    const bool broadcast = b.dim() == 1 && b.size(0) == ar.n && a.dim() > 1;
    check(broadcast || b.shape() == a.shape(), "[", op, "] b ", b.shape().str(), " must match a ",
          a.shape().str(), " or be a [", ar.n, "] vector");
    const DeviceRows br = as_packed_device_rows(op, "b", b);
    const int64_t n = ar.count * ar.n;
    vulkan::binary(kind == cpu::BinaryOp::Add ? vulkan::BinaryOp::Add : vulkan::BinaryOp::Mul,
                   ar.ref, br.ref, yr.ref, n, broadcast ? ar.n : n);
    return;
  }
  const Rows ar = as_rows(op, "a", a), yr = as_rows(op, "y", y);
  check(b.defined(), "[", op, "] b is undefined");
  const bool broadcast = b.dim() == 1 && b.size(0) == ar.n && a.dim() > 1;
  check(broadcast || b.shape() == a.shape(), "[", op, "] b ", b.shape().str(), " must match a ",
        a.shape().str(), " or be a [", ar.n, "] vector");
  const Rows br = as_rows(op, "b", b);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < ar.count; ++i)
    k.binary(kind, ar.row(i), broadcast ? br.row(0) : br.row(i), yr.row(i), ar.n);
}

}  // namespace

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  binary("add", cpu::BinaryOp::Add, a, b, y);
}
void mul(const Tensor& a, const Tensor& b, const Tensor& y) {
  binary("mul", cpu::BinaryOp::Mul, a, b, y);
}

void scale(const Tensor& x, float s, const Tensor& y) {
  check_same_shape("scale", x, "x", y, "y");
  if (op_device("scale", {{"x", &x}, {"y", &y}}).kind == DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("scale", "x", x);
    vulkan::scale(xr.ref, s, as_packed_device_rows("scale", "y", y).ref, xr.count * xr.n);
    return;
  }
  const Rows xr = as_rows("scale", "x", x), yr = as_rows("scale", "y", y);
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < xr.count; ++i) k.scale(xr.row(i), s, yr.row(i), xr.n);
}

}  // namespace eight::ops
