#pragma once
// The FLUX.1 transformer (MMDiT): double-stream blocks over text and image tokens, then
// single-stream blocks over their concatenation, with 2-D rotary positions, timestep (and, for
// dev, guidance) embedding and adaptive-norm modulation. Facts from diffusers'
// FluxTransformer2DModel and BFL's flux/model.py.
//
// Weights are accepted in BFL's names ("double_blocks.N.img_attn.qkv.weight", as
// flux1-schnell.safetensors, ComfyUI copies with "model.diffusion_model." stripped first, and
// GGUF files) and in diffusers' names ("transformer_blocks.N.attn.to_q.weight", the
// transformer/ folder of a diffusers directory). F32, F16, BF16, F8_E4M3, F8_E5M2 and GGUF block
// types are used as stored (never expanded whole).
//
//   auto tr = flux::Transformer::build(weights, config_json);
//   Tensor v = tr->forward(img, txt, pooled, img_ids, txt_ids, sigma, guidance, pool);
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::flux {

using Weights = std::map<std::string, Tensor>;

struct Config {
  int64_t in_channels = 64;  // packed latent channels (16 VAE channels * 2 * 2)
  int64_t hidden = 3072;     // num_attention_heads * attention_head_dim
  int64_t heads = 24;
  int64_t head_dim = 128;
  int64_t double_blocks = 19;  // num_layers
  int64_t single_blocks = 38;  // num_single_layers
  int64_t context_dim = 4096;  // joint_attention_dim (T5-XXL d_model)
  int64_t pooled_dim = 768;    // pooled_projection_dim (CLIP-L)
  int64_t mlp_ratio = 4;
  std::array<int64_t, 3> axes_dim = {16, 56, 56};  // rotary dims per position axis
  double theta = 10000;
  bool guidance_embed = false;  // dev: guidance_in.* present; schnell: absent
};

// From transformer/config.json text when not empty, else from the tensor shapes.
Config read_config(const Weights& weights, const std::string& config_json);

// True when `weights` (any prefix already stripped) hold a FLUX transformer in either naming.
bool is_flux_transformer(const Weights& weights);

class Transformer {
 public:
  // Throws Error naming a missing or misshapen tensor.
  static std::shared_ptr<const Transformer> build(const Weights& weights,
                                                  const std::string& config_json = {});
  const Config& config() const;
  int64_t weight_bytes() const;

  // One denoiser call for one image (no batch):
  //   img      [n_img, in_channels] f32: packed latents (2x2 patches, diffusers' _pack_latents)
  //   txt      [n_txt, context_dim] f32: T5 last hidden state
  //   pooled   [pooled_dim] f32: CLIP-L pooled output
  //   img_ids  [n_img, 3] f32, txt_ids [n_txt, 3] f32: position ids as diffusers builds them
  //   sigma    the flow-matching time in [0, 1] as diffusers passes `timestep` (scaled by 1000
  //            inside, as FluxTransformer2DModel does)
  //   guidance the dev model's guidance scale (ignored when !config().guidance_embed)
  // Returns [n_img, in_channels] f32: the predicted velocity.
  Tensor forward(const Tensor& img, const Tensor& txt, const Tensor& pooled, const Tensor& img_ids,
                 const Tensor& txt_ids, float sigma, float guidance, ThreadPool& pool) const;

  // Upper bound of the bytes one forward call allocates at its peak (activations and scratch,
  // not the weights), for the planner.
  int64_t forward_bytes(int64_t n_img, int64_t n_txt, int n_threads) const;

  ~Transformer();
  struct Impl;
  explicit Transformer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::flux
