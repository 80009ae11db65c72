#pragma once
// Matrix products with float activations and weights of any computable type.
//
//   Tensor y = ops::matmul(x, w, pool);                        // x: [..., k] f32, w: [n, k]
//   ops::matmul(x, w, y, pool, {.bias = &b});                  // into y: [..., n] f32, b: [n] f32
//
// y[i, j] = sum_t x[i, t] * w[j, t] (+ bias[j]): a linear layer with weights stored as the
// checkpoints store them (one row per output feature). w may be F32, F16, BF16, F8_E4M3, F8_E5M2
// (expanded to f32 a row or panel at a time inside the kernel), Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL or IQ4_XS; its rows must be contiguous (a
// row-slice of a bigger weight is fine). x may have any number of leading dimensions as long as
// they flatten to one row stride (a view that selects every other row is fine; a transposed x is
// not), and its last dimension must be contiguous. For quantized weights the CPU kernels quantize
// x to 8 bits on the fly (relative error ~1e-2 or better, see tests/backend/test_matmul.cpp).
//
// Results do not depend on the pool's thread count. Errors (Error, "[matmul] ...") name the
// shapes and types involved.
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::ops {

struct MatmulParams {
  const Tensor* bias = nullptr;  // [n] f32, added to every row
};

void matmul(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const MatmulParams& params = {});
Tensor matmul(const Tensor& x, const Tensor& w, ThreadPool& pool, const MatmulParams& params = {});

}  // namespace eight::ops
