#include "ops/matmul.h"

#include "backend/cpu/kernels.h"

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

}  // namespace

void matmul(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const MatmulParams& params) {
  check(x.defined() && w.defined() && y.defined(), "[matmul] undefined tensor argument");
  check(x.device() == Device::cpu() && w.device() == Device::cpu() && y.device() == Device::cpu(),
        "[matmul] only CPU tensors are supported here, got x on ", x.device().name(), ", w on ",
        w.device().name(), ", y on ", y.device().name());
  check(x.dtype() == DType::F32, "[matmul] x must be f32, got ", dtype_name(x.dtype()));
  check(y.dtype() == DType::F32, "[matmul] y must be f32, got ", dtype_name(y.dtype()));
  check(cpu::matmul_weight_type_supported(w.dtype()), "[matmul] weight type ",
        dtype_name(w.dtype()), " has no CPU kernel");
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
  Tensor y = Tensor::empty(shape, DType::F32);
  matmul(x, w, y, pool, params);
  return y;
}

}  // namespace eight::ops
