// libFuzzer target for the SDXL single-file splitter: bytes go through the safetensors reader and,
// when they parse, through split_single_file. Any input must split or throw eight::Error — no
// crash, no sanitizer report. Seeds: small Stability-layout files (tests/fuzz/seeds/).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/safetensors.h"
#include "models/sdxl/single_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    const auto f = eight::safetensors::File::parse(bytes, "fuzz.safetensors");
    if (eight::sdxl::is_sdxl_single_file(f)) {
      const auto parts = eight::sdxl::split_single_file(f);
      volatile size_t sink = parts.unet.size() + parts.vae.size() + parts.text_encoder.size() +
                             parts.text_encoder_2.size();
      (void)sink;
    }
  } catch (const eight::Error&) {
  }
  return 0;
}
