#pragma once
// The image autoencoder of SDXL and FLUX (diffusers' AutoencoderKL): an encoder from RGB to the
// mean and spread of a latent distribution (8x smaller per side), and a decoder back to RGB.
//
// Weights are named as in diffusers' vae/ folder ("decoder.up_blocks.0.resnets.0.conv1.weight",
// "decoder.mid_block.attentions.0.to_q.weight", ...); single files are renamed before they reach
// here. F32, F16 and BF16 tensors are used as they are (norms and biases made f32).
//
//   auto vae = vae::Model::build(weights, config_json);
//   Tensor rgb = vae->decode(z, pool);   // z already divided by scaling_factor (+ shift_factor)
//   auto gpu = vae::Model::build(weights, config_json, Device::vulkan(0));   // runs there
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::vae {

using Weights = std::map<std::string, Tensor>;

struct Config {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> channels;  // block_out_channels
  int64_t layers_per_block = 2;
  int64_t groups = 32;
  float scaling_factor = 0.13025f;  // SDXL (SD 1.x: 0.18215; FLUX: 0.3611)
  float shift_factor = 0.0f;        // FLUX: 0.1159
  bool quant_conv = true;           // quant_conv / post_quant_conv present (not in FLUX)
  bool mid_attention = true;        // mid_block_add_attention
};

// From vae/config.json text when not empty, else from the tensor shapes (scaling_factor then
// stays SDXL's unless the caller sets it).
Config read_config(const Weights& weights, const std::string& config_json);

// Tiling: 0 = the whole image at once. Otherwise tiles of `tile` latent pixels per side that
// overlap by `overlap` latent pixels, blended linearly across the overlap, exactly as diffusers'
// tiled_decode / _tiled_encode (a latent, or image, that fits one tile is done whole). diffusers'
// enable_tiling() is {.tile = tile_latent_min_size, .overlap = tile - int(0.75 * tile)} (SDXL:
// {128, 32}) when tile is a multiple of 4.
struct Tiles {
  int64_t tile = 0;
  int64_t overlap = 0;
};

struct Posterior {
  Tensor mean;  // [N, latent_channels, H/8, W/8] f32
  Tensor std;   // same shape: exp(0.5 * clamp(logvar, -30, 20))
};

class Model {
 public:
  // device: where the weights go and every block runs (a Vulkan device: the weights are
  // uploaded here; decode and encode still take and return host tensors).
  static std::shared_ptr<const Model> build(const Weights& weights,
                                            const std::string& config_json = {},
                                            Device device = Device::cpu());
  const Config& config() const;
  Device device() const;
  int64_t weight_bytes() const;

  // z: [N, latent_channels, h, w] f32 in the VAE's own scale. Returns [N, out_channels, 8h, 8w]
  // f32, about [-1, 1], not clamped.
  Tensor decode(const Tensor& z, ThreadPool& pool, const Tiles& tiles = {}) const;
  // images: [N, in_channels, H, W] f32 in [-1, 1], H and W multiples of 8.
  Posterior encode(const Tensor& images, ThreadPool& pool, const Tiles& tiles = {}) const;

  // Upper bounds of the bytes one decode / encode call allocates at its peak (activations, the
  // result and the convolutions' scratch; not the weights), for the planner. These are the host
  // bytes of a CPU model; on a GPU the same activations are device memory (the conv scratch
  // there differs: tiles of up to 32 MiB of unfolded input and of product, and a freed buffer is
  // held until the work recorded before the next submit has run; decode submits after every
  // block, and runtime/plan/diffusion.cpp replays the device's count).
  int64_t decode_bytes(int64_t n, int64_t h, int64_t w, const Tiles& tiles = {}) const;
  int64_t encode_bytes(int64_t n, int64_t height, int64_t width, const Tiles& tiles = {}) const;

  ~Model();
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::vae
