#pragma once
// Memory plan for an image pipeline (SDXL: two CLIP text encoders, the UNet, the VAE), from the
// checkpoint's tensor headers and configs alone (no tensor data read), for a request (image size,
// guided or not, threads). It says what each stage costs on the CPU, whether the run fits the
// RAM budget, and whether the VAE must decode in tiles.
//
// Stages run one after another in one process (runtime/diffusion/sdxl_pipeline.cpp generate());
// every component stays resident, its weights used in place from the file mapping:
//   weights     the safetensors files as mapped (file-backed pages, counted as the LLM plans
//               count them) plus the f32 copies the loaders make of every norm weight and bias and
//               of the text encoders' position embeddings
//   text        per prompt, both encoders on `windows` windows of 77 tokens: the CLIP tower's
//               activations (plan/clip.cpp clip_text_activation_bytes) plus the hidden states and
//               pooled rows each returns, and the [77·windows, D1 + D2] context
//   denoise     one UNet forward on N = 2 (guided) or 1 samples of h×w latents (h = H/8), replayed
//               from the tensor shapes exactly as unet_forward.cpp allocates (unet_activation_bytes
//               below; tests/runtime/test_planner_diffusion.cpp holds it equal to
//               unet::Model::activation_bytes), plus what generate() holds across the loop: the
//               noise, latents, the model input, the guided output, both prompt embeddings and
//               the batched context, the scheduler's step buffers
//   decode      the VAE decoder on [1, 4, h, w] (vae_decode_bytes, equal to
//               vae::Model::decode_bytes), whole or in tiles, plus what generate() still holds
//   scratch     the matmul / attention kernels' per-thread buffers over every product of all
//               stages (they are kept for the threads' life)
// Peak = weights + scratch + the largest stage.
//
// With a VRAM budget (request.vram > 0: the pipeline runs on a Vulkan device) the device is billed
// too (ImagePlan::device): every component's weights resident there (in their own types, vectors
// as f32, only the text encoders' transformer layers), the runtime reserve, and the largest
// stage's device memory: the text towers' buffers (held until their output comes back), one
// UNet forward replayed with the device's deferred frees (unet_walk's gpu Budget, equal to
// unet::Model::activation_bytes of a device-built UNet), and the VAE decoder replayed the same
// way (it too submits after every block), whole or per tile (the largest tile that fits the
// device). The host bill stays the CPU route's (an upper bound there). Nothing is streamed: when
// the weights and the largest stage do not fit, the plan says so and what would.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "runtime/plan/planner.h"

namespace eight {

// One tensor's header.
struct TensorHeader {
  Dims shape;
  DType type = DType::F32;
  int64_t numel() const { return shape.product(); }
};

// One component (unet/, vae/, text_encoder/, text_encoder_2/): its tensors by diffusers' names.
struct ImageComponent {
  std::map<std::string, TensorHeader> tensors;
  std::string config;      // config.json text, "" if none
  int64_t file_bytes = 0;  // the weight files as mapped
  int64_t heap_bytes = 0;  // weights already copied onto the heap at load (merged LoRAs, tensors
                           // dequantized from a GGUF)
  const TensorHeader* find(const std::string& name) const;
  const TensorHeader& at(const std::string& name) const;  // Error naming the tensor if absent
  bool has(const std::string& name) const { return find(name) != nullptr; }
};

struct ImageModelDesc {
  std::string name, path;
  ImageComponent unet, vae, text_encoder, text_encoder_2;
  int64_t file_bytes() const;
  int64_t heap_bytes() const;
};

// A diffusers StableDiffusionXL folder: model_index.json and each component's safetensors headers
// and config.json. Throws Error naming what is missing (single files are not planned yet).
ImageModelDesc describe_image_model(const std::string& path);

struct ImagePlanRequest {
  int64_t width = 1024, height = 1024;
  bool guided = true;     // classifier-free guidance: the UNet runs on 2 samples per step
  int64_t windows = 1;    // 77-token prompt windows
  int n_threads = 0;      // 0: default_thread_count()
  int64_t vae_tile = -1;  // latent pixels per VAE tile: -1 choose, 0 whole image
  int64_t ram = 0;        // RAM budget; 0: system_ram_budget()
  int64_t vram = 0;       // > 0: the run is on a GPU with this budget (the device bill)
  int64_t gpu_reserve = kGpuRuntimeReserve;
  std::string device = "vulkan:0";
};

struct ImageStage {
  std::string name;
  int64_t bytes = 0;  // what the stage adds to weights and scratch at its peak
  std::string why;
};

struct ImagePlan {
  std::string model;
  ImagePlanRequest request;  // threads and ram resolved, vae_tile chosen
  int64_t vae_overlap = 0;   // latent pixels of tile overlap (vae_tile / 4)
  int64_t mapped_bytes = 0, copied_bytes = 0, scratch_bytes = 0;
  int64_t unet_bytes = 0;          // one UNet forward (activations, skips, convolution scratch)
  int64_t decode_bytes = 0;        // one VAE decode
  std::vector<Buffer> components;  // each component's weights (file bytes, type, parameters)
  std::vector<ImageStage> stages;
  std::vector<ImageStage> device_stages;  // each stage's device memory (request.vram > 0)
  int64_t device_weight_bytes = 0;        // the weights resident on the device
  DevicePlan device;  // reserve, weights and the largest device stage (request.vram > 0)
  DevicePlan cpu;     // weights, scratch and the largest stage: adds up to host_peak()
  std::string gpu;    // what the plan says about GPUs
  std::vector<std::string> suggestions;
  int64_t host_peak() const { return cpu.total(); }
  bool on_gpu() const { return request.vram > 0; }
  // The device memory the run's buffers reach (weights and largest stage, not the reserve).
  int64_t device_peak() const;
  bool fits() const { return cpu.fits() && (!on_gpu() || device.fits()); }
  // Throws Error with the numbers and the options when the plan exceeds the RAM budget.
  void check_host_budget() const;
  // Throws Error with the numbers and the options when the plan exceeds the device budget.
  void check_device_budget() const;
};

ImagePlan plan_image(const ImageModelDesc& model, const ImagePlanRequest& request);

// The replays (each mirrors its model's allocation order; see the header comment). on_device:
// the UNet's Vulkan forward (device memory, deferred frees included).
int64_t unet_activation_bytes(const ImageComponent& unet, int64_t N, int64_t h, int64_t w,
                              int64_t context_len, bool on_device = false);
int64_t vae_decode_bytes(const ImageComponent& vae, int64_t n, int64_t h, int64_t w,
                         int64_t tile = 0, int64_t overlap = 0);
// The CPU kernels' per-thread scratch of one VAE decode (its convolutions' products), which
// vae_decode_bytes leaves to the plan's kernel-scratch line (FLUX's pipeline bills it).
int64_t vae_decode_scratch_bytes(const ImageComponent& vae, int64_t h, int64_t w, int64_t tile,
                                 int64_t overlap, int threads);

}  // namespace eight
