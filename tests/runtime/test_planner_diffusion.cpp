// The image-pipeline memory plan (runtime/plan/diffusion.h) against the models and the tracked
// allocators: the plan's replays of the UNet and VAE allocations equal the models' own bounds
// (unet::Model::activation_bytes, vae::Model::decode_bytes) on the tiny SDXL pipeline of
// tests/python/sdxl_tiny.py, and a whole generate() run in a fresh child process peaks (heap +
// file mappings, from before the load) within 5% below the plan, never above it.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "child_process.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/sdxl_test_util.h"
#include "models/unet/unet.h"
#include "models/vae/vae.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/diffusion/sdxl_parts.h"
#include "runtime/plan/diffusion.h"
#include "test_util.h"

namespace eight {
namespace {

// One tiny pipeline per dtype for the whole program (written by numpy, a few seconds each).
const std::string& tiny(const std::string& dtype) {
  static testing::TempDir dir;
  static std::map<std::string, std::string> made;
  auto it = made.find(dtype);
  if (it == made.end()) {
    const testing::TempDir& d = dir;
    const std::string out = sdxl_test::write_tiny(d, dtype);
    const std::string moved = out + "-" + dtype;
    std::filesystem::rename(out, moved);
    it = made.emplace(dtype, moved).first;
  }
  return it->second;
}

TEST(PlannerDiffusion, ReplaysEqualTheModels) {
  for (const char* dtype : {"f32", "f16"}) {
    SCOPED_TRACE(dtype);
    const diffusion::SDXLFiles f = diffusion::read_sdxl_files(tiny(dtype), "");
    const ImageModelDesc d = describe_image_model(tiny(dtype));
    const auto unet = unet::Model::build(f.unet, f.unet_config);
    const auto vae = vae::Model::build(f.vae, f.vae_config);
    for (auto [N, h, w, L] :
         {std::array<int64_t, 4>{1, 8, 8, 77}, {2, 16, 12, 77}, {2, 32, 32, 154}, {1, 40, 24, 77}})
      EXPECT_EQ(unet_activation_bytes(d.unet, N, h, w, L), unet->activation_bytes(N, h, w, L))
          << N << " x " << h << "x" << w << ", " << L << " tokens";
    for (auto [h, w, tile, overlap] : {std::array<int64_t, 4>{8, 8, 0, 0},
                                       {32, 24, 0, 0},
                                       {32, 32, 16, 4},
                                       {40, 24, 8, 2},
                                       {32, 32, 64, 16}})
      EXPECT_EQ(vae_decode_bytes(d.vae, 1, h, w, tile, overlap),
                vae->decode_bytes(1, h, w, {.tile = tile, .overlap = overlap}))
          << h << "x" << w << " tiles " << tile << "/" << overlap;
    // The pipeline's own description (from the loaded tensors) is the same as the headers'.
    const ImageModelDesc from_files = diffusion::image_model_desc(f);
    EXPECT_EQ(from_files.file_bytes(), d.file_bytes());
    EXPECT_EQ(plan_image(from_files, {.width = 256, .height = 192, .n_threads = 2}).host_peak(),
              plan_image(d, {.width = 256, .height = 192, .n_threads = 2}).host_peak());
  }
}

TEST(PlannerDiffusion, StageBill) {
  const ImageModelDesc d = describe_image_model(tiny("f32"));
  const ImagePlan p = plan_image(d, {.width = 256, .height = 256, .n_threads = 4});
  ASSERT_EQ(p.stages.size(), 3u);
  int64_t largest = 0;
  for (const auto& s : p.stages) largest = std::max(largest, s.bytes);
  EXPECT_EQ(p.host_peak(), p.mapped_bytes + p.copied_bytes + p.scratch_bytes + largest);
  EXPECT_EQ(p.mapped_bytes, d.file_bytes());
  EXPECT_EQ(p.request.vae_tile, 0);  // this machine's RAM holds a 256 px decode
  EXPECT_TRUE(p.fits());
  EXPECT_NO_THROW(p.check_host_budget());
  // Unguided: one UNet sample per step, so the denoise stage shrinks.
  const ImagePlan one =
      plan_image(d, {.width = 256, .height = 256, .guided = false, .n_threads = 4});
  EXPECT_LT(one.stages[1].bytes, p.stages[1].bytes);
  // A budget just below the whole-image plan makes the VAE decode in tiles, when the decode is
  // the largest stage; a budget below the weights refuses the run with the numbers and options.
  const ImagePlan big = plan_image(d, {.width = 1024, .height = 1024, .n_threads = 4});
  ASSERT_EQ(big.request.vae_tile, 0);
  const ImagePlan tiled =
      plan_image(d, {.width = 1024, .height = 1024, .n_threads = 4, .ram = big.host_peak() - 1});
  EXPECT_GT(tiled.request.vae_tile, 0);
  EXPECT_EQ(tiled.vae_overlap, tiled.request.vae_tile / 4);
  EXPECT_TRUE(tiled.fits());
  EXPECT_LT(tiled.host_peak(), big.host_peak());
  const ImagePlan none =
      plan_image(d, {.width = 1024, .height = 1024, .n_threads = 4, .ram = d.file_bytes()});
  EXPECT_FALSE(none.fits());
  try {
    none.check_host_budget();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("1024x1024"), std::string::npos) << m;
    EXPECT_NE(m.find("smaller image"), std::string::npos) << m;
  }
  EXPECT_THROW(plan_image(d, {.width = 100, .height = 64}), Error);
  EXPECT_NE(p.gpu.find("not planned"), std::string::npos);  // no --vram: the CPU run
}

struct RunCase {
  int64_t width, height;
  double cfg;
  int64_t vae_tile;  // -1: the plan's choice
  int64_t ram = 0;
};

// {planned, measured} of one generate() in a forked child, measured from before the load.
std::pair<int64_t, int64_t> run_in_child(const std::string& dir, const RunCase& r, int threads,
                                         int64_t* tile_used) {
  int fds[2];
  if (::pipe(fds) != 0) return {0, -1};
  const auto result = testing::in_child([&] {
    ThreadPool& pool = global_thread_pool(threads);
    MemoryTracker& tr = memory_tracker();
    const int64_t base = tr.stats().current;
    tr.reset_peak();
    int64_t planned = 0;
    {
      diffusion::ImageLoadOptions load;
      load.path = dir;
      auto p = diffusion::ImagePipeline::load(load);
      diffusion::ImageRequest rq;
      rq.prompt = "a red cube on a table";
      rq.width = r.width;
      rq.height = r.height;
      rq.steps = 2;
      rq.cfg_scale = r.cfg;
      rq.seed = 7;
      rq.ram_budget = r.ram;
      rq.vae_tile = r.vae_tile;
      const diffusion::ImageResult res = p->generate(rq, pool);
      planned = res.plan.host_peak();
      const int64_t tile = res.plan.request.vae_tile;
      if (::write(fds[1], &tile, sizeof tile) != sizeof tile) planned = 0;
    }
    return std::pair{planned, tr.stats().peak - base};
  });
  ::close(fds[1]);
  if (::read(fds[0], tile_used, sizeof *tile_used) != sizeof *tile_used) *tile_used = -1;
  ::close(fds[0]);
  return result;
}

TEST(PlannerDiffusion, GenerateMeasuredPeakWithinFivePercent) {
  const int threads = 4;
  for (const char* dtype : {"f32", "f16"}) {
    const std::string dir = tiny(dtype);
    for (const RunCase& r :
         {RunCase{64, 64, 5.0, -1}, RunCase{64, 64, 1.0, -1}, RunCase{256, 192, 5.0, -1},
          RunCase{256, 256, 1.0, -1}, RunCase{256, 256, 5.0, 8}, RunCase{384, 256, 1.0, 16}}) {
      const std::string label =
          cat(dtype, " ", r.width, "x", r.height, " cfg ", r.cfg, " tile ", r.vae_tile);
      SCOPED_TRACE(label);
      int64_t tile = -1;
      const auto [planned, measured] = run_in_child(dir, r, threads, &tile);
      ASSERT_GT(measured, 0) << "the run failed (see stderr)";
      std::printf("%-34s tile %3lld planned %11lld measured %11lld ratio %.4f\n", label.c_str(),
                  static_cast<long long>(tile), static_cast<long long>(planned),
                  static_cast<long long>(measured),
                  static_cast<double>(measured) / static_cast<double>(planned));
      if (r.vae_tile >= 0) {
        EXPECT_EQ(tile, r.vae_tile);
      }
      EXPECT_LE(measured, planned);
      EXPECT_GE(static_cast<double>(measured), 0.95 * static_cast<double>(planned));
    }
  }
}

TEST(PlannerDiffusion, GenerateObeysTheBudget) {
  const std::string dir = tiny("f32");
  const ImageModelDesc d = describe_image_model(dir);
  // A budget the whole-image decode exceeds: the pipeline decodes in the plan's tiles and stays
  // under the budget; a budget below the weights is refused before anything runs.
  const ImagePlan whole = plan_image(d, {.width = 512, .height = 512, .n_threads = 4});
  ASSERT_EQ(whole.stages[2].name, "decode");
  const int64_t ram = whole.host_peak() - 1;
  int64_t tile = -1;
  const auto [planned, measured] = run_in_child(dir, RunCase{512, 512, 5.0, -1, ram}, 4, &tile);
  std::printf("512x512 under %lld: tile %lld planned %lld measured %lld\n",
              static_cast<long long>(ram), static_cast<long long>(tile),
              static_cast<long long>(planned), static_cast<long long>(measured));
  EXPECT_GT(tile, 0);
  EXPECT_LE(planned, ram);
  EXPECT_LE(measured, planned);
  int64_t unused = 0;
  const auto refused = run_in_child(dir, RunCase{512, 512, 5.0, -1, d.file_bytes()}, 4, &unused);
  EXPECT_EQ(refused.second, -1);  // the child threw the planner's error (on stderr)
}

}  // namespace
}  // namespace eight
