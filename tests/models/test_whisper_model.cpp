// Whisper model: the golden check against whisper.cpp's logits (../shared/golden/whisper), and on
// a random-weight model written here: incremental decoding through the cache equals one pass,
// batched beams equal single sequences, copy/truncate of caches, no tracked allocation per decode
// step, and clear errors for misuse and malformed files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/vulkan_test_util.h"
#include "core/half.h"
#include "core/memory.h"
#include "formats/audio.h"
#include "formats/mel.h"
#include "models/registry.h"
#include "models/whisper/whisper.h"
#include "test_util.h"
#include "whisper_random_model.h"

namespace eight {
namespace {

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return num / den;
}

// The golden check with the encoder blocks on `device`.
void check_golden(Device device, const char* label) {
  const std::string dir = testing::shared_dir() + "/golden/whisper";
  std::ifstream js(dir + "/whisper-tiny-f16.json");
  ASSERT_TRUE(js.good()) << "missing " << dir << "/whisper-tiny-f16.json";
  const auto meta = nlohmann::json::parse(js);
  const auto tokens = meta["forced_tokens"].get<std::vector<int32_t>>();
  const int64_t T = static_cast<int64_t>(tokens.size()), V = meta["n_vocab"].get<int64_t>();

  const auto model = whisper::Model::load(dir + "/" + meta["model"].get<std::string>(), device);
  ASSERT_EQ(model->hparams().n_vocab, V);
  const Tensor samples = audio::load_16k_mono(dir + "/" + meta["audio"].get<std::string>());
  const Tensor mel = mel::log_mel_spectrogram(samples.data<float>(), samples.numel(),
                                              model->file().mel_filters, 3000);
  ThreadPool pool(2);
  whisper::WhisperState state(model, 1, static_cast<int>(T), pool);
  state.encode(mel);
  std::vector<float> ours(static_cast<size_t>(T * V));
  state.decode(0, tokens, ours.data());

  std::ifstream lf(dir + "/" + meta["logits"].get<std::string>(), std::ios::binary);
  std::vector<uint16_t> half(ours.size());
  lf.read(reinterpret_cast<char*>(half.data()), static_cast<std::streamsize>(half.size() * 2));
  ASSERT_EQ(static_cast<size_t>(lf.gcount()), half.size() * 2);
  std::vector<float> ref(half.size());
  for (size_t i = 0; i < half.size(); ++i) ref[i] = fp16_to_fp32(half[i]);

  const double err = nmse(ours, ref);
  int agree = 0, clear = 0, clear_agree = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* o = ours.data() + t * V;
    const float* r = ref.data() + t * V;
    const int64_t ao = std::max_element(o, o + V) - o, ar = std::max_element(r, r + V) - r;
    agree += ao == ar;
    std::vector<float> sorted(r, r + V);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] >= 0.05f) {
      ++clear;
      clear_agree += ao == ar;
    }
  }
  std::printf(
      "[golden] whisper-tiny-f16 (%s): NMSE %.3e (whisper.cpp vs float64: %.3e), argmax %d/%lld"
      " (%d/%d where the reference's margin >= 0.05)\n",
      label, err, meta["nmse_reference_vs_float64"].get<double>(), agree, static_cast<long long>(T),
      clear_agree, clear);
  EXPECT_LE(err, 1e-4);
  EXPECT_EQ(clear_agree, clear);
}

TEST(WhisperGolden, LogitsMatchWhisperCpp) {
  EIGHT_REQUIRE_SHARED();
  check_golden(Device::cpu(), "cpu");
}

// The same with the encoder's blocks on a Vulkan device (lavapipe in CI), with the CPU's bounds.
TEST(WhisperGolden, EncoderOnTheGpuMatchesWhisperCpp) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  check_golden(Device::vulkan(vulkan_test::device()), "vulkan");
}

