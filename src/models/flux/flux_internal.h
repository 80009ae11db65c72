#pragma once
// The loaded FLUX transformer (flux.h), shared by flux_build.cpp (both namings onto this layout)
// and flux_forward.cpp. Weights stay as stored: BFL's fused projections (img_attn.qkv, linear1)
// are row slices of the file's tensor, never copies; only biases and norm scales are made f32.
#include <vector>

#include "models/flux/flux.h"
#include "nn/linear.h"

namespace eight::flux {

// One stream's half of a double block (image or text).
struct Stream {
  nn::Linear mod;              // AdaLayerNormZero: [6D, D] -> shift, scale, gate (attn), same (mlp)
  nn::Linear q, k, v;          // [D, D] each
  Tensor q_norm, k_norm;       // RMS scales f32 [head_dim]
  nn::Linear out;              // attention output projection [D, D]
  nn::Linear mlp_in, mlp_out;  // [M, D], [D, M] with GELU(tanh) between
};

struct DoubleBlock {
  Stream img, txt;
};

struct SingleBlock {
  nn::Linear mod;           // AdaLayerNormZeroSingle: [3D, D] -> shift, scale, gate
  nn::Linear q, k, v, mlp;  // BFL linear1 = rows [q; k; v; mlp]
  Tensor q_norm, k_norm;
  nn::Linear out;  // [D, D + M] over concat(attention, gelu(mlp))
};

struct Transformer::Impl {
  Config c;
  nn::Linear img_in, txt_in;
  nn::Linear time_in, time_out, vec_in, vec_out, guidance_in, guidance_out;
  std::vector<DoubleBlock> doubles;
  std::vector<SingleBlock> singles;
  nn::Linear final_scale, final_shift;  // the two halves of norm_out.linear (diffusers order)
  nn::Linear final_out;                 // proj_out [in_channels, D]
  int64_t bytes = 0;                    // weight bytes
};

}  // namespace eight::flux
