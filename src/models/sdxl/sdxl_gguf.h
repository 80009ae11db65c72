#pragma once
// SDXL in GGUF files, renamed to diffusers' names by the single-file renaming (single_file.h):
//
//   whole checkpoint  the single file's original names (model.diffusion_model.*,
//                     first_stage_model.*, conditioner.embedders.{0,1}.*), as
//                     stable-diffusion.cpp's `sd convert` and `eight convert` write them; also
//                     sd.cpp's --convert-name names for the text encoders
//                     (cond_stage_model.transformer.*, cond_stage_model.1.transformer.* /
//                     text_encoders.clip_{l,g}.transformer.* with HF CLIP names and a fused
//                     self_attn.in_proj).
//   UNet only         ComfyUI-GGUF (city96) files: general.architecture "sdxl", the original UNet
//                     names without model.diffusion_model. (or diffusers' unet/ names), tensors
//                     whose rows were regrouped by 256 carrying comfy.gguf.orig_shape.<name>.
//                     The text encoders and VAE must come from another file.
//
// Tensors stay zero-copy views of the mapping where the consumer takes them as stored: quantized
// linear weights (2-D) of the UNet and the text encoders. Quantized tensors that no kernel takes
// quantized are dequantized at load, with one log line per file: convolutions, the VAE and
// embedding tables and text_projection to f16, vectors (norms, biases) to f32; regrouped tensors
// are dequantized (when quantized) and given back their original shape.
#include <string>

#include "formats/gguf.h"
#include "models/sdxl/single_file.h"

namespace eight::sdxl {

enum class GGUFContents { checkpoint, unet_only, unknown };

// What an SDXL GGUF holds, from its tensor names.
GGUFContents gguf_contents(const gguf::File& file);

// The components of a whole-checkpoint GGUF (all four) or a UNet-only one (unet alone). Throws
// Error naming the tensor or key for anything missing or malformed.
Components split_gguf(const gguf::File& file);

}  // namespace eight::sdxl
