#include "ops/elementwise.h"

#include <utility>

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

namespace {

// The length of the runs of a that share one value of b when b has a's leading dimensions and
// size 1 in the others ([N, C, 1, 1] against [N, C, H, W]: H * W), or 0 for any other shapes.
int64_t per_row_run(const Tensor& a, const Tensor& b) {
  if (!b.defined() || b.dim() != a.dim() || b.shape() == a.shape()) return 0;
  int k = 0;
  while (k < a.dim() && b.size(k) == a.size(k)) ++k;
  int64_t run = 1;
  for (int d = k; d < a.dim(); ++d) {
    if (b.size(d) != 1) return 0;
    run *= a.size(d);
  }
  return run;
}

// y = a op b with one b value per run of `run` values (per-channel), all contiguous f32.
void binary_per_row(const char* op, cpu::BinaryOp kind, const Tensor& a, const Tensor& b,
                    const Tensor& y, int64_t run) {
  for (const auto& [t, what] : {std::pair{&a, "a"}, {&b, "b"}, {&y, "y"}})
    check(t->dtype() == DType::F32 && t->is_contiguous(), "[", op, "] ", what,
          " must be contiguous f32 to broadcast ", b.shape().str(), " over ", a.shape().str(),
          ", got ", t->str());
  const int64_t n = a.numel();
  if (a.device().kind == DeviceKind::Vulkan) {
    vulkan::binary_per_row(
        kind == cpu::BinaryOp::Add ? vulkan::BinaryOp::Add : vulkan::BinaryOp::Mul,
        vulkan::buffer_of(a), vulkan::buffer_of(b), vulkan::buffer_of(y), n, run);
    return;
  }
  const float* av = a.data<float>();
  const float* bv = b.data<float>();
  float* yv = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    yv[i] = kind == cpu::BinaryOp::Add ? av[i] + bv[i / run] : av[i] * bv[i / run];
}

void binary(const char* op, cpu::BinaryOp kind, const Tensor& a, const Tensor& b, const Tensor& y) {
  check_same_shape(op, a, "a", y, "y");
  const Device device = op_device(op, {{"a", &a}, {"b", &b}, {"y", &y}});
  if (const int64_t run = per_row_run(a, b); run > 0) {
    binary_per_row(op, kind, a, b, y, run);
    return;
  }
  if (device.kind == DeviceKind::Vulkan) {
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
