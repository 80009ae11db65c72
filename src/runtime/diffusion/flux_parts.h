#pragma once
// What a FLUX.1 model is read from (flux_load.cpp) and the pieces of its recipe that do not need
// the transformer (flux_text.cpp), for the pipeline (flux_pipeline.cpp).
//
// Files: a diffusers FluxPipeline directory (model_index.json; transformer/, vae/, text_encoder/
// (CLIP-L), text_encoder_2/ (T5), tokenizer/, tokenizer_2/, scheduler/), or BFL's transformer as
// one .safetensors (with or without ComfyUI's "model.diffusion_model." prefix) with the other
// parts as separate files (FluxSources), or a directory holding exactly such files.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/clip/text_encoder.h"
#include "models/t5/t5.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/diffusion/sdxl_parts.h"
#include "text/clip_tokenizer.h"
#include "text/unigram.h"

namespace eight::diffusion {

// The separate component files of `eight imagine -m flux1-schnell.safetensors --clip-l ...`.
struct FluxSources {
  std::string clip_l, t5xxl, vae;  // HF CLIPTextModel, HF T5EncoderModel, BFL's ae.safetensors
  std::string tokenizer;    // CLIP BPE: a folder with vocab.json + merges.txt or tokenizer.json
  std::string tokenizer_2;  // T5: spiece.model, tokenizer.json or a folder holding one
};

struct FluxFiles {
  std::string name, path;
  bool is_directory = false;            // a diffusers FluxPipeline directory
  NamedTensors transformer, vae, clip;  // transformer in its own naming (BFL or diffusers)
  std::string transformer_config, vae_config, clip_config, scheduler_config;  // "" for files
  std::string t5_path;  // what t5::Encoder::load opens (a folder or a .safetensors)
  std::optional<text::CLIPTokenizer> clip_tokenizer;  // none: eight's OpenAI CLIP vocabulary
  std::string clip_pad_token = "<|endoftext|>";
  std::string t5_tokenizer_path;  // what text::UnigramTokenizer::open takes
  int64_t transformer_file_bytes = 0, vae_file_bytes = 0, clip_file_bytes = 0, t5_file_bytes = 0;
};

// True for a FluxPipeline directory, a .safetensors holding a FLUX transformer (either naming,
// any ComfyUI prefix), or a directory holding one beside its component files.
bool is_flux_model(const std::string& path);

// Reads what `path` and `sources` name. Throws Error naming what is missing or not what it
// should be (e.g. a T5 file given as --clip-l).
FluxFiles read_flux_files(const std::string& path, const FluxSources& sources);

// The two text encoders and their tokenizers, as FluxPipeline.encode_prompt uses them.
struct FluxPrompt {
  std::vector<int32_t> clip_ids, t5_ids;  // 77 and max_sequence_length ids, padded
  Tensor context;                         // [max_sequence_length, d_model] f32: T5 last hidden
  Tensor pooled;                          // [hidden] f32: CLIP's pooled output
};

class FluxTextEncoders {
 public:
  // Takes the CLIP weights out of `files` (they are bound here). Throws Error naming the part.
  FluxTextEncoders(FluxFiles& files, Device device);
  // T5 without an attention mask over all max_sequence_length tokens, as FluxPipeline calls it.
  FluxPrompt encode(const std::string& prompt, int64_t max_sequence_length, ThreadPool& pool) const;
  const clip::TextEncoder& clip() const { return *clip_; }
  const t5::Encoder& t5() const { return *t5_; }
  int64_t weight_bytes() const;

 private:
  std::shared_ptr<const clip::TextEncoder> clip_;
  std::optional<text::CLIPTokenizer> clip_tok_;
  int32_t clip_pad_ = 0;
  std::shared_ptr<const t5::Encoder> t5_;
  std::optional<text::UnigramTokenizer> t5_tok_;
  int64_t t5_bytes_ = 0;
};

// diffusers' FluxPipeline._pack_latents for one image: [C, h, w] -> [(h/2)(w/2), 4C], the
// feature index c * 4 + dy * 2 + dx of patch (y, x).
Tensor pack_latents(const Tensor& latents);
// _unpack_latents: [(h/2)(w/2), 4C] -> [C, h, w].
Tensor unpack_latents(const Tensor& packed, int64_t h, int64_t w);
// _prepare_latent_image_ids: [(h/2)(w/2), 3] rows (0, row, col) of the packed patches.
Tensor latent_image_ids(int64_t h, int64_t w);

std::unique_ptr<ImagePipeline> make_flux_pipeline(FluxFiles files, Device device = Device::cpu());

}  // namespace eight::diffusion
