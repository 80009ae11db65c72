#pragma once
// SDXL single-file checkpoints in Stability's original layout (sd_xl_base_1.0.safetensors,
// SDXL-Turbo, community fine-tunes), split into the four components under diffusers' names, so
// the UNet, VAE and text encoders load one set of names whatever file they came from:
//
//   model.diffusion_model.*                  -> unet/            (UNet2DConditionModel)
//   first_stage_model.*                      -> vae/             (AutoencoderKL)
//   conditioner.embedders.0.transformer.*    -> text_encoder/    (CLIPTextModel, same names)
//   conditioner.embedders.1.model.*          -> text_encoder_2/  (CLIPTextModelWithProjection)
//
// Tensors stay zero-copy views of the file: OpenCLIP's fused attn.in_proj_weight/bias become row
// slices q/k/v, the VAE's 1x1-convolution attention weights [C, C, 1, 1] become [C, C] views.
// Only text_projection is copied, transposed from OpenCLIP's [hidden, proj] to HF's [proj, hidden].
// The UNet's levels, ResNet blocks per level and which blocks hold attention are read from the
// names present (as diffusers' convert_*_sdxl scripts lay them out), never assumed.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/safetensors.h"

namespace eight::sdxl {

struct Components {
  std::map<std::string, Tensor> unet, vae, text_encoder, text_encoder_2;
};

// Throws Error naming the tensor for a tensor of a module that is missing, for names that belong
// to no known part (known extras such as text_model.embeddings.position_ids, logit_scale and
// model_ema.* are ignored), and for shapes the renaming cannot take.
Components split_single_file(const safetensors::Checkpoint& ckpt);
Components split_single_file(const safetensors::File& file);

// The same from any container (a GGUF): the original names present and a getter returning each
// tensor as the components should hold it. `where` names the file in messages.
using TensorGetter = std::function<Tensor(const std::string& original_name)>;
Components split_single_file(const std::vector<std::string>& names, const TensorGetter& get,
                             const std::string& where);
// A UNet alone (ComfyUI-GGUF's UNet files): the original names, with or without
// model.diffusion_model.; returns diffusers' names. The getter receives the names as given.
std::map<std::string, Tensor> unet_from_original(const std::vector<std::string>& names,
                                                 const TensorGetter& get, const std::string& where);

// A separate VAE file (--vae): diffusers' vae/ names (optionally under "vae."), or the original
// names bare or under first_stage_model.; returns diffusers' names. Throws Error naming what is
// missing or unknown.
std::map<std::string, Tensor> vae_from_file(const safetensors::Checkpoint& ckpt);

// True when the names have SDXL's prefixes: a UNet under model.diffusion_model. and both text
// encoders under conditioner.embedders.0.transformer. and conditioner.embedders.1.model.
bool is_sdxl_single_file(const safetensors::Checkpoint& ckpt);
bool is_sdxl_single_file(const safetensors::File& file);

}  // namespace eight::sdxl
