#pragma once
// LLaVA-NeXT (LLaVA 1.6) vision side: the CLIP vision tower read at vision_feature_layer, the
// 2-layer GELU projector into the LLM's embedding space, and transformers' pack_image_features
// (the squashed whole image's features first, then the anyres tiles' features stitched into one
// grid, the black padding cut away per the original image size, an image_newline embedding after
// every row). Loads a Hugging Face LLaVA-NeXT directory (LlavaNextForConditionalGeneration) or
// llama.cpp's mmproj GGUF.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/image.h"
#include "formats/image_anyres.h"
#include "models/clip/clip.h"

namespace eight::llava {

struct VisionConfig {
  int feature_layer = -2;          // vision_feature_layer (transformers' hidden_states index)
  int text_hidden = 0;             // text_config.hidden_size: the projector's output width
  int image_size = 336;            // vision_config.image_size: the tile size
  int patch_size = 14;             // vision_config.patch_size
  int image_token_index = 32000;   // the placeholder id the HF processor expands
  image::AnyresConfig preprocess;  // the tile preprocessing and image_grid_pinpoints
};

// Rows and columns of the stitched tile-feature grid kept after spatial unpadding
// (transformers' unpad_image): [row0, row1) x [col0, col1) of a rows x cols grid.
struct UnpadBox {
  int row0 = 0, row1 = 0, col0 = 0, col1 = 0;
};
UnpadBox unpad_box(int grid_rows, int grid_cols, int image_height, int image_width);

class VisionEncoder {
 public:
  // path: a Hugging Face LLaVA-NeXT directory (config.json, model*.safetensors,
  // preprocessor_config.json optional) or llama.cpp's mmproj GGUF of a LLaVA 1.6 model. Throws
  // Error naming what is missing or malformed.
  static std::shared_ptr<const VisionEncoder> load(const std::string& path);
  // An mmproj GGUF already parsed (from memory, for the fuzzer); `name` for messages.
  static std::shared_ptr<const VisionEncoder> from_mmproj(const gguf::File& file,
                                                          const std::string& name);

  const VisionConfig& config() const;
  const clip::Config& tower_config() const;  // the CLIP vision tower's
  // The most embeddings one image can become (the largest pinpoint, nothing unpadded), and the
  // most tiles (whole image included) it is cut into.
  int64_t max_tokens() const;
  int64_t max_tiles() const;
  int64_t weight_bytes() const;  // vision tower + projector + newline
  // The number of embeddings an image of this size becomes (the image tokens in the prompt).
  int64_t count_tokens(int image_height, int image_width) const;
  // The LLM input embeddings for one image: f32 [count_tokens(h, w), text_hidden].
  Tensor encode(const image::Image& image, ThreadPool& pool) const;
  // The same from preprocessed tiles (preprocess_anyres of an image of that size).
  Tensor encode_pixels(const image::AnyresPixels& px, int image_height, int image_width,
                       ThreadPool& pool) const;

  ~VisionEncoder();
  struct Impl;

 private:
  explicit VisionEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::llava
