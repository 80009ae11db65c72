#pragma once
// Linear layers and embeddings over weights used in place from the model file.
//
// Shapes (PyTorch order): weight [out, in] in any dtype the CPU can dequantize (F32, F16, BF16,
// Q4_0..Q8_0, K-quants, IQ4), bias [out] F32 or absent; activations are F32 row-major.
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::nn {

struct Linear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] F32, or undefined
  // [out] F32 multipliers of each output feature before the bias, or undefined: weights stored
  // as integers with a per-row scale (CTranslate2's int8/int16) keep their integers in `weight`.
  Tensor scale = Tensor();
  bool defined() const { return weight.defined(); }
  int64_t in_features() const { return weight.size(-1); }
  int64_t out_features() const { return weight.size(0); }
};

// y[T, out] = (x[T, in] · weightᵀ) ⊙ scale + bias (ops::matmul). F32 activations whose rows may be
// strided (column ranges of a wider buffer), not aliased.
void linear(const Tensor& y, const Tensor& x, const Linear& l, ThreadPool& pool);

// y[T, dim] = table[tokens[t], :] for each t (dequantized rows). Throws Error naming the token
// and the table size when an id is out of range.
void embedding(const Tensor& y, const Tensor& table, const int32_t* tokens, int64_t T);

// y[t, j] *= scale[j] for each row of y (F32 [T, n], rows may be strided): the per-feature
// multipliers of integer weights (Linear::scale) where a product bypasses linear().
void scale_columns(const Tensor& y, const Tensor& scale);
// y[t, :] *= scale[tokens[t]]: the same multipliers for rows an embedding() looked up.
void scale_rows(const Tensor& y, const Tensor& scale, const int32_t* tokens, int64_t T);

}  // namespace eight::nn