class WhisperRandom : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.n_audio_ctx = 40;  // 80 mel frames: a short window keeps the test fast
    cfg_.n_text_ctx = 32;
    testing::write_random_whisper(cfg_, dir_.file("w.bin"));
    model_ = whisper::Model::load(dir_.file("w.bin"));
    const auto v = testing::random_floats(static_cast<size_t>(80 * 80), -1.5f, 1.5f);
    mel_ = Tensor::empty({80, 80}, DType::F32);
    std::copy(v.begin(), v.end(), mel_.data<float>());
  }
  testing::TempDir dir_;
  testing::RandomWhisper cfg_;
  std::shared_ptr<const whisper::Model> model_;
  Tensor mel_;
  ThreadPool pool_{2};
};

TEST_F(WhisperRandom, RegistersAndBindsEveryTensor) {
  const auto* arch = find_architecture("whisper");
  ASSERT_NE(arch, nullptr);
  EXPECT_EQ(arch->family, "speech");
  EXPECT_GE(model_->weight_bytes(), 2 * 51865 * 64);
  EXPECT_EQ(model_->language_token("en"), model_->special().language(0));
  EXPECT_EQ(model_->language_token("yue"), -1);  // 99 languages before v3
  EXPECT_EQ(model_->language_token("xx"), -1);
  EXPECT_EQ(whisper::Model::language_codes().size(), 100u);
  const auto heads = whisper::alignment_heads(model_->hparams());
  EXPECT_EQ(heads.size(), 2u);  // last half of 2 layers x 2 heads
}

TEST_F(WhisperRandom, IncrementalEqualsOnePassAndBatchEqualsSingle) {
  const std::vector<int32_t> toks = {50258, 50259, 50359, 50363, 400, 370, 452, 7177};
  const int64_t T = static_cast<int64_t>(toks.size()), V = cfg_.n_vocab;
  whisper::WhisperState st(model_, 3, 16, pool_);
  st.encode(mel_);
  EXPECT_EQ(st.encoder_output().shape(), (Dims{40, 64}));
  std::vector<float> all(static_cast<size_t>(T * V)), step(all.size());
  st.decode(0, toks, all.data());
  // Sequence 1: the first 3 tokens at once, then one at a time.
  st.decode(1, std::span(toks).first(3), step.data());
  for (int64_t t = 3; t < T; ++t) st.decode(1, std::span(toks).subspan(t, 1), step.data() + t * V);
  EXPECT_EQ(st.seq_length(0), T);
  EXPECT_EQ(st.seq_length(1), T);
  double worst = 0;
  for (size_t i = 0; i < all.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(all[i] - step[i])));
  // The one-pass and one-row products take different kernels (summation orders): float noise only.
  EXPECT_LT(worst, 1e-2);
  EXPECT_LT(nmse(step, all), 1e-7);

  // Beam step: sequences 0 and 1 hold the same prefix; 2 gets a copy of 0, then truncated.
  st.copy_sequence(0, 2);
  EXPECT_EQ(st.seq_length(2), T);
  st.truncate(2, T - 1);
  std::vector<float> single(static_cast<size_t>(3 * V)), batch(single.size());
  st.decode(2, std::span(toks).subspan(T - 1, 1), single.data() + 2 * V);
  for (size_t i = 0; i < static_cast<size_t>(V); ++i)  // re-decoding the dropped token
    ASSERT_NEAR(single[2 * V + i], all[(T - 1) * V + i], 1e-2);
  const int32_t next[3] = {11, 1029, 406};
  whisper::WhisperState ref(model_, 3, 16, pool_);
  ref.encode(mel_);
  for (int s = 0; s < 3; ++s) {
    ref.decode(s, toks, all.data());
    ref.decode(s, std::span(next + s, 1), single.data() + s * V);
  }
  const int seqs[3] = {0, 1, 2};
  st.decode_batch(seqs, next, batch.data());
  EXPECT_LT(nmse(batch, single), 1e-7);
  EXPECT_EQ(st.seq_length(2), T + 1);
}

