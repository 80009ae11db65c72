// libFuzzer target for CTranslate2 model.bin files and their Whisper mapping: any input must parse
// or throw eight::Error. The first byte picks where the rest is split in two, so reads that
// straddle the parts of a split model.bin (model.bin.part1, .part2) are exercised too.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/ct2_model.h"
#include "formats/whisper_ct2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto* bytes = const_cast<uint8_t*>(data + 1);
  const size_t n = size - 1, cut = n == 0 ? 0 : (data[0] * n) / 255;
  std::vector<std::shared_ptr<eight::Storage>> parts;
  parts.push_back(std::make_shared<eight::BorrowedStorage>(bytes, cut, false));
  parts.push_back(std::make_shared<eight::BorrowedStorage>(bytes + cut, n - cut, false));
  try {
    const eight::ct2::ModelBin bin = eight::ct2::parse(std::move(parts), "fuzz.bin");
    for (const auto& v : bin.variables) {
      try {
        const eight::Tensor t = bin.tensor(v.name);
        volatile size_t sink = t.nbytes();
        (void)sink;
        if (v.numel() == 1) (void)bin.scalar(v.name);
      } catch (const eight::Error&) {
      }
    }
    const auto m = eight::whisper::ct2_to_model_file(
        bin, R"({"alignment_heads": [[0, 0]], "lang_ids": [], "suppress_ids": [1]})", "[\"a\"]",
        true, "", "");
    volatile size_t sink = m.tensors.size();
    (void)sink;
  } catch (const eight::Error&) {
  }
  return 0;
}
