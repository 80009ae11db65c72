#pragma once
// Shared argument checks of the row-wise ops: a tensor seen as rows of its last dimension.
#include <string>

#include "core/tensor.h"

namespace eight::ops {

struct Rows {
  float* data = nullptr;
  int64_t count = 0, n = 0, stride = 0;  // row i at data + i * stride
  float* row(int64_t i) const { return data + i * stride; }
};

// An f32 CPU tensor whose last dimension is contiguous and whose leading dimensions flatten to
// one row stride; throws Error "[op] ..." naming `what` otherwise.
Rows as_rows(const char* op, const char* what, const Tensor& t);
// Rows of `t` (any device): count, length and stride of its last dimension; Error "[op] ..." when
// the last dimension is not contiguous or the leading ones do not flatten to one stride.
void row_layout(const char* op, const char* what, const Tensor& t, int64_t* count, int64_t* n,
                int64_t* stride);
// Same shape check for a second operand.
void check_same_shape(const char* op, const Tensor& a, const char* an, const Tensor& b,
                      const char* bn);
// An optional per-column vector: nullptr, or a contiguous f32 [n] tensor's data.
const float* optional_vector(const char* op, const char* what, const Tensor* t, int64_t n);

}  // namespace eight::ops
