#pragma once
// Weights of a loaded T5 encoder, shared by t5.cpp (loading) and t5_forward.cpp.
#include <vector>

#include "models/t5/t5.h"
#include "nn/linear.h"

namespace eight::t5 {

struct Layer {
  nn::Linear q, k, v, o;  // encoder.block.N.layer.0.SelfAttention.{q,k,v,o}
  Tensor bias;            // ...relative_attention_bias.weight f32 [buckets, heads] (block 0 / umT5)
  Tensor attn_norm;       // encoder.block.N.layer.0.layer_norm.weight f32 [d_model]
  Tensor ff_norm;         // encoder.block.N.layer.1.layer_norm.weight
  nn::Linear wi0, wi1;    // layer.1.DenseReluDense.wi (or wi_0 and wi_1 when gated)
  nn::Linear wo;          // layer.1.DenseReluDense.wo
};

struct Encoder::Impl {
  safetensors::Checkpoint ckpt;
  std::string path;
  Config c;
  Tensor shared;  // shared.weight [vocab, d_model], as stored
  std::vector<Layer> layers;
  Tensor final_norm;  // encoder.final_layer_norm.weight f32
  explicit Impl(safetensors::Checkpoint ck) : ckpt(std::move(ck)) {}
};

}  // namespace eight::t5
