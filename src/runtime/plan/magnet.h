#pragma once
// Memory plan for MAGNeT text-to-codes (models/magnet) from its shapes alone: the LM weights as
// the checkpoint stores them (used in place from the mapping), the heap a decoding step holds at
// its peak (generate.cpp's batch of two sequences through magnet_forward.cpp's buffers, one
// codebook's logits, the per-thread sampling scratch) and the CPU kernels' scratch. The T5
// encoder is planned by plan_t5 and runs before decoding, so its activations are gone by then.
#include <cstdint>

#include "core/dtype.h"
#include "models/magnet/magnet.h"

namespace eight {

struct MagnetPlan {
  magnet::Config config;
  int64_t frames = 0;  // decoded frames (whole spans)
  int64_t parameters = 0;
  int64_t weight_bytes = 0, activation_bytes = 0, scratch_bytes = 0;
  int64_t total() const { return weight_bytes + activation_bytes + scratch_bytes; }
};

// The LM's parameter count (embeddings, layers, output linears, conditioner projection).
int64_t magnet_parameters(const magnet::Config& c);
// matrix: the dtype of the stored weights (F32, F16, BF16); frames: before cutting to spans;
// text_tokens: the prompt's T5 tokens.
MagnetPlan plan_magnet(const magnet::Config& c, DType matrix, int64_t frames, int64_t text_tokens,
                       int threads);

}  // namespace eight
