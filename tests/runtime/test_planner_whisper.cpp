// The Whisper memory estimate (runtime/plan/whisper.h) against what the model and a
// WhisperState really hold: weight_bytes() + state_bytes(), and the tracked memory (the whole file
// mapping, tensors copied for misalignment, the loader's copies, the state) after loading and
// allocating, within 10%, over shapes, weight types, beam counts and thread counts.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/memory.h"
#include "models/whisper/whisper.h"
#include "models/whisper_random_model.h"
#include "runtime/plan/whisper.h"
#include "test_util.h"

namespace eight {
namespace {

struct Case {
  int32_t n_vocab, n_audio_ctx, n_state, n_head, n_layer, n_mels;
  bool f16;
  int beams, max_tokens, threads;
};

TEST(PlannerWhisper, EstimateMatchesModelAndState) {
  testing::TempDir dir;
  const Case cases[] = {{51865, 1500, 64, 2, 2, 80, true, 5, 224, 2},
                        {51866, 1500, 128, 4, 1, 128, false, 1, 448, 1},
                        {51864, 300, 96, 3, 3, 80, true, 8, 100, 3}};
  for (const Case& c : cases) {
    SCOPED_TRACE(cat("state ", c.n_state, " beams ", c.beams, " f16 ", c.f16));
    testing::RandomWhisper r;
    r.n_vocab = c.n_vocab;
    r.n_audio_ctx = c.n_audio_ctx;
    r.n_state = c.n_state;
    r.n_head = c.n_head;
    r.n_audio_layer = c.n_layer;
    r.n_text_layer = c.n_layer;
    r.n_mels = c.n_mels;
    r.f16 = c.f16;
    const std::string path = dir.file(cat("w", c.n_state, ".bin"));
    testing::write_random_whisper(r, path);

    const WhisperMemory plan = plan_whisper_file(path, c.beams, c.max_tokens, c.threads);
    const int64_t before = memory_tracker().stats().current;
    {
      const auto model = whisper::Model::load(path);
      ThreadPool pool(c.threads);
      whisper::WhisperState state(model, c.beams, c.max_tokens, pool);
      const double real = static_cast<double>(model->weight_bytes() + state.state_bytes());
      const double tracked = static_cast<double>(memory_tracker().stats().current - before);
      std::printf(
          "[planner] whisper D=%d: plan %.2f MiB, weights + state %.2f MiB, tracked "
          "%.2f MiB\n",
          c.n_state, plan.total() / 1048576.0, real / 1048576.0, tracked / 1048576.0);
      EXPECT_NEAR((plan.weights + plan.state()) / real, 1.0, 0.10);
      EXPECT_NEAR(plan.total() / tracked, 1.0, 0.10);
      EXPECT_NEAR(static_cast<double>(plan.weights) / model->weight_bytes(), 1.0, 0.02);
    }
  }
  EXPECT_THROW(plan_whisper_file(dir.file("missing.bin"), 1, 1, 1), Error);
  testing::RandomWhisper r;
  r.n_audio_ctx = 8;
  testing::write_random_whisper(r, dir.file("t.bin"));
  std::filesystem::resize_file(dir.file("t.bin"),
                               std::filesystem::file_size(dir.file("t.bin")) - 9);
  EXPECT_THROW(plan_whisper_file(dir.file("t.bin"), 1, 1, 1), Error);
}

}  // namespace
}  // namespace eight
