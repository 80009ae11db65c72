#pragma once
// Element-wise activations and the gated MLP product. y may be x (in place); shapes must match.
//
//   ops::activation(ops::Activation::GELUTanh, x, y);
//   ops::swiglu(gate, up, y);            // y = silu(gate) * up   (Llama MLP)
//   ops::geglu(x, y);                    // x: [..., 2n] -> y: [..., n]   (diffusers GEGLU)
#include "core/tensor.h"

namespace eight::ops {

enum class Activation {
  SiLU,       // x * sigmoid(x)
  GELU,       // exact: 0.5 x (1 + erf(x / sqrt 2))
  GELUTanh,   // tanh approximation (GPT-2, Gemma "gelu_pytorch_tanh")
  QuickGELU,  // x * sigmoid(1.702 x) (CLIP)
  ReLU,
};

void activation(Activation op, const Tensor& x, const Tensor& y);
void swiglu(const Tensor& gate, const Tensor& up, const Tensor& y);
// diffusers' GEGLU after its projection: hidden, gate = x.chunk(2, dim=-1);
// y = hidden * gelu(gate) with the exact (erf) GELU. x: [..., 2n], y: [..., n] (never x).
void geglu(const Tensor& x, const Tensor& y);

}  // namespace eight::ops
