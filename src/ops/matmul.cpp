#include "ops/matmul.h"

#include "backend/cpu/kernels.h"
#include "ops/device.h"

namespace eight::ops {

namespace {

// Rows of a tensor whose last dimension is the row: count and stride, or false when the leading
// dimensions do not flatten to one stride.
bool as_rows(const Tensor& t, int64_t* rows, int64_t* stride) {
  *rows = 1;
  *stride = t.size(-1);
  if (t.dim() == 1) return true;
  *stride = t.stride(-2);
  for (int d = 0; d + 1 < t.dim(); ++d) *rows *= t.size(d);
  for (int d = 0; d + 2 < t.dim(); ++d)
    if (t.size(d) > 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) return false;
  return true;
}

// The Vulkan path of matmul, after the shared checks: one recorded dispatch, plus one for the bias.
void matmul_vulkan(const Tensor& x, const Tensor& w, const Tensor& y, const MatmulParams& params,
                   int64_t m, int64_t ldx, int64_t ldy) {
  const int64_t n = w.size(0), k = w.size(1);
  if (m == 0 || n == 0) return;
  check(k > 0, "[matmul] k = 0 is not supported on the GPU");
  vulkan::matmul({.m = m,
                  .n = n,
                  .k = k,
                  .x = vulkan::buffer_of(x),
                  .ldx = ldx,
                  .w_type = w.dtype(),
                  .w = vulkan::buffer_of(w),
                  .ldw = w.stride_bytes(0),
                  .y = vulkan::buffer_of(y),
                  .ldy = ldy});
  if (!params.bias) return;
  const Tensor& b = *params.bias;
  check(
      b.defined() && b.dtype() == DType::F32 && b.dim() == 1 && b.size(0) == n && b.is_contiguous(),
      "[matmul] bias must be a contiguous f32 [", n, "], got ",
      b.defined() ? b.str() : std::string("undefined"));
  check(m == 1 || ldy == n, "[matmul] on the GPU a bias needs y with packed rows, got row stride ",
        ldy, " for ", n, " columns");
  const vulkan::BufferRef yb = vulkan::buffer_of(y);
  vulkan::binary(vulkan::BinaryOp::Add, yb, vulkan::buffer_of(b), yb, m * n, n);
}

}  // namespace

void matmul(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const MatmulParams& params) {
  check(x.defined() && w.defined() && y.defined(), "[matmul] undefined tensor argument");
  const bool gpu =
      op_device("matmul", {{"x", &x}, {"w", &w}, {"y", &y}, {"bias", params.bias}}).kind ==
      DeviceKind::Vulkan;
  check(x.dtype() == DType::F32, "[matmul] x must be f32, got ", dtype_name(x.dtype()));
  check(y.dtype() == DType::F32, "[matmul] y must be f32, got ", dtype_name(y.dtype()));
  check(gpu ? vulkan::matmul_weight_type_supported(w.dtype())
            : cpu::matmul_weight_type_supported(w.dtype()),
        "[matmul] weight type ", dtype_name(w.dtype()), " has no ", gpu ? "Vulkan" : "CPU",
        " kernel");
  check(w.dim() == 2, "[matmul] w must be 2-D [n, k], got ", w.shape().str());
  check(x.dim() >= 1 && y.dim() == x.dim(), "[matmul] x ", x.shape().str(), " and y ",
        y.shape().str(), " must have the same number of dimensions");
  const int64_t n = w.size(0), k = w.size(1);
  check(x.size(-1) == k, "[matmul] x ", x.shape().str(), " has ", x.size(-1), " columns but w ",
        w.shape().str(), " has ", k);
  check(y.size(-1) == n, "[matmul] y ", y.shape().str(), " must have ", n, " columns (w has ", n,
        " rows)");
  for (int d = 0; d + 1 < x.dim(); ++d)
    check(x.size(d) == y.size(d), "[matmul] x ", x.shape().str(), " and y ", y.shape().str(),
          " differ in dimension ", d);
  check(w.stride(1) == 1, "[matmul] w rows must be contiguous, got strides ", w.strides().str());
  const int64_t bs = dtype_block_size(w.dtype());
  check(k % bs == 0, "[matmul] k = ", k, " is not a multiple of the ", dtype_name(w.dtype()),
        " block size ", bs);
  check(x.stride(-1) == 1 && y.stride(-1) == 1, "[matmul] the last dimension of x and y must be ",
        "contiguous, got x strides ", x.strides().str(), ", y strides ", y.strides().str());
  int64_t m, ldx, my, ldy;
  check(as_rows(x, &m, &ldx), "[matmul] x ", x.shape().str(), " with strides ", x.strides().str(),
        " does not flatten to rows; make it contiguous first");
  check(as_rows(y, &my, &ldy), "[matmul] y ", y.shape().str(), " with strides ", y.strides().str(),
        " does not flatten to rows");
  if (gpu) {
    matmul_vulkan(x, w, y, params, m, ldx, ldy);
    return;
  }
  const float* bias = nullptr;
  if (params.bias) {
    const Tensor& b = *params.bias;
    // Tested before formatting: the message's b.str() would allocate on every call.
    if (!(b.defined() && b.dtype() == DType::F32 && b.dim() == 1 && b.size(0) == n &&
          b.stride(0) == 1))
      fail("[matmul] bias must be a contiguous f32 [", n, "], got ",
           b.defined() ? b.str() : std::string("undefined"));
    bias = b.data<float>();
  }
  if (m == 0 || n == 0) return;
  cpu::MatmulProblem p{.m = m,
                       .n = n,
                       .k = k,
                       .x = x.data<float>(),
                       .ldx = ldx,
                       .w_type = w.dtype(),
                       .w = w.raw(),
                       .ldw = w.stride_bytes(0),
                       .y = y.data<float>(),
                       .ldy = ldy,
                       .bias = bias};
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) p.y[i * ldy + j] = bias ? bias[j] : 0.f;
    return;
  }
  cpu::kernels().matmul(p, pool);
}

Tensor matmul(const Tensor& x, const Tensor& w, ThreadPool& pool, const MatmulParams& params) {
  check(x.defined() && w.defined(), "[matmul] undefined tensor argument");
  check(w.dim() == 2, "[matmul] w must be 2-D [n, k], got ", w.shape().str());
  Dims shape = x.shape();
  check(shape.size() >= 1, "[matmul] x must have at least 1 dimension");
  shape[shape.size() - 1] = w.size(0);
  Tensor y = empty(shape, DType::F32, x.device());
  matmul(x, w, y, pool, params);
  return y;
}

}  // namespace eight::ops
