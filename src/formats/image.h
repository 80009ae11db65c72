#pragma once
// Still images for vision models: decoding (JPEG, PNG, WebP, BMP, GIF's first frame) with the EXIF
// orientation applied, and the CLIP-style preprocessing a checkpoint's preprocessor_config.json
// describes (shortest side resized with bicubic filtering, center crop, RGB, mean/std
// normalization).
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/tensor.h"

namespace eight::image {

// Refuse absurd images before allocating: 2^28 pixels (16384 × 16384).
inline constexpr int64_t kMaxPixels = int64_t{1} << 28;

struct Image {
  int width = 0;
  int height = 0;
  // [height, width, 3] bytes, row-major, EXIF orientation already applied. Stored as DType::I8
  // (the dtype table has no unsigned byte type): read it as uint8_t.
  Tensor rgb;
};

// Decodes a file / bytes in memory. Throws Error naming the file (or `name`) and the reason for
// unreadable, truncated or unsupported images, and for images over max_pixels (checked from the
// header, before the pixels are allocated).
Image load(const std::string& path);
Image decode(std::span<const uint8_t> bytes, const std::string& name,
             int64_t max_pixels = kMaxPixels);
// The width and height in a JPEG, PNG, WebP, BMP or GIF file's header (before EXIF orientation),
// without decoding it; false when the file cannot be read or is not such an image.
bool read_size(const std::string& path, int* width, int* height);
// A bound on the tracked heap bytes decode() holds for a width x height image beside the file's
// own bytes: the decoded pixels (four channels when the file has alpha), stb's working buffers
// and the RGB copy the alpha is composited into. Measured on incompressible 1200 x 900 PNGs (RGB
// and RGBA) and a JPEG, where the RGBA PNG needs the most (tests/runtime/test_planner_tagger.cpp).
inline int64_t decode_bytes(int64_t width, int64_t height) {
  return width * height * 8;
}

// What preprocessor_config.json says (Hugging Face CLIPImageProcessor fields).
struct PreprocessConfig {
  int shortest_edge = 224;  // "size": {"shortest_edge": N} (or an int)
  int crop_height = 224;    // "crop_size": {"height", "width"} (or an int)
  int crop_width = 224;
  bool do_resize = true;
  bool do_center_crop = true;
  bool do_normalize = true;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};  // OpenAI CLIP's defaults
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
};

// Parses preprocessor_config.json text; missing fields keep the defaults above. Throws Error on
// malformed JSON or out-of-range sizes.
PreprocessConfig parse_preprocess_config(const std::string& json_text);

// Resizes to width x height (no aspect kept) with PIL's BICUBIC, as PIL's Image.resize does it on
// 8-bit RGB (horizontal pass, then vertical, each rounded). Returns the image itself when the size
// is unchanged.
Image resize(const Image& image, int width, int height);

// PIL's resampling filters (Image.BICUBIC, Image.LANCZOS), with PIL's 8-bit arithmetic.
enum class Filter { Bicubic, Lanczos };
struct ResizeOptions {
  Filter filter = Filter::Bicubic;
  // PIL's `box` (x0, y0, x1, y1): the source region mapped onto the output; none = the whole
  // image. A region of zero height (or width) stretches the rows (columns) around that edge, as
  // A1111's "resize and fill" does.
  std::optional<std::array<double, 4>> box;
};
Image resize(const Image& image, int width, int height, const ResizeOptions& options);

// The pixel tensor the vision tower takes: F32 [3, crop_height, crop_width].
Tensor preprocess(const Image& image, const PreprocessConfig& config);

}  // namespace eight::image
