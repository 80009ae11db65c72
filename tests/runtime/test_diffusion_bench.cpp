// eight bench's SDXL modes (runtime/diffusion/bench.h) at a tiny image size: the random
// SDXL-shaped UNet and the tiny pipeline of tests/python/sdxl_tiny.py (UNet steps and a VAE
// decode), and the CLI's JSON. They measure; these tests only check that the numbers are there.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "models/sdxl_test_util.h"
#include "runtime/diffusion/bench.h"
#include "test_util.h"

namespace eight {
namespace {

TEST(DiffusionBench, RandomSDXLShapedUNet) {
  diffusion::DiffusionBenchParams p;
  p.sizes = {64};
  p.steps = 2;
  p.n_threads = 2;
  p.peak = false;
  const auto r = diffusion::bench_sdxl(p);
  ASSERT_EQ(r.sizes.size(), 1u);
  const auto& s = r.sizes[0];
  EXPECT_EQ(s.width, 64);
  EXPECT_EQ(s.step_s.size(), 2u);
  EXPECT_GT(s.median_step_s, 0);
  EXPECT_GT(s.median_step_cpu_s, 0);
  // SDXL's UNet is ~2.57 G parameters (5.1 GB in f16). 8x8 latents, batch 2: ~150 GFLOP a call,
  // most of it the cross-attention keys and values of the 77 context tokens (2 x 77 x 2048 x C
  // per block, whatever the image size).
  EXPECT_GT(r.weight_bytes, int64_t{5'000'000'000});
  EXPECT_LT(r.weight_bytes, int64_t{5'300'000'000});
  EXPECT_GT(s.gflop, 120);
  EXPECT_LT(s.gflop, 180);
  EXPECT_EQ(s.vae_decode_s, 0);  // no VAE in the random mode
}

TEST(DiffusionBench, TinyPipelineFolderThroughTheCLI) {
  testing::TempDir dir;
  const std::string model = sdxl_test::write_tiny(dir);
  std::string out;
  ASSERT_EQ(0, testing::run_command(testing::cli_path() + " bench -m " + model +
                                        " --size 64,128 --steps 1 -t 2 --json 2>/dev/null",
                                    &out));
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["sizes"].size(), 2u);
  EXPECT_EQ(j["sizes"][1]["width"], 128);
  EXPECT_GT(j["sizes"][0]["median_step_s"].get<double>(), 0);
  EXPECT_GT(j["sizes"][0]["vae_decode_s"].get<double>(), 0);
  EXPECT_EQ(j["batch"], 2);
}

}  // namespace
}  // namespace eight
