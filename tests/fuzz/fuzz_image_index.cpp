// libFuzzer target for the image-index reader (`eight index` / `eight search` files): any input
// must parse or throw eight::Error, and a parsed index must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "runtime/vision/image_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const eight::image_index::Index index = eight::image_index::parse(data, size, "fuzz.idx");
    const size_t n = index.files.size();
    if (n > 0 && (!index.embeddings.defined() ||
                  index.embeddings.numel() != static_cast<int64_t>(n) * index.dim))
      std::abort();  // a parsed index whose embeddings do not match its file list
  } catch (const eight::Error&) {
  }
  return 0;
}
