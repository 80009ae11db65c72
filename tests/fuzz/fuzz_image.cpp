// libFuzzer target for image decoding (stb_image's JPEG/PNG/BMP/GIF, libwebp, the EXIF reader)
// and the preprocessing that follows: any input must decode or throw eight::Error. The pixel cap
// is lower than the library's so a forged header costs milliseconds, not seconds, per input.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const eight::image::Image im =
        eight::image::decode({data, size}, "fuzz.img", /*max_pixels=*/int64_t{1} << 18);
    eight::image::PreprocessConfig cfg;
    cfg.shortest_edge = 24;
    cfg.crop_height = 16;
    cfg.crop_width = 20;
    const eight::Tensor t = eight::image::preprocess(im, cfg);
    volatile float sink = t.data<float>()[0];
    (void)sink;
  } catch (const eight::Error&) {
  }
  return 0;
}
