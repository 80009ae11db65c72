// libFuzzer target for the PyTorch checkpoint reader (zip and legacy containers, the restricted
// unpickler): any input must parse or throw eight::Error — no crash, no sanitizer report, no hang,
// no allocation beyond what the input justifies. A file that parses is used the way loaders use
// it: every tensor read at both ends, the state dict located, the value tree walked.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/torch_checkpoint.h"

namespace {
size_t walk(const eight::pickle::Value& v, int depth) {
  if (depth > 300) return 0;
  size_t n = v.s.size() + static_cast<size_t>(v.kind);
  for (const auto* c : v.items) n += walk(*c, depth + 1);
  for (const auto& [k, x] : v.dict) n += walk(*k, depth + 1) + walk(*x, depth + 1);
  if (v.state) n += walk(*v.state, depth + 1);
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  eight::pickle::Limits limits;
  limits.max_ops = 1'000'000;  // keeps each run fast; the defaults are for real checkpoints
  try {
    const auto c = eight::torch::Checkpoint::parse(bytes, "fuzz.pt", limits);
    volatile uint8_t sink = 0;
    for (const auto& info : c.tensors()) {
      try {
        const eight::Tensor t = c.tensor(info);
        if (t.nbytes() == 0) continue;
        const auto* p = static_cast<const uint8_t*>(t.raw());
        sink = sink + p[0] + p[t.nbytes() - 1];
      } catch (const eight::Error&) {
      }
    }
    sink = sink + static_cast<uint8_t>(c.state_dict_prefix().size() + walk(c.root(), 0));
  } catch (const eight::Error&) {
  }
  return 0;
}
