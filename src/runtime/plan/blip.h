#pragma once
// Memory plan for BLIP (models/blip): the vision tower as CLIP's plan counts it (plan_clip on the
// same ViT shape, one image per pass), plus the text side:
//   decoder self-attention cache 2 · layers · beams · max_length · D · 4 (blip_text.cpp
//   DecoderCache, and one layer's copy while beams are reordered), cross-attention keys and
//   values 2 · layers · S · E · 4 over the S image tokens (VQA: also the question encoder's over
//   the image and the decoder's over the question's tokens), the image embeddings
//   S · D_vision · 4, one step's rows beams · (6D + I) · 4, the logits, their log-softmax and
//   the top-k index over beams · vocab (4 + 4 + 8 bytes each), and the caller's preprocessed
//   pixels. The vision tower's activations are gone by then: the larger phase is the peak
//   (tests/runtime/test_planner_blip.cpp holds it to the tracked peak).
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "models/blip/blip.h"
#include "runtime/plan/planner.h"

namespace eight {

struct BlipPlan {
  std::string model;
  int beams = 1, max_length = 20, n_threads = 0;
  int64_t weight_bytes = 0;   // as CLIP's plan counts them, for the whole checkpoint
  int64_t vision_bytes = 0;   // the vision tower's activations for one image
  int64_t decoder_bytes = 0;  // caches, cross-attention states, one step, logits
  int64_t scratch_bytes = 0;  // kernel scratch over all threads
  DevicePlan cpu;
  int64_t host_peak() const { return cpu.total(); }
  // Throws Error with the numbers when the plan exceeds the RAM budget (0: system_ram_budget()).
  void check_host_budget(int64_t ram = 0) const;
};

// file_bytes: the checkpoint's mapped bytes; beams / max_length as generation will use them;
// question_tokens: a VQA question's length with [CLS] and [SEP] (0: max_positions).
BlipPlan plan_blip(const blip::Config& config, const std::string& name, int64_t file_bytes,
                   DType matrix_type, int beams, int max_length, int n_threads,
                   int question_tokens = 0);

}  // namespace eight
