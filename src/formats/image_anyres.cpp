// LLaVA-NeXT anyres preprocessing (see image_anyres.h). Every size rule below follows transformers'
// image_processing_utils (select_best_resolution, get_patch_output_size) and
// LlavaNextImageProcessorPil (_get_padding_size, get_image_patches) in Python's float64
// arithmetic, because an off-by-one size moves every pixel of the resized image.
#include "formats/image_anyres.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace eight::image {
namespace {

// Copies the [h, w] window at (y0, x0) of `src` into a new image; pixels outside `src` are black.
Image window(const Image& src, int y0, int x0, int h, int w) {
  Image out{w, h, Tensor::empty({h, w, 3}, DType::I8)};
  auto* dst = out.rgb.data<uint8_t>();
  std::memset(dst, 0, static_cast<size_t>(h) * w * 3);
  const auto* s = src.rgb.data<const uint8_t>();
  for (int y = 0; y < h; ++y) {
    const int sy = y0 + y;
    if (sy < 0 || sy >= src.height) continue;
    const int xa = std::max(0, -x0), xb = std::min(w, src.width - x0);
    if (xb > xa)
      std::memcpy(dst + (static_cast<int64_t>(y) * w + xa) * 3,
                  s + (static_cast<int64_t>(sy) * src.width + x0 + xa) * 3,
                  static_cast<size_t>(xb - xa) * 3);
  }
  return out;
}

}  // namespace

void check_pinpoints(const std::vector<std::array<int, 2>>& pinpoints, const std::string& where) {
  check(!pinpoints.empty() && pinpoints.size() <= 64, "[", where, "] image_grid_pinpoints has ",
        pinpoints.size(), " entries (1..64 allowed)");
  for (const auto& p : pinpoints)
    check(p[0] >= 1 && p[0] <= 8192 && p[1] >= 1 && p[1] <= 8192, "[", where,
          "] image_grid_pinpoints entry [", p[0], ", ", p[1], "] is outside 1..8192");
}

AnyresConfig parse_anyres_config(const std::string& json_text) {
  AnyresConfig cfg;
  cfg.base = parse_preprocess_config(json_text);  // also validates the JSON
  const auto j = nlohmann::json::parse(json_text);
  check(j.contains("image_grid_pinpoints") && j.at("image_grid_pinpoints").is_array(),
        "[preprocessor_config] \"image_grid_pinpoints\" (a list of [height, width]) is missing");
  for (const auto& e : j.at("image_grid_pinpoints")) {
    check(e.is_array() && e.size() == 2 && e[0].is_number_integer() && e[1].is_number_integer(),
          "[preprocessor_config] image_grid_pinpoints entry ", e.dump(), " is not [height, width]");
    const auto h = e[0].get<int64_t>(), w = e[1].get<int64_t>();
    check(h >= 1 && h <= 8192 && w >= 1 && w <= 8192, "[preprocessor_config] image_grid_pinpoints",
          " entry ", e.dump(), " is outside 1..8192");
    cfg.pinpoints.push_back({static_cast<int>(h), static_cast<int>(w)});
  }
  check_pinpoints(cfg.pinpoints, "preprocessor_config");
  return cfg;
}

std::array<int, 2> select_best_resolution(int height, int width,
                                          const std::vector<std::array<int, 2>>& pinpoints) {
  std::array<int, 2> best{};
  int64_t max_effective = 0;
  int64_t min_wasted = std::numeric_limits<int64_t>::max();
  const int64_t original = int64_t{width} * height;
  for (const auto& [ph, pw] : pinpoints) {
    const double scale =
        std::min(static_cast<double>(pw) / width, static_cast<double>(ph) / height);
    const auto dw = static_cast<int64_t>(width * scale), dh = static_cast<int64_t>(height * scale);
    const int64_t effective = std::min(dw * dh, original);
    const int64_t wasted = int64_t{pw} * ph - effective;
    if (effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
      max_effective = effective;
      min_wasted = wasted;
      best = {ph, pw};
    }
  }
  return best;
}

AnyresPixels preprocess_anyres(const Image& image, const AnyresConfig& cfg) {
  check_pinpoints(cfg.pinpoints, "image.anyres");
  const int H = image.height, W = image.width;
  check(H > 0 && W > 0, "[image.anyres] empty image ", W, "x", H);
  AnyresPixels r;
  const auto [th, tw] = select_best_resolution(H, W, cfg.pinpoints);
  r.best_height = th;
  r.best_width = tw;
  // get_patch_output_size: fit the image inside the pinpoint, rounding the free side up.
  const double scale_w = static_cast<double>(tw) / W, scale_h = static_cast<double>(th) / H;
  int nh = th, nw = tw;
  if (scale_w < scale_h)
    nh = std::min(static_cast<int>(std::ceil(H * scale_w)), th);
  else
    nw = std::min(static_cast<int>(std::ceil(W * scale_h)), tw);
  const Image fitted = resize(image, nw, nh);
  // Black padding centred, the odd pixel after (divmod(target - size, 2)).
  const int pad_y = (th - nh) / 2, pad_x = (tw - nw) / 2;
  // Tiles of crop_size.height (divide_to_patches), the last row/column possibly partial; each then
  // goes through the CLIP steps, which bring it to the crop size exactly as the processor does.
  const int tile = cfg.base.crop_height;
  r.rows = (th + tile - 1) / tile;
  r.cols = (tw + tile - 1) / tile;
  // LLaVA-NeXT uses at most a few dozen tiles; a pinpoint far larger than the tile is a broken
  // config, refused before the allocation it would cause.
  check(int64_t{r.rows} * r.cols <= kMaxAnyresTiles, "[image.anyres] pinpoint ", th, "x", tw,
        " makes ", r.rows, "x", r.cols, " tiles of ", tile, " px (at most ", kMaxAnyresTiles,
        " allowed)");
  const int64_t n = 1 + int64_t{r.rows} * r.cols;
  const int ch = cfg.base.crop_height, cw = cfg.base.crop_width;
  r.pixels = Tensor::empty({n, 3, ch, cw}, DType::F32);
  auto put = [&](int64_t i, const Image& im) {
    const Tensor t = preprocess(im, cfg.base);
    check(t.size(1) == ch && t.size(2) == cw, "[image.anyres] a tile preprocessed to ",
          t.shape().str(), ", not 3x", ch, "x", cw, " (set do_center_crop)");
    std::memcpy(r.pixels.data<float>() + i * 3 * ch * cw, t.data<float>(),
                static_cast<size_t>(3 * ch * cw) * sizeof(float));
  };
  // The whole image squashed to (shortest_edge, shortest_edge), as get_image_patches does.
  put(0, resize(image, cfg.base.shortest_edge, cfg.base.shortest_edge));
  for (int ry = 0; ry < r.rows; ++ry)
    for (int rx = 0; rx < r.cols; ++rx) {
      const int y0 = ry * tile, x0 = rx * tile;
      const int h = std::min(tile, th - y0), w = std::min(tile, tw - x0);
      put(1 + int64_t{ry} * r.cols + rx, window(fitted, y0 - pad_y, x0 - pad_x, h, w));
    }
  return r;
}

}  // namespace eight::image
