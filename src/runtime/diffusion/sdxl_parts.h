#pragma once
// What an SDXL checkpoint holds once read (sdxl_load.cpp), for the pipeline (sdxl_pipeline.cpp).
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/clip/text_encoder.h"
#include "models/unet/unet.h"
#include "models/vae/vae.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/diffusion/scheduler.h"
#include "text/clip_tokenizer.h"

namespace eight::diffusion {

using NamedTensors = std::map<std::string, Tensor>;

// The raw parts: weights by diffusers' names per component, and each folder's config text ("" for
// single files, which have none).
struct SDXLFiles {
  std::string name;  // directory or file name
  std::string path;
  bool is_directory = false;
  NamedTensors unet, vae, text_encoder, text_encoder_2;
  std::string unet_config, vae_config, text_encoder_config, text_encoder_2_config;
  std::string scheduler_config;  // "" for single files: SDXL's defaults (see sdxl_load.cpp)
  std::optional<text::CLIPTokenizer> tokenizer, tokenizer_2;  // none: eight's CLIP vocabulary
  std::string pad_token = "<|endoftext|>", pad_token_2 = "!";
  bool force_zeros_for_empty_prompt = true;
  // Bytes of the files mapped for each component (a single file counts once, under unet).
  int64_t unet_file_bytes = 0, vae_file_bytes = 0, text_encoder_file_bytes = 0,
          text_encoder_2_file_bytes = 0;
  std::vector<LoraSpec> loras;  // merged into the weights above, named by file stem
};

// The planner's view of the parts (tensor shapes and types, configs, mapped bytes).
ImageModelDesc image_model_desc(const SDXLFiles& files);

// Reads a diffusers directory (model_index.json), a single-file checkpoint or a GGUF
// (models/sdxl/sdxl_gguf.h); with vae_path, the VAE comes from that file instead. A GGUF that
// holds only a UNet takes the text encoders, VAE, scheduler and tokenizers from base_path (a
// directory, single file or whole-checkpoint GGUF), which is an error otherwise. Throws Error
// naming what is missing.
SDXLFiles read_sdxl_files(const std::string& path, const std::string& vae_path,
                          const std::string& base_path = {});

// Applies each LoRA file with its scale to the UNet and text encoders of `files` (see
// models/sdxl/lora.h: float weights are replaced by merged copies, quantized UNet weights get
// run-time factors). Throws Error naming the file and tensor.
void apply_loras(SDXLFiles& files, const std::vector<LoraSpec>& loras);

// The scheduler config single files get: SDXL base's, with the timestep spacing A1111 and
// ComfyUI use ("linspace" for euler, euler_a and dpm++2m; dpm++2m with Karras sigmas as A1111's
// "DPM++ 2M Karras"), "leading" as diffusers for lcm and ddim. Turbo checkpoints take "trailing".
SchedulerConfig single_file_scheduler_config(const std::string& sampler, bool turbo);

// Folder readers the FLUX loader shares. The weights of one component folder
// (diffusion_pytorch_model or model .safetensors, .fp16 variants, sharded indexes; file_bytes: the
// mapped bytes); the pad token a tokenizer folder names, else fallback; a CLIP BPE tokenizer from
// vocab.json + merges.txt or tokenizer.json (none when the folder has neither); config.json text
// or "".
NamedTensors read_folder_weights(const std::filesystem::path& dir, int64_t* file_bytes = nullptr);
std::string pad_token_of(const std::filesystem::path& dir, const std::string& fallback);
std::optional<text::CLIPTokenizer> read_clip_tokenizer(const std::filesystem::path& dir);
std::string config_of(const std::filesystem::path& dir);

std::unique_ptr<ImagePipeline> make_sdxl_pipeline(SDXLFiles files, Device device = Device::cpu());

}  // namespace eight::diffusion
