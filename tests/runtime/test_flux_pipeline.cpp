// The parts of the FLUX pipeline around the transformer, against diffusers' FluxPipeline on the
// tiny fixture (tests/data/flux_pipe, references in tests/data/flux_ref from
// tools/reference/make_flux_pipeline.py): both tokenizers' ids exactly, CLIP-L's pooled output and
// T5's last hidden state (256 tokens, no mask) to NMSE 1e-10, and the 2x2 latent packing and
// image position ids as _pack_latents / _prepare_latent_image_ids define them.
#include <gtest/gtest.h>

#include <tuple>

#include "child_process.h"
#include "core/error.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "runtime/diffusion/flux_parts.h"
#include "test_util.h"

namespace eight {
namespace {

using namespace diffusion;

const std::string kPipe = testing::source_dir() + "/tests/data/flux_pipe";
const std::string kRef = testing::source_dir() + "/tests/data/flux_ref/";

double nmse(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  double num = 0, den = 0;
  for (int64_t k = 0; k < want.numel(); ++k) {
    const double g = got.data<float>()[k], w = want.data<float>()[k];
    num += (g - w) * (g - w);
    den += w * w;
  }
  return num / den;
}

std::vector<int32_t> ids_of(const std::string& file) {
  const Tensor t = npy::read(kRef + file);
  return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
}

TEST(FluxPipeline, PromptEmbeddingsMatchDiffusers) {
  FluxFiles files = read_flux_files(kPipe, {});
  EXPECT_TRUE(files.is_directory);
  FluxTextEncoders enc(files, Device::cpu());
  ThreadPool pool(2);
  const FluxPrompt p = enc.encode("a photo of a cat", 256, pool);
  EXPECT_EQ(p.clip_ids, ids_of("clip_ids.npy"));
  EXPECT_EQ(p.t5_ids, ids_of("t5_ids.npy"));
  EXPECT_LE(nmse(p.pooled, npy::read(kRef + "pooled.npy")), 1e-10);
  EXPECT_LE(nmse(p.context, npy::read(kRef + "prompt_embeds.npy")), 1e-10);
  EXPECT_THROW(enc.encode("x", 0, pool), Error);
}

TEST(FluxPipeline, PacksTwoByTwoPatches) {
  const int64_t C = 3, h = 4, w = 6;
  Tensor x = Tensor::empty({C, h, w}, DType::F32);
  for (int64_t k = 0; k < x.numel(); ++k) x.data<float>()[k] = static_cast<float>(k);
  const Tensor p = pack_latents(x);
  ASSERT_EQ(p.shape(), (Dims{(h / 2) * (w / 2), C * 4}));
  // view(C, h/2, 2, w/2, 2).permute(1, 3, 0, 2, 4): patch (y, x), feature c * 4 + dy * 2 + dx.
  for (int64_t y = 0; y < h / 2; ++y)
    for (int64_t xx = 0; xx < w / 2; ++xx)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx)
            ASSERT_EQ(p.data<float>()[(y * (w / 2) + xx) * C * 4 + c * 4 + dy * 2 + dx],
                      static_cast<float>((c * h + 2 * y + dy) * w + 2 * xx + dx));
  const Tensor back = unpack_latents(p, h, w);
  ASSERT_EQ(back.shape(), x.shape());
  for (int64_t k = 0; k < x.numel(); ++k) EXPECT_EQ(back.data<float>()[k], x.data<float>()[k]);
  EXPECT_THROW(pack_latents(Tensor::empty({C, 3, 4}, DType::F32)), Error);
  EXPECT_THROW(unpack_latents(p, h, w + 2), Error);

  const Tensor ids = latent_image_ids(h, w);
  ASSERT_EQ(ids.shape(), (Dims{(h / 2) * (w / 2), 3}));
  EXPECT_EQ(ids.data<float>()[5 * 3 + 0], 0.0f);
  EXPECT_EQ(ids.data<float>()[5 * 3 + 1], 1.0f);  // patch 5 of a 2x3 grid: row 1, column 2
  EXPECT_EQ(ids.data<float>()[5 * 3 + 2], 2.0f);
}

TEST(FluxPipeline, RecognisesItsFiles) {
  EXPECT_TRUE(is_flux_model(kPipe));
  EXPECT_TRUE(is_flux_model(kRef + "separate/flux1-tiny-comfy.safetensors"));
  EXPECT_FALSE(is_flux_model(kPipe + "/text_encoder/model.safetensors"));
  EXPECT_FALSE(is_flux_model(testing::source_dir() + "/tests/data/sdxl/tiny"));
  try {
    read_flux_files(kRef + "separate/flux1-tiny-comfy.safetensors", {});
    ADD_FAILURE() << "a transformer alone was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--t5xxl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eight

namespace eight {
namespace {

// {planned, measured} of one load + generate() in a forked child, measured from before the load.
std::pair<int64_t, int64_t> measure(int64_t width, int64_t height, int64_t max_len) {
  return testing::in_child([&] {
    ThreadPool& pool = global_thread_pool(2);
    MemoryTracker& tr = memory_tracker();
    const int64_t base = tr.stats().current;
    tr.reset_peak();
    int64_t planned = 0;
    {
      diffusion::ImageLoadOptions load;
      load.path = kPipe;
      auto p = diffusion::ImagePipeline::load(load);
      diffusion::ImageRequest rq;
      rq.prompt = "a red cube on a table";
      rq.width = width;
      rq.height = height;
      rq.steps = 2;
      rq.max_sequence_length = max_len;
      planned = p->generate(rq, pool).plan.host_peak();
    }
    return std::pair{planned, tr.stats().peak - base};
  });
}

// The bound: a whole load + generate() in a fresh process peaks (heap + mapped, from the
// tracker) within 5 % of the plan generate() followed.
TEST(FluxPipeline, MeasuredPeakWithinFivePercentOfThePlan) {
  for (const auto& [w, h, L] :
       {std::tuple{96, 64, 256}, std::tuple{256, 192, 64}, std::tuple{512, 512, 256}}) {
    const auto [planned, measured] = measure(w, h, L);
    ASSERT_GT(measured, 0) << "the run failed (see stderr)";
    std::printf("%lldx%lld L %lld: planned %lld measured %lld ratio %.4f\n",
                static_cast<long long>(w), static_cast<long long>(h), static_cast<long long>(L),
                static_cast<long long>(planned), static_cast<long long>(measured),
                static_cast<double>(measured) / static_cast<double>(planned));
    // Within 5 % both ways: the VAE decode's kernel scratch is replayed from its convolutions
    // but measures up to 1.5 % above the plan at 512x512 (not yet found), so the plan is not a
    // strict upper bound there as SDXL's is.
    EXPECT_LE(static_cast<double>(measured), 1.05 * static_cast<double>(planned));
    EXPECT_GE(static_cast<double>(measured), 0.95 * static_cast<double>(planned));
  }
}

}  // namespace
}  // namespace eight
