// Whisper decode steps allocate nothing: after warm-up, single-sequence steps and batched beam
// steps (with a different logits buffer each call) make no heap allocation at all. operator new
// is counted for the whole process, so this covers the model, nn, ops, kernels and thread pool.
#include <gtest/gtest.h>

#include "models/whisper/whisper.h"
#include "new_counter.h"
#include "test_util.h"
#include "whisper_random_model.h"

namespace eight {
namespace {

TEST(WhisperDecode, AllocatesNothingPerStep) {
  testing::TempDir dir;
  testing::RandomWhisper cfg;
  cfg.n_audio_ctx = 40;
  cfg.n_text_ctx = 32;
  testing::write_random_whisper(cfg, dir.file("w.bin"));
  const auto model = whisper::Model::load(dir.file("w.bin"));
  ThreadPool pool(2);
  whisper::WhisperState st(model, 3, 24, pool);
  st.encode(Tensor::zeros({80, 80}, DType::F32));
  std::vector<float> a(static_cast<size_t>(4 * cfg.n_vocab)), b(a.size());
  const int32_t prompt[4] = {50258, 50259, 50359, 50363};
  st.decode(0, prompt, a.data());
  st.copy_sequence(0, 1);
  st.copy_sequence(0, 2);
  const int seqs[3] = {0, 1, 2};
  const int32_t toks[3] = {400, 401, 402};
  st.decode_batch(seqs, toks, a.data());  // warm-up: per-thread buffers of every path
  st.decode(0, std::span(toks, 1), b.data());
  const int64_t before = testing::heap_news();
  for (int i = 0; i < 6; ++i) {
    st.decode_batch(seqs, toks, (i % 2 ? a : b).data());
    st.decode(1, std::span(toks + 1, 1), (i % 2 ? b : a).data());
  }
  EXPECT_EQ(testing::heap_news() - before, 0) << "heap allocations in 12 decode calls";
}

}  // namespace
}  // namespace eight
