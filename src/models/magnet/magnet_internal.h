#pragma once
// Weights of a loaded MAGNeT LM, shared by magnet.cpp (loading) and magnet_forward.cpp.
#include <vector>

#include "formats/torch_checkpoint.h"
#include "models/magnet/magnet.h"
#include "nn/linear.h"

namespace eight::magnet {

struct Norm {
  Tensor weight, bias;  // f32 [dim]
};

struct Layer {
  Norm norm1, norm_cross, norm2;
  nn::Linear in_proj, out_proj;                   // self_attn: [3·dim, dim], [dim, dim]
  nn::Linear cross_q, cross_k, cross_v, cross_o;  // cross_attention in_proj rows split
  nn::Linear linear1, linear2;
};

struct LM::Impl {
  torch::Checkpoint ckpt;
  std::string path;
  Config c;
  std::vector<Tensor> emb;  // [card + 1, dim] per codebook, as stored
  std::vector<Layer> layers;
  Norm out_norm;
  std::vector<nn::Linear> linears;  // [card, dim] per codebook
  nn::Linear output_proj;           // condition_provider.conditioners.description.output_proj
  explicit Impl(torch::Checkpoint ck) : ckpt(std::move(ck)) {}
};

}  // namespace eight::magnet
