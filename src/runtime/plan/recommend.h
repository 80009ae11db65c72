#pragma once
// What to run on given hardware: for each catalog model, the best quant that fits (largest first),
// the context that fits with it, and why; ranked per task.
#include <string>
#include <vector>

#include "runtime/plan/planner.h"

namespace eight {

struct Pick {
  const CatalogEntry* entry = nullptr;
  const Variant* variant = nullptr;
  std::string seed_quant;  // what the seed recommends for 8 GB
  std::string quant;       // eight's pick: the largest quant that runs best on this budget
  Verdict verdict = Verdict::DoesNotFit;
  int64_t ctx = 0;       // LLMs: the largest context with every layer on the GPU (or that fits)
  int64_t bytes = 0;     // weight bytes of the pick (main component for pipelines)
  int64_t gpu_peak = 0;  // planned VRAM use at that context
  std::string why;
};

// The pick for one model: the largest quant (up to Q8_0 for LLMs: near-lossless, and F16 would
// waste memory; F16 rather than F32 for the rest) that fits on the GPU. `ctx` (0 = min(trained,
// 4096)) is the context an LLM must reach: a quant counts as fitting on the GPU only if at least
// that much context fits with every layer there.
Pick recommend_model(const CatalogEntry& e, const DeviceBudget& budget, int64_t ctx = 0);
// How one exact quant fares: an LLM counts as fitting on the GPU when at least 1k tokens of context
// fit there (ctx = the largest that does, capped at the wanted ctx's model limit).
Pick assess(const CatalogEntry& e, const std::string& quant, const DeviceBudget& budget,
            int64_t ctx = 0);
// Every model of `task` (all tasks when empty), best first: fits on the GPU before offload before
// CPU-only before not fitting; must-haves first; then the seed's order.
std::vector<Pick> recommend(const std::string& task, const DeviceBudget& budget, int64_t ctx = 0);
// "GPU 8k ctx", "offload 30/32", "GPU per stage", "CPU", "no".
std::string short_verdict(const Pick& p);
// The tasks in display order: chat, code, vision, image, video, audio, speech.
const std::vector<std::string>& task_names();

}  // namespace eight
