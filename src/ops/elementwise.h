#pragma once
// Element-wise arithmetic on f32 tensors. b is either the same shape as a, a vector of a's last
// dimension broadcast over every row (a bias), or a's leading dimensions with size 1 in the rest,
// one value per channel (contiguous tensors). y has a's shape and may alias a.
//
//   ops::add(x, residual, x);     ops::mul(x, gate, y);     ops::scale(x, 0.125f, x);
//   ops::add(h, temb.reshape({N, C, 1, 1}), h);   // h: [N, C, H, W], h[n, c] += temb[n, c]
#include "core/tensor.h"

namespace eight::ops {

void add(const Tensor& a, const Tensor& b, const Tensor& y);
void mul(const Tensor& a, const Tensor& b, const Tensor& y);
void scale(const Tensor& x, float s, const Tensor& y);

}  // namespace eight::ops
