// libFuzzer target for LLaVA-NeXT anyres preprocessing: the input is a preprocessor_config.json
// (up to the first NUL byte) followed by an image file. Any input must give tiles or throw
// eight::Error. Configs asking for large tiles or pinpoints are skipped so one input costs
// milliseconds; the library's own bounds (sizes <= 8192, <= 256 tiles) are checked regardless.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "formats/image.h"
#include "formats/image_anyres.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* end = data + size;
  const auto* nul = std::find(data, end, uint8_t{0});
  if (nul == end) return 0;
  const std::string json(reinterpret_cast<const char*>(data), static_cast<size_t>(nul - data));
  try {
    const eight::image::AnyresConfig cfg = eight::image::parse_anyres_config(json);
    bool small =
        cfg.base.shortest_edge <= 64 && cfg.base.crop_height <= 64 && cfg.base.crop_width <= 64;
    for (const auto& p : cfg.pinpoints) small = small && p[0] <= 256 && p[1] <= 256;
    if (!small) return 0;
    const eight::image::Image im = eight::image::decode(
        {nul + 1, static_cast<size_t>(end - nul - 1)}, "fuzz.img", /*max_pixels=*/int64_t{1} << 16);
    const eight::image::AnyresPixels px = eight::image::preprocess_anyres(im, cfg);
    volatile float sink = px.pixels.data<float>()[0];
    (void)sink;
  } catch (const eight::Error&) {
  }
  return 0;
}
