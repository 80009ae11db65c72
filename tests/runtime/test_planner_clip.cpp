// The CLIP memory plan (runtime/plan/clip.h) against the tracked allocators: random-weight
// checkpoints in the Hugging Face layout (tests/reference/make_random_clip.py) are loaded in a
// fresh child process, embed one batch of images (or texts), and the host peak the tracker
// measured (heap + the file mapping, from just before the load) must be within 10% of the plan.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "child_process.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/clip/clip.h"
#include "runtime/plan/clip.h"
#include "test_util.h"

namespace eight {
namespace {

std::string make_checkpoint(const testing::TempDir& dir, const std::string& preset,
                            const std::string& dtype) {
  const std::string out = dir.file(preset + "-" + dtype);
  const std::string cmd = testing::python_with("numpy") + " " + testing::source_dir() +
                          "/tests/reference/make_random_clip.py " + out + " --preset " + preset +
                          " --dtype " + dtype + " --seed 5 > /dev/null";
  // Thrown, not EXPECTed: every later step would fail with a missing-file error instead.
  if (testing::run_command(cmd) != 0)
    throw std::runtime_error("could not make a random CLIP checkpoint (the reason is above): " +
                             cmd);
  return out;
}

// {planned, measured} for one pass of `images` images or `texts` texts, in a forked child (fresh
// thread pool and scratch). measured is -1 when the child failed.
std::pair<int64_t, int64_t> run_in_child(const std::string& dir, DType matrices, int64_t images,
                                         int64_t texts, int threads) {
  return testing::in_child([&] {
    int64_t planned = 0, measured = -1;
    ThreadPool& pool = global_thread_pool(threads);
    MemoryTracker& tr = memory_tracker();
    const int64_t base = tr.stats().current;
    tr.reset_peak();
    {
      const auto model = clip::Model::load(dir);
      const clip::Config& c = model->config();
      const int64_t file = static_cast<int64_t>(
          std::filesystem::file_size(std::filesystem::path(dir) / "model.safetensors"));
      planned = plan_clip(c, model->name(), file, matrices,
                          {.images = images, .texts = texts, .n_threads = pool.size()})
                    .host_peak();
      if (images > 0) {
        Tensor px = Tensor::empty({images, 3, c.image_size, c.image_size}, DType::F32);
        const auto v = testing::random_floats(static_cast<size_t>(px.numel()));
        std::copy(v.begin(), v.end(), px.data<float>());
        model->embed_images(px, pool);
      } else {
        // Texts long enough to fill the context (truncated to max_positions).
        std::vector<std::string> t(static_cast<size_t>(texts));
        for (size_t i = 0; i < t.size(); ++i)
          for (int w = 0; w < 120; ++w) t[i] += (w + i) % 3 ? "cat " : "dog ";
        model->embed_texts(t, pool);
      }
    }
    measured = tr.stats().peak - base;
    return std::pair{planned, measured};
  });
}

void measure(const std::string& dir, const std::string& label, DType matrices, int64_t images,
             int64_t texts, int threads) {
  SCOPED_TRACE(label);
  const auto [planned, measured] = run_in_child(dir, matrices, images, texts, threads);
  ASSERT_GE(measured, 0) << "the run failed";
  std::printf("%-34s planned %11lld measured %11lld ratio %.4f\n", label.c_str(),
              static_cast<long long>(planned), static_cast<long long>(measured),
              static_cast<double>(measured) / static_cast<double>(planned));
  EXPECT_LE(static_cast<double>(measured), 1.10 * static_cast<double>(planned));
  EXPECT_GE(static_cast<double>(measured), 0.90 * static_cast<double>(planned));
}

TEST(PlannerClip, MeasuredPeakWithinTenPercent) {
  testing::TempDir dir;
  // small336: 577 tokens per image, so activations dominate; tiny F16: the weights do.
  const std::string small = make_checkpoint(dir, "small336", "f32");
  const std::string tiny = make_checkpoint(dir, "tiny", "f16");
  for (int threads : {1, 2}) {
    const std::string t = " threads " + std::to_string(threads);
    measure(small, "small336 f32 1 image" + t, DType::F32, 1, 0, threads);
    measure(small, "small336 f32 8 images" + t, DType::F32, 8, 0, threads);
    measure(small, "small336 f32 16 texts" + t, DType::F32, 0, 16, threads);
    measure(tiny, "tiny f16 4 images" + t, DType::F16, 4, 0, threads);
  }
}

TEST(PlannerClip, BadRequestsAndBudget) {
  clip::Config c;
  c.vision = {.hidden = 1024, .intermediate = 4096, .layers = 24, .heads = 16};
  c.text = {.hidden = 768, .intermediate = 3072, .layers = 12, .heads = 12};
  c.projection_dim = 768;
  c.image_size = 224;
  c.patch_size = 14;
  EXPECT_THROW(plan_clip(c, "l14", 0, DType::F16, {.images = 0, .texts = 0}), Error);
  EXPECT_THROW(plan_clip(c, "l14", 0, DType::F16, {.images = 1, .height = 10, .width = 10}), Error);
  // ViT-L/14 at F16 (about 0.86 GB) with 16 images per pass: weights + activations, and a small
  // budget refuses it with the numbers.
  const ClipPlan p = plan_clip(c, "l14", 855 << 20, DType::F16, {.images = 16, .n_threads = 2});
  EXPECT_GT(p.vision_bytes, 16 * 257 * (5 * 1024 + 4096) * 4);
  EXPECT_EQ(p.host_peak(), p.weight_bytes + p.vision_bytes + p.scratch_bytes);
  EXPECT_THROW(p.check_host_budget(512 << 20), Error);
  EXPECT_NO_THROW(p.check_host_budget(int64_t{8} << 30));
}

}  // namespace
}  // namespace eight
