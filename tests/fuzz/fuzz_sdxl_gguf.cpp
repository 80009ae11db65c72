// libFuzzer target for SDXL GGUF files (sd.cpp's whole checkpoints, ComfyUI-GGUF UNets): bytes go
// through the GGUF reader and, when they parse, through gguf_contents and split_gguf (renaming,
// regrouped-shape metadata, dequantizing what no kernel takes quantized). Any input must split or
// throw eight::Error — no crash, no sanitizer report. Seed: the tiny layout at one element per
// tensor, written by eight convert (tests/fuzz/seeds/).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/sdxl/sdxl_gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    const auto f = eight::gguf::File::parse(bytes, "fuzz.gguf");
    if (eight::sdxl::gguf_contents(f) != eight::sdxl::GGUFContents::unknown) {
      const auto parts = eight::sdxl::split_gguf(f);
      volatile size_t sink = parts.unet.size() + parts.vae.size() + parts.text_encoder.size() +
                             parts.text_encoder_2.size();
      (void)sink;
    }
  } catch (const eight::Error&) {
  }
  return 0;
}
