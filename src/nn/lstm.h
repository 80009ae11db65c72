#pragma once
// A stacked unidirectional LSTM with PyTorch's nn.LSTM equations and weight names (batch 1, zero
// initial state), as EnCodec's SEANet uses it:
//   gates = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, split into (i, f, g, o)
//   c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g),   h_t = sigmoid(o) * tanh(c_t)
// The input projection of all frames is one matmul per layer; the recurrence is one
// matrix-vector product per frame (ops::matmul with one row).
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::nn {

struct LstmLayer {
  Tensor w_ih;  // [4 H, in] (weight_ih_lN), f32, f16 or bf16
  Tensor w_hh;  // [4 H, H] (weight_hh_lN)
  Tensor bias;  // [4 H] f32: bias_ih_lN + bias_hh_lN, summed at load
  int64_t hidden() const { return w_hh.size(1); }
};

// x: [T, in] f32 contiguous; returns the last layer's h for every frame, [T, H] f32.
Tensor lstm(const std::vector<LstmLayer>& layers, const Tensor& x, ThreadPool& pool);

}  // namespace eight::nn
