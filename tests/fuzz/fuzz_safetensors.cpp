// libFuzzer target for the safetensors reader: any input must parse or throw eight::Error — no
// crash, no sanitizer report, no allocation beyond what the input justifies. A file that parses
// is then used the way loaders use it: every viewable tensor read at both ends.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    const auto f = eight::safetensors::File::parse(bytes, "fuzz.safetensors");
    volatile uint8_t sink = 0;
    for (const auto& info : f.tensors()) {
      try {
        const eight::Tensor t = f.tensor(info);
        if (t.nbytes() == 0) continue;
        const auto* p = static_cast<const uint8_t*>(t.raw());
        sink = sink + p[0] + p[t.nbytes() - 1];
      } catch (const eight::Error&) {
      }
    }
    for (const auto& [k, v] : f.metadata()) sink = sink + static_cast<uint8_t>(k.size() + v.size());
  } catch (const eight::Error&) {
  }
  return 0;
}
