// libFuzzer target for LLaVA 1.6 mmproj GGUF files: bytes go through the GGUF reader and, when
// they parse, through the mmproj loader (clip.vision.* keys, pinpoints, feature_layer, the tower
// and projector tensors), then the image-token count for a few image sizes (best-fit pinpoint and
// spatial unpad). Any input must load or throw eight::Error. Seed: the tiny legacy mmproj of
// tests/data/llava.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/llava/llava.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    const auto f = eight::gguf::File::parse(bytes, "fuzz.gguf");
    const auto enc = eight::llava::VisionEncoder::from_mmproj(f, "fuzz.gguf");
    int64_t n = 0;
    for (const auto& [h, w] : {std::pair{1, 1}, std::pair{37, 500}, std::pair{4000, 3}})
      n += enc->count_tokens(h, w);
    volatile int64_t sink = n;
    (void)sink;
  } catch (const eight::Error&) {
  }
  return 0;
}
