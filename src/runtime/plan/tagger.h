#pragma once
// Memory plan for an image tagger (models/tagger: the WD v3 ViT / ConvNeXt / SwinV2 taggers and
// DeepBooru) for `eight tag` and `eight plan`: the weights (the file mapping plus the loader's
// copies), one batch of preprocessed images stacked as vision::tag_images holds it, and on top of
// it the larger of predict()'s activations and one image's decoding and preprocessing, plus the
// kernels' per-thread scratch (kept for the threads' lives). Each model counts its own shapes
// (Tagger::memory); tests/runtime/test_planner_tagger.cpp holds the sum to the tracked peak.
#include <cstdint>
#include <string>

#include "models/tagger/tagger.h"
#include "runtime/plan/planner.h"

namespace eight {

struct TaggerPlanRequest {
  int64_t batch = 1;             // images per forward pass (eight tag --batch)
  int n_threads = 0;             // 0: default_thread_count()
  int64_t image_width = 0;       // the largest image decoded; 0: the model's input size
  int64_t image_height = 0;      //
  int64_t image_file_bytes = 0;  // the largest image file (mapped while it is decoded)
  int64_t ram = 0;               // budget; 0: system_ram_budget()
};

struct TaggerPlan {
  std::string model, architecture;
  TaggerPlanRequest request;  // with threads and the budget resolved
  tagger::MemoryEstimate memory;
  DevicePlan cpu;  // the bill: its items add up to host_peak
  int64_t weight_bytes() const { return memory.weight_bytes; }
  int64_t host_peak() const { return cpu.total(); }
  bool fits() const { return cpu.fits(); }
  // Throws Error with the numbers when the plan exceeds the budget.
  void check_host_budget() const;
};

TaggerPlan plan_tagger(const tagger::Tagger& model, const TaggerPlanRequest& request);
std::string render_plan(const TaggerPlan& plan);

}  // namespace eight
