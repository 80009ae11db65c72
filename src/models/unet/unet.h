#pragma once
// SDXL's UNet (diffusers' UNet2DConditionModel with SDXL's "text_time" added conditioning): a
// sinusoidal timestep embedding plus the pooled text embedding and six micro-conditioning values
// (original size, crop top-left, target size), then levels of ResNet blocks and (from the second
// level on) transformer blocks with self- and cross-attention over the text context, a middle
// block, and the mirrored up path with skip connections.
//
// Weights are named as in diffusers' unet/ folder ("conv_in.weight",
// "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight", ...); a single-file
// checkpoint or a GGUF is renamed to these names before it reaches here. Tensors may be F32, F16
// or BF16 views of a file mapping (matmul and conv weights are used as they are; norms and
// biases are made f32), or quantized block types for linear layers. A quantized linear weight may
// carry a LoRA applied at run time: "<module>.lora_down" [r, in] and "<module>.lora_up" [out, r]
// f32 entries beside "<module>.weight" add up(down(x)) after its matmul.
//
//   auto unet = unet::Model::build(weights, config_json);   // config_json may be empty
//   Tensor eps = unet->forward(x, {t, t}, context, text_embeds, time_ids, pool);
//
// On a Vulkan device (build(weights, config_json, ops::choose_device("vulkan:0"))) every weight is
// uploaded once at build, and forward() uploads its inputs, runs every layer there and downloads
// the output: the caller's tensors stay host tensors either way.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::unet {

using Weights = std::map<std::string, Tensor>;

struct Config {
  int64_t in_channels = 4, out_channels = 4;
  std::vector<int64_t> channels;  // block_out_channels, one per level
  int64_t layers_per_block = 2;   // ResNet blocks per down level (up levels have one more)
  std::vector<int64_t> depth;     // transformer blocks per attention of each level (0: none)
  std::vector<int64_t> heads;     // attention heads of each level (diffusers' attention_head_dim)
  int64_t mid_depth = 1, mid_heads = 0;
  int64_t cross_attention_dim = 2048;  // context width (CLIP-L 768 + bigG 1280 for SDXL)
  int64_t time_embed_dim = 1280;       // 4 * channels[0]
  int64_t addition_time_embed_dim = 256;
  int64_t pooled_dim = 1280;  // text_embeds width
  int64_t groups = 32;
  float eps = 1e-5f;
  bool linear_projection = true;  // proj_in/proj_out are linear (SDXL), not 1x1 convolutions
};

// The architecture: from diffusers' unet/config.json text when config_json is not empty, else
// from the tensor shapes, with SDXL's constants for what shapes cannot tell (heads of width 64,
// at least one per level; GroupNorm with 32 groups, eps 1e-5). From shapes, the split of
// add_embedding.linear_1's in-features into pooled_dim + 6 x addition_time_embed_dim is SDXL's
// 256 per time id when in-features > 1536, else unknown (both 0; forward() then takes pooled_dim
// from text_embeds). Throws Error naming the missing or inconsistent tensor or config key.
Config read_config(const Weights& weights, const std::string& config_json);

// SDXL base 1.0's UNet (stabilityai/stable-diffusion-xl-base-1.0 unet/config.json): levels of
// 320, 640, 1280 channels with 0, 2, 10 transformer blocks, heads of 64, context 2048.
Config sdxl_base_config();

// Every weight a model of `config` reads, each made by make(name, shape) with diffusers' name and
// PyTorch shape (the builder's own walk, so the names always match): random-weight models for
// benchmarks. config.pooled_dim must be known.
using MakeTensor = std::function<Tensor(const std::string& name, const Dims& shape)>;
Weights synthesize_weights(const Config& config, const MakeTensor& make);

class Model {
 public:
  // On `device` (a Vulkan device: the weights are uploaded there, linear weights in their own type,
  // convolution weights in their checkpoint layout, norms and biases as f32; the host keeps none of
  // them). Error when the device memory budget refuses a weight, naming the bytes.
  static std::shared_ptr<const Model> build(const Weights& weights,
                                            const std::string& config_json = {},
                                            Device device = Device::cpu());
  // With a config the caller settled (read_config's, with fields overridden by the pipeline).
  static std::shared_ptr<const Model> build(const Weights& weights, const Config& config,
                                            Device device = Device::cpu());
  const Config& config() const;
  // The bytes of the weights the forward reads, wherever they live (their size in the file's
  // types, norms and biases as f32).
  int64_t weight_bytes() const;
  // Where the weights are and the forward runs.
  Device device() const;
  // The device memory the uploaded weights hold (0 on the CPU), each buffer in whole 32-bit words
  // as vulkan::Buffer asks for them (a driver's own alignment may add to what its tracker counts).
  int64_t device_bytes() const;

  // x: [N, in_channels, h, w] f32 (the scheduler-scaled latents); timesteps: N values;
  // context: [N, L, cross_attention_dim] f32; text_embeds: [N, pooled_dim] f32; time_ids:
  // [N, 6] f32. Returns the model output [N, out_channels, h, w] f32.
  //
  // timesteps are the scheduler's timesteps as floats (999, 979.02..., not sigmas), embedded as
  // diffusers does (flip_sin_to_cos, freq_shift 0). When the config does not know pooled_dim (a
  // file without config.json whose add_embedding is too narrow for SDXL's 6 x 256), the width of
  // text_embeds gives it and addition_time_embed_dim = (in-features - pooled_dim) / 6.
  Tensor forward(const Tensor& x, const std::vector<float>& timesteps, const Tensor& context,
                 const Tensor& text_embeds, const Tensor& time_ids, ThreadPool& pool) const;

  // An upper bound of the host memory one forward() allocates at its peak (activations, skip
  // connections and the convolutions' scratch, the returned output included) for N samples of
  // h x w latents and context_len context tokens. The matmul and attention kernels' per-thread
  // scratch (backend/cpu/scratch.h, kept between calls) is not included: the planner adds it.
  // Nor are the [rows, r] and [rows, out] buffers of a run-time LoRA on a quantized weight
  // ("<module>.lora_down" / ".lora_up" entries, models/sdxl/lora.h), one linear layer at a time.
  // On a Vulkan device it is the device memory instead, the weights not included: the same
  // activations, the uploaded inputs, the Vulkan convolutions' tiles, the attention's score chunks
  // and the transposes back into images, allocated per call, and the freed buffers the device
  // holds until the work recorded before them has run (forward() submits after every block, and
  // a buffer is released two submits later). The device's tracker counts them and refuses past
  // its budget; the host then holds only the sinusoids and the returned output.
  int64_t activation_bytes(int64_t N, int64_t h, int64_t w, int64_t context_len) const;

  ~Model();
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::unet
