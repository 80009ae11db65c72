// The BLIP memory plan (runtime/plan/blip.h) against the tracked allocators on the tiny
// random-weight fixtures (tests/data/blip: a captioning model in safetensors, a VQA model in
// pytorch_model.bin): in a fresh child process, the bytes the load leaves resident against the
// planned weights, and the peak of a real caption / answer (preprocess, vision tower, decoder
// with its caches, beam search) over them against the rest of the plan. Both must be covered
// and within 5 %, for greedy and beam search and two generation lengths.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "child_process.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "models/blip/blip.h"
#include "plan_check.h"
#include "runtime/plan/blip.h"

namespace eight {
namespace {

const std::string kData = std::string(EIGHT_SOURCE_DIR) + "/tests/data/blip/";

// {planned, measured} for the weights (run == false) or one generation (run == true).
std::pair<int64_t, int64_t> measure(const std::string& model, int beams, int max_new, int threads,
                                    bool run) {
  return testing::in_child([&] {
    MemoryTracker& tr = memory_tracker();
    ThreadPool pool(threads);
    const int64_t base = tr.stats().current;
    const auto m = blip::Model::load(kData + model);
    // As `eight caption` / `eight ask` plan it: [DEC] (and no prompt), then the new tokens.
    const std::string question = "what is in the picture?";
    const BlipPlan plan =
        plan_blip(m->config(), m->name(), m->file_bytes(), m->matrix_type(), beams, 1 + max_new,
                  pool.size(), static_cast<int>(m->tokenize(question).size()));
    const int64_t loaded = tr.stats().current - base;
    if (!run) return std::pair{plan.weight_bytes, loaded};
    tr.reset_peak();
    const int64_t before = tr.stats().current;
    const Tensor px = m->preprocess(image::load(kData + "gradient.png"));
    const blip::GenerateOptions opt{.prompt = "", .max_new_tokens = max_new, .num_beams = beams};
    if (m->is_vqa())
      m->answer(px, question, opt, pool);
    else
      m->caption(px, opt, pool);
    return std::pair{plan.host_peak() - plan.weight_bytes, tr.stats().peak - before};
  });
}

TEST(PlannerBlip, MeasuredPeakWithinFivePercent) {
  for (const char* model : {"caption", "vqa"}) {
    const std::string m = model;
    const auto w = measure(m, 1, 10, 1, false);
    testing::expect_plan_tight(m + " weights", w, w.first);
    // Greedy and short: the vision tower's pass is the peak; 8 beams of 38 tokens: the decoder's
    // caches are.
    for (const auto& [beams, max_new] : {std::pair{1, 5}, std::pair{8, 38}}) {
      const std::string b =
          m + " beams " + std::to_string(beams) + " tokens " + std::to_string(max_new);
      const auto one = measure(m, beams, max_new, 1, true);
      testing::expect_plan_tight(b + " threads 1", one, one.first);
      testing::expect_plan_tight(b + " threads 2", measure(m, beams, max_new, 2, true), one.first);
    }
  }
}

}  // namespace
}  // namespace eight
