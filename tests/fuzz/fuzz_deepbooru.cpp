// DeepBooru's loader on arbitrary bytes: the safe PyTorch reader, then the `tags` list and the
// 179 convolutions' names, shapes and types. Anything malformed must be an eight::Error.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "core/storage.h"
#include "models/deepbooru/deepbooru.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  eight::pickle::Limits limits;
  limits.max_ops = 1'000'000;  // keeps each run fast; the defaults are for real checkpoints
  try {
    const auto ck = eight::torch::Checkpoint::parse(bytes, "fuzz.pt", limits);
    std::vector<std::string> tags;
    const auto net = eight::deepbooru::Network::from_checkpoint(ck, "fuzz.pt", &tags);
    volatile int64_t sink = net.activation_bytes(128) + net.n_tags();
    (void)sink;
  } catch (const eight::Error&) {
  }
  return 0;
}