TEST(WhisperThreads, ResultsDoNotDependOnThreadCount) {
  // 300 positions: the encoder's row chunks (two per thread) and attention blocks differ per count.
  testing::TempDir dir;
  testing::RandomWhisper cfg;
  cfg.n_audio_ctx = 300;
  cfg.n_text_ctx = 16;
  testing::write_random_whisper(cfg, dir.file("w.bin"));
  const auto model = whisper::Model::load(dir.file("w.bin"));
  const auto v = testing::random_floats(static_cast<size_t>(80 * 600), -1.5f, 1.5f);
  Tensor mel = Tensor::empty({80, 600}, DType::F32);
  std::copy(v.begin(), v.end(), mel.data<float>());
  std::vector<std::vector<float>> outs;
  const int32_t toks[5] = {50258, 50259, 50359, 50363, 400};
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    whisper::WhisperState st(model, 1, 8, pool);
    st.encode(mel);
    const Tensor& enc = st.encoder_output();
    std::vector<float> out(enc.data<float>(), enc.data<float>() + enc.numel());
    out.resize(out.size() + 5 * static_cast<size_t>(cfg.n_vocab));
    st.decode(0, toks, out.data() + enc.numel());
    outs.push_back(std::move(out));
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

TEST_F(WhisperRandom, CapturesCrossAttentionProbabilities) {
  whisper::WhisperState st(model_, 1, 8, pool_);
  st.encode(mel_);
  whisper::CrossAttentionCapture cap{.heads = {{0, 1}, {1, 0}}, .weights = {}};
  const int32_t toks[3] = {50258, 50259, 50359};
  std::vector<float> logits(static_cast<size_t>(3 * cfg_.n_vocab));
  st.decode(0, toks, logits.data(), &cap);
  ASSERT_EQ(cap.weights.size(), 2u);
  for (const Tensor& w : cap.weights) {
    ASSERT_EQ(w.shape(), (Dims{3, 40}));
    for (int r = 0; r < 3; ++r) {
      double sum = 0;
      for (int j = 0; j < 40; ++j) sum += w.data<float>()[r * 40 + j];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST_F(WhisperRandom, DecodeStepsMakeNoTrackedAllocation) {
  // The kernels' per-thread scratch grows on a thread's first task of each kind. Which worker runs
  // which task depends on scheduling, so first run the same steps once on every pool thread (with
  // a one-thread pool there) to size every thread's scratch; then nothing may allocate.
  pool_.each_thread([&](int) {
    ThreadPool solo(1);
    whisper::WhisperState warm(model_, 2, 16, solo);
    warm.encode(mel_);
    std::vector<float> l(static_cast<size_t>(4 * cfg_.n_vocab));
    const int32_t p4[4] = {50258, 50259, 50359, 50363};
    warm.decode(0, p4, l.data());
    warm.copy_sequence(0, 1);
    const int s2[2] = {0, 1};
    const int32_t t2[2] = {400, 401};
    warm.decode_batch(s2, t2, l.data());
    warm.decode(1, std::span(t2 + 1, 1), l.data());
  });
  whisper::WhisperState st(model_, 2, 16, pool_);
  st.encode(mel_);
  std::vector<float> logits(static_cast<size_t>(4 * cfg_.n_vocab));
  const int32_t prompt[4] = {50258, 50259, 50359, 50363};
  st.decode(0, prompt, logits.data());
  st.copy_sequence(0, 1);
  const int seqs[2] = {0, 1};
  const int32_t tok[2] = {400, 401};
  st.decode_batch(seqs, tok, logits.data());  // warm-up: per-thread attention buffers
  st.decode(0, std::span(tok, 1), logits.data());
  const MemoryStats before = memory_tracker().stats();
  memory_tracker().reset_peak();
  for (int i = 0; i < 4; ++i) {
    st.decode_batch(seqs, tok, logits.data());
    st.decode(1, std::span(tok + 1, 1), logits.data());
  }
  const MemoryStats after = memory_tracker().stats();
  EXPECT_EQ(after.heap_current, before.heap_current);
  EXPECT_EQ(after.heap_peak, before.heap_current);
}

TEST_F(WhisperRandom, DecodeRowsKeepsTheListedRowsOfDecode) {
  const int32_t toks[6] = {50258, 50259, 50359, 400, 11, 1029};
  const int64_t V = cfg_.n_vocab;
  whisper::WhisperState st(model_, 2, 8, pool_);
  st.encode(mel_);
  std::vector<float> all(static_cast<size_t>(6 * V)), some(static_cast<size_t>(3 * V));
  st.decode(0, toks, all.data());
  const int rows[3] = {5, 0, 5};  // any order, repeats allowed
  st.decode_rows(1, toks, rows, some.data());
  EXPECT_EQ(st.seq_length(1), 6);
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> want(all.begin() + rows[i] * V, all.begin() + (rows[i] + 1) * V);
    const std::vector<float> got(some.begin() + i * V, some.begin() + (i + 1) * V);
    EXPECT_LT(nmse(got, want), 1e-10) << "row " << rows[i];  // other kernels, same math
  }
  // The caches match, so the next step agrees too; no rows at all is allowed.
  std::vector<float> a(static_cast<size_t>(V)), b(static_cast<size_t>(V));
  st.decode(0, std::span(toks + 3, 1), a.data());
  st.decode(1, std::span(toks + 3, 1), b.data());
  EXPECT_EQ(a, b);
  st.decode_rows(0, std::span(toks, 1), {}, nullptr);
  EXPECT_EQ(st.seq_length(0), 8);
  const int bad[1] = {1};
  EXPECT_THROW(st.decode_rows(1, std::span(toks, 1), bad, some.data()), Error);
  EXPECT_EQ(st.seq_length(1), 7);
  const int twice[2] = {0, 0};  // more rows than tokens (a one-token prompt's last and sot rows)
  st.decode_rows(1, std::span(toks + 4, 1), twice, some.data());
  EXPECT_TRUE(std::equal(some.begin(), some.begin() + V, some.begin() + V));
}

TEST_F(WhisperRandom, MisuseGivesErrors) {
  whisper::WhisperState st(model_, 2, 4, pool_);
  std::vector<float> logits(static_cast<size_t>(8 * cfg_.n_vocab));
  const int32_t toks[5] = {1, 2, 3, 4, 5};
  EXPECT_THROW(st.decode(0, std::span(toks, 1), logits.data()), Error);  // before encode
  EXPECT_THROW(st.encode(Tensor::zeros({80, 81}, DType::F32)), Error);
  EXPECT_THROW(st.encode(Tensor::zeros({81, 80}, DType::F32)), Error);
  st.encode(mel_);
  EXPECT_THROW(st.decode(0, toks, logits.data()), Error);  // 5 tokens > max_tokens 4
  EXPECT_EQ(st.seq_length(0), 0);
  EXPECT_THROW(st.decode(2, std::span(toks, 1), logits.data()), Error);
  const int32_t bad[1] = {cfg_.n_vocab};
  EXPECT_THROW(st.decode(0, bad, logits.data()), Error);
  const int dup[2] = {1, 1};
  EXPECT_THROW(st.decode_batch(dup, std::span(toks, 2), logits.data()), Error);
  EXPECT_THROW(st.truncate(0, 1), Error);
  EXPECT_THROW(whisper::WhisperState(model_, 1, cfg_.n_text_ctx + 1, pool_), Error);
  EXPECT_THROW(whisper::WhisperState(model_, 0, 4, pool_), Error);
}

TEST(WhisperLoad, MissingOrMisshapenTensorsAreNamed) {
  testing::TempDir dir;
  testing::RandomWhisper c;
  c.n_audio_ctx = 8;
  c.n_text_ctx = 8;
  c.n_text_layer = 1;
  testing::write_random_whisper(c, dir.file("w.bin"));
  auto file = whisper::load(dir.file("w.bin"));
  file.tensors.erase("decoder.blocks.0.cross_attn.key.weight");
  try {
    whisper::Model::from_file(std::move(file));
    FAIL() << "a missing tensor must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decoder.blocks.0.cross_attn.key.weight"),
              std::string::npos)
        << e.what();
  }
  auto file2 = whisper::load(dir.file("w.bin"));
  file2.tensors["encoder.blocks.1.mlp.0.weight"] = file2.tensors["encoder.blocks.1.mlp.2.weight"];
  try {
    whisper::Model::from_file(std::move(file2));
    FAIL() << "a misshapen tensor must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.blocks.1.mlp.0.weight"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace eight
