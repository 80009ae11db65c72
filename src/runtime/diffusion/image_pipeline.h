#pragma once
// Text-to-image and image-to-image with SDXL (and its Turbo/LCM variants): the recipe of
// diffusers' StableDiffusionXLPipeline / StableDiffusionXLImg2ImgPipeline.
//
//   1. both CLIP text encoders on the prompt (and the negative prompt): hidden_states[-2] of each,
//      concatenated to the context [77 * chunks, 768 + 1280]; the pooled, projected output of the
//      second is the text embedding. An empty negative prompt gives zeros when the model says
//      force_zeros_for_empty_prompt (SDXL does).
//   2. the scheduler's timesteps; latents = noise * init_noise_sigma (txt2img), or the encoded
//      init image noised to the first kept timestep (img2img, `strength`).
//   3. per step: the UNet on [negative, positive] (one pass when cfg_scale <= 1), guidance
//      uncond + cfg * (cond - uncond), the scheduler step.
//   4. the VAE decodes latents / scaling_factor.
//
// Prompts longer than 75 tokens are split into windows of 75 (each wrapped in start/end tokens
// and padded to 77) whose contexts are concatenated, as A1111 does; diffusers instead truncates
// to 77 tokens, and the two agree for prompts of at most 75 tokens.
//
//   auto p = diffusion::ImagePipeline::load({.path = "sd_xl_turbo_1.0.safetensors"});
//   diffusion::ImageResult r = p->generate({.prompt = "a cat", .steps = 4}, pool);
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "runtime/diffusion/scheduler.h"
#include "runtime/plan/diffusion.h"

namespace eight::diffusion {

struct LoraSpec {
  std::string path;
  float scale = 1.0f;
};

// FLUX from separate files (ImageLoadOptions::path: BFL's transformer .safetensors, vae_path: BFL's
// ae.safetensors): HF CLIPTextModel and T5EncoderModel files, the CLIP BPE tokenizer folder and
// the T5 tokenizer (spiece.model / tokenizer.json / folder). See runtime/diffusion/flux_parts.h.
struct SeparateFiles {
  std::string clip_l, t5xxl, tokenizer, tokenizer_2;
};

struct ImageLoadOptions {
  std::string path;      // a diffusers directory, a single-file .safetensors checkpoint or a GGUF
  std::string vae_path;  // a separate VAE (.safetensors, diffusers or original names), or ""
  std::vector<LoraSpec> loras;
  std::string base_path;          // for a UNet-only GGUF: where the text encoders and VAE come from
  Device device = Device::cpu();  // a GPU (Device::vulkan(i)): the models run there
  SeparateFiles separate;         // FLUX's text encoders and tokenizers as files
};

struct ImageRequest {
  std::string prompt, negative_prompt;
  int64_t width = 512, height = 512;
  int64_t steps = 0;      // 0: the model's default (see ImagePipeline::default_steps)
  double cfg_scale = -1;  // < 0: the model's default
  std::string sampler;    // "": the model's scheduler (a directory's config, else euler)
  uint64_t seed = 0;
  Tensor init_noise;      // optional [C, H/8, W/8] f32 unit-variance noise (replaces the seed's)
  Tensor init_image;      // optional [3, H, W] f32 in [-1, 1]: img2img
  double strength = 0.8;  // img2img: the fraction of the schedule that is run
  // Memory: the run is planned first (runtime/plan/diffusion.h) and refused with the numbers when
  // it does not fit ram_budget (0: this machine's RAM minus 1 GiB). vae_tile: latent pixels per
  // VAE tile, -1 as the plan chooses (tiles only when the whole image does not fit), 0 whole.
  int64_t ram_budget = 0;
  int64_t vae_tile = -1;
  // On a GPU the device is planned too and the run refused when it does not fit vram_budget (the
  // driver's reserve vulkan::kDeviceReserveBytes counted in it; 0: the device's budget,
  // vulkan::device_budget, the reserve already taken off).
  int64_t vram_budget = 0;
  // FLUX: T5 tokens (0: 256 for schnell, 512 for dev) and the dev model's guidance scale (< 0:
  // 3.5; schnell has no guidance input and ignores it, as it ignores cfg_scale).
  int64_t max_sequence_length = 0;
  double guidance = -1;
};

struct StepProgress {
  int64_t step = 0, steps = 0;
  double seconds = 0;  // since the loop started
};

struct ImageTimings {
  double load_s = 0, text_s = 0, denoise_s = 0, decode_s = 0;
  int64_t steps_run = 0;
};

struct ImageResult {
  Tensor image;    // [3, H, W] f32 in [-1, 1] (not clamped)
  Tensor latents;  // [C, H/8, W/8] f32: the final denoised latents (model scale)
  std::string sampler;
  int64_t steps = 0;
  double cfg_scale = 0;
  uint64_t seed = 0;
  ImageTimings timings;
  ImagePlan plan;  // the memory plan the run followed
};

// A prompt's embeddings: context [chunks * 77, D1 + D2] and pooled [P].
struct PromptEmbedding {
  Tensor context, pooled;
};

class ImagePipeline {
 public:
  // Throws Error naming what is missing or malformed.
  static std::unique_ptr<ImagePipeline> load(const ImageLoadOptions& options);
  virtual ~ImagePipeline() = default;

  virtual std::string name() const = 0;  // the directory or file name
  virtual Device device() const = 0;     // where the models run
  // The LoRAs merged in, each named by its file stem, with its scale.
  virtual const std::vector<LoraSpec>& loras() const = 0;
  virtual int64_t latent_channels() const = 0;
  virtual std::string default_sampler() const = 0;
  virtual int64_t default_steps() const = 0;
  virtual double default_cfg_scale() const = 0;
  virtual int64_t weight_bytes() const = 0;

  // The memory plan of a txt2img request (threads: the pool's size), from the checkpoint's
  // tensor shapes; generate() checks it before running.
  virtual ImagePlan plan(const ImageRequest& request, int n_threads) const = 0;

  virtual ImageResult generate(const ImageRequest& request, ThreadPool& pool,
                               const std::function<void(const StepProgress&)>& progress = {}) = 0;
};

// An SDXL file `eight plan` can plan: a Stability single file or a GGUF holding an SDXL checkpoint
// or UNet (read from the tensor names, nothing loaded).
bool is_sdxl_file(const std::string& path);
// The planner's view of an SDXL folder, single file or GGUF (shapes, types, configs and mapped
// bytes; weights mapped, not read). A UNet-only GGUF takes the rest from base_path.
ImageModelDesc describe_sdxl(const std::string& path, const std::string& base_path = {});

// 8-bit RGB bytes [H, W, 3] of an image [3, H, W] in [-1, 1]: round(clamp((x + 1) / 2, 0, 1) *
// 255).
std::vector<uint8_t> to_rgb8(const Tensor& image);
// [3, H, W] f32 in [-1, 1] from 8-bit RGB bytes [H, W, 3].
Tensor from_rgb8(const uint8_t* rgb, int64_t width, int64_t height);

}  // namespace eight::diffusion
