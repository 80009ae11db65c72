// Multi-component plans (stages and residency from the catalog's component sizes) and the
// recommendations built on the planner.
#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/plan/planner.h"
#include "runtime/plan/recommend.h"

namespace eight {
namespace {

PipelinePlan pplan(const std::string& spec, int64_t vram = 8 * kGiB, int64_t ram = 16 * kGiB) {
  return plan_pipeline(resolve_model(spec), {.vram = vram, .ram = ram});
}

TEST(PipelinePlanner, SeedPipelinesAt8GiB) {
  // Small models stay resident.
  for (const char* m : {"clip", "blip", "deepbooru", "magnet", "whisper", "whisper:F16"}) {
    const PipelinePlan p = pplan(m);
    EXPECT_EQ(p.verdict, Verdict::FitsOnGPU) << m << ": " << p.summary;
    EXPECT_EQ(p.strategy, "every component resident on the GPU") << m;
  }
  // SDXL at the seed's quant fits; FLUX's FP8 transformer (11.9 GB) cannot be resident, Q4_0 can.
  EXPECT_EQ(pplan("sdxl").verdict, Verdict::FitsOnGPU);
  PipelinePlan flux = pplan("flux-1-schnell:FP8");
  EXPECT_EQ(flux.verdict, Verdict::PartialOffload) << flux.summary;
  bool streamed = false;
  for (const auto& c : flux.components)
    streamed = streamed || (c.id == "dit" && c.device == "stream");
  EXPECT_TRUE(streamed);
  ASSERT_FALSE(flux.suggestions.empty());
  EXPECT_NE(flux.suggestions[0].find("Q4_"), std::string::npos) << flux.suggestions[0];
  EXPECT_EQ(pplan("flux-1-schnell:Q4_0").verdict, Verdict::FitsOnGPU);
  // Video: the seed's Q3_K fits only by loading components per stage; Q4_K does not fit resident.
  for (const char* m : {"wan:Q3_K", "ltx-video:Q3_K"}) {
    const PipelinePlan p = pplan(m);
    EXPECT_EQ(p.verdict, Verdict::FitsOnGPU) << m << ": " << p.summary;
    EXPECT_NE(p.strategy, "every component resident on the GPU") << m;
  }
  EXPECT_NE(pplan("wan:Q4_K").verdict, Verdict::FitsOnGPU);
  EXPECT_NE(pplan("ltx-video:Q4_K").verdict, Verdict::FitsOnGPU);
}

TEST(PipelinePlanner, StagePeaksStayInsideTheBudget) {
  for (const auto& e : catalog().models()) {
    if (e.kind != ModelKind::Pipeline) continue;
    for (int64_t vram : {4 * kGiB, 8 * kGiB, 16 * kGiB}) {
      const PipelinePlan p = plan_pipeline(resolve_model(e.id), {.vram = vram, .ram = 32 * kGiB});
      if (!p.fits()) continue;
      EXPECT_LE(p.gpu_peak, vram) << e.id;
      EXPECT_LE(p.cpu_peak, 32 * kGiB) << e.id;
      ASSERT_EQ(p.stages.size(), e.variant().stages.size());
      for (const auto& s : p.stages) EXPECT_LE(s.gpu_bytes + p.budget.gpu_reserve, vram) << e.id;
    }
  }
}

TEST(PipelinePlanner, CpuOnlyAndTooSmall) {
  EXPECT_EQ(pplan("whisper", 0).verdict, Verdict::CPUOnly);
  const PipelinePlan p = pplan("flux-1-schnell:FP8", 0, 8 * kGiB);
  EXPECT_EQ(p.verdict, Verdict::DoesNotFit);
  EXPECT_NE(p.summary.find("does not fit"), std::string::npos);
  EXPECT_THROW(plan_pipeline(resolve_model("sdxl"), {.vram = -1}), Error);
  EXPECT_THROW(plan_pipeline(resolve_model("mistral-7b-instruct"), {}), Error);
}

TEST(Recommend, EverySeedChatModelFits8GiBAndPicksGrowWithVram) {
  const auto chat = recommend("chat", {.vram = 8 * kGiB, .ram = 16 * kGiB});
  ASSERT_EQ(chat.size(), 5u);  // the seed's four and the tiny default (SmolLM2)
  for (const auto& p : chat) EXPECT_EQ(p.verdict, Verdict::FitsOnGPU) << p.entry->id;
  EXPECT_TRUE(chat.front().entry->must_have());
  for (const auto& e : catalog().models()) {
    int64_t prev = 0;
    for (int64_t gib : {6, 8, 12, 16, 24}) {
      const Pick p = recommend_model(e, {.vram = gib * kGiB, .ram = 32 * kGiB});
      if (p.verdict != Verdict::FitsOnGPU) continue;
      EXPECT_GE(p.bytes, prev) << e.id << " at " << gib << " GiB";
      prev = p.bytes;
    }
  }
}

TEST(Recommend, ContextThatFitsAndBadTask) {
  // DeepSeek-Coder's seed quant keeps a few thousand tokens on an 8 GiB GPU.
  const Pick ds =
      assess(*find_model("deepseek-coder"), "Q4_K_M", {.vram = 8 * kGiB, .ram = 16 * kGiB});
  EXPECT_EQ(ds.verdict, Verdict::FitsOnGPU);
  EXPECT_GE(ds.ctx, 4096);
  EXPECT_LT(ds.ctx, 8192);
  // With 2 GiB of VRAM no 7B model fits on the GPU.
  for (const auto& p : recommend("code", {.vram = 2 * kGiB, .ram = 16 * kGiB})) {
    if (p.entry->id == "deepseek-coder-6.7b-instruct") {
      EXPECT_NE(p.verdict, Verdict::FitsOnGPU);
    }
  }
  EXPECT_THROW(recommend("painting", {}), Error);
  EXPECT_EQ(recommend("speech", {.vram = 8 * kGiB, .ram = 16 * kGiB}).size(), 1u);
  EXPECT_EQ(recommend("audio", {.vram = 8 * kGiB, .ram = 16 * kGiB}).size(), 2u);
}

}  // namespace
}  // namespace eight
