// SDXL's registration: the pipeline's parts are the UNet (models/unet), the VAE (models/vae), the
// two CLIP text encoders (models/clip/text_encoder.h) and single-file renaming (single_file.h);
// runtime/diffusion runs them.
#include "models/registry.h"

namespace eight {
namespace {

const bool registered = [] {
  register_architecture({.name = "sdxl",
                         .family = "image",
                         .summary = "Stable Diffusion XL text-to-image (single files, diffusers "
                                    "folders; Turbo and LCM)"});
  return true;
}();

}  // namespace
}  // namespace eight
