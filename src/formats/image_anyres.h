#pragma once
// LLaVA-NeXT's "anyres" image preprocessing, as transformers' LlavaNextImageProcessor (PIL backend)
// and the original LLaVA-NeXT code do it: pick the best-fit resolution among the configured
// pinpoints, resize keeping the aspect ratio (PIL bicubic), pad with black to that resolution
// centred, cut it into tiles of the vision tower's size, and put the whole image squashed to the
// tower's size first; every tile then gets the CLIP preprocessing (rescale, mean/std).
#include <array>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/image.h"

namespace eight::image {

// The most tiles one image may become (llava-v1.6 uses up to 4 + 1, LLaVA-OneVision up to 36 + 1).
inline constexpr int64_t kMaxAnyresTiles = 256;

struct AnyresConfig {
  PreprocessConfig base;  // size.shortest_edge, crop_size (the tile size), mean/std
  // image_grid_pinpoints: candidate resolutions as (height, width).
  std::vector<std::array<int, 2>> pinpoints;
};

// Reads preprocessor_config.json of a LlavaNextImageProcessor (CLIP fields plus
// "image_grid_pinpoints"). Throws Error when the pinpoints are missing or malformed.
AnyresConfig parse_anyres_config(const std::string& json_text);
// Validates pinpoints from any source (config.json, an mmproj GGUF): 1..64 entries, each side in
// 1..8192. `where` names the source in errors.
void check_pinpoints(const std::vector<std::array<int, 2>>& pinpoints, const std::string& where);

// transformers' select_best_resolution: the pinpoint (height, width) that keeps the most of the
// image's pixels after an aspect-preserving downscale, ties broken by the least wasted area.
std::array<int, 2> select_best_resolution(int height, int width,
                                          const std::vector<std::array<int, 2>>& pinpoints);

struct AnyresPixels {
  // F32 [1 + rows * cols, 3, tile_h, tile_w]: the whole image first, then the tiles row-major.
  Tensor pixels;
  int best_height = 0, best_width = 0;  // the selected pinpoint
  int rows = 0, cols = 0;               // the tile grid of the selected pinpoint
};

AnyresPixels preprocess_anyres(const Image& image, const AnyresConfig& config);

}  // namespace eight::image
