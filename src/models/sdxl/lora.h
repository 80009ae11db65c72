#pragma once
// LoRA adapters for SDXL: low-rank updates W' = W + scale * (alpha / rank) * up @ down of the
// UNet's and the text encoders' linear and convolution weights, read from the .safetensors
// layouts people publish:
//
//   kohya/sd-scripts   lora_unet_<module>.lora_down.weight / .lora_up.weight / .alpha, with
//                      lora_te1_ (CLIP-L) and lora_te2_ (OpenCLIP bigG, HF names). <module> is the
//                      path with '.' -> '_', in the original UNet layout
//                      (input_blocks_4_1_transformer_blocks_0_attn1_to_q) or in diffusers' layout
//                      (down_blocks_1_attentions_0_proj_in: LCM-LoRA and diffusers trainers).
//   diffusers / PEFT   unet.<path>.lora_A.weight / .lora_B.weight (also .lora.down/.lora.up,
//                      .lora_linear_layer.down/.up and attention processors' to_q_lora.down),
//                      text_encoder. and text_encoder_2. for the encoders.
//   LoCon              conv layers: down [r, C_in, kh, kw], up [C_out, r, 1, 1].
//
// alpha: the module's .alpha tensor when present; else the "lora_alpha"/"r" (and alpha_pattern)
// of diffusers' "lora_adapter_metadata" header entry; else rank (factor 1), as diffusers and PEFT.
// Underscored names are ambiguous, so they are resolved by matching against the target weights'
// module names with '.' replaced by '_' (and, for the UNet, their original-layout names).
//
// Files are untrusted: dtypes and shapes are checked against the weight they update, and every
// error names the file and the tensor. A module that matches no weight is an error (a LoRA for
// another model family must not be silently ignored).
//
//   auto loras = sdxl::read_lora(safetensors::File::open(path), components);
//   sdxl::apply_lora(components, loras, 0.7f);
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/safetensors.h"
#include "models/sdxl/single_file.h"

namespace eight::sdxl {

enum class LoraComponent { unet, text_encoder, text_encoder_2 };
const char* lora_component_name(LoraComponent c);

// One low-rank update of one weight.
struct LoraModule {
  std::string name;  // the module as the file names it ("lora_unet_...", "unet.down_blocks...")
  LoraComponent component = LoraComponent::unet;
  std::string weight;  // the weight it updates, by diffusers/HF name ("...attn1.to_q.weight")
  Tensor down;         // [r, in] or [r, in, kh, kw] (F32/F16/BF16, a view of the file)
  Tensor up;           // [out, r] or [out, r, 1, 1]
  double alpha = 0;    // the file's alpha, or rank
  int64_t rank() const { return down.size(0); }
};

// Every module of the LoRA, resolved against the weights of `targets` (unet, text_encoder,
// text_encoder_2; vae is not read). Throws Error naming the file and tensor for malformed
// tensors, unsupported kinds (LoHa, LoKr, DoRA, bias and full-weight diffs) and modules that
// match no weight (the first few are listed).
std::vector<LoraModule> read_lora(const safetensors::File& file, const Components& targets);

// Applies `modules` with the user's `scale` to `targets`. A float weight (F32/F16/BF16) is merged
// into a new tensor of its dtype (computed in float64) that replaces the map entry, so the
// file mapping is never written. A quantized UNet linear weight is left as it is and gets the
// update at run time: the entries "<module>.lora_down" [R, in] and "<module>.lora_up" [out, R]
// (f32, the factor folded into up; several LoRAs on one weight concatenate along R) are added
// beside it for unet::Model to apply after its matmul. Throws Error for a quantized weight
// elsewhere.
// Rows are merged in parallel on `pool` when given.
void apply_lora(Components& targets, const std::vector<LoraModule>& modules, float scale,
                ThreadPool* pool = nullptr);

// W + factor * up @ down in W's dtype (F32, F16 or BF16); up and down as in LoraModule, their
// product reshaped to W's shape. Exposed for tests.
Tensor merge_lora(const Tensor& weight, const Tensor& down, const Tensor& up, double factor,
                  ThreadPool* pool = nullptr);

// The original-layout (Stability's UNetModel) module of a diffusers UNet module
// ("down_blocks.1.attentions.0.proj_in" -> "input_blocks.4.1.proj_in") for a UNet with
// `resnets_per_down_level` ResNet blocks per down level (one more per up level) whose up levels
// `up_attention` have attentions; "" when the module has no original name. Exposed for tests.
std::string original_unet_module(const std::string& module, int64_t resnets_per_down_level,
                                 const std::vector<bool>& up_attention);

}  // namespace eight::sdxl
