// MAGNeT LM against audiocraft (tests/data/magnet, made by tools/reference/make_magnet.py from
// audiocraft 1.3's MagnetLMModel / StreamingTransformer with tiny random weights): the T5
// conditioner tail, LM logits for masked codes with and without the restricted attention, the
// decoding schedule's numbers, and a full seeded generation.
#include <gtest/gtest.h>

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "formats/torch_checkpoint.h"
#include "models/magnet/generate.h"
#include "models/magnet/magnet.h"
#include "models/magnet/text_to_codes.h"
#include "models/t5/t5.h"
#include "runtime/plan/magnet.h"
#include "test_util.h"

namespace eight::magnet {
namespace {

std::string data(const std::string& name) {
  return testing::source_dir() + "/tests/data/magnet/" + name;
}

double nmse(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.numel(), want.numel());
  double num = 0, den = 0;
  const float* g = got.data<const float>();
  const float* w = want.data<const float>();
  for (int64_t i = 0; i < want.numel(); ++i) {
    num += (double(g[i]) - w[i]) * (double(g[i]) - w[i]);
    den += double(w[i]) * w[i];
  }
  return num / std::max(den, 1e-30);
}

struct MagnetLM : ::testing::Test {
  ThreadPool pool{2};
  std::shared_ptr<const LM> lm = LM::load(data(""));  // the directory finds state_dict.bin

  Tensor condition() {
    const auto t5 = t5::Encoder::load(data("t5"));
    const Tensor ids = npy::read(data("ids.npy"));
    std::vector<int32_t> v(ids.data<const int32_t>(), ids.data<const int32_t>() + ids.numel());
    return lm->condition(t5->forward(v, ids.numel(), pool), ids.numel(), pool);
  }
};

TEST_F(MagnetLM, ConfigFromXpCfgYaml) {
  const Config& c = lm->config();
  EXPECT_EQ(c.dim, 32);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.ffn, 128);
  EXPECT_EQ(c.n_q, 4);
  EXPECT_EQ(c.card, 64);
  EXPECT_EQ(c.subcodes_context, 5);
  EXPECT_EQ(c.span_len, 3);
  EXPECT_EQ(c.text_dim, 32);
  EXPECT_EQ(c.text_encoder, "t5-base");
  EXPECT_EQ(c.sample_rate, 32000);
  EXPECT_DOUBLE_EQ(c.segment_duration, 10);
}

TEST_F(MagnetLM, ConditionerMatchesAudiocraft) {
  EXPECT_LE(nmse(condition(), npy::read(data("cond.npy"))), 1e-5);
}

TEST_F(MagnetLM, LogitsMatchAudiocraftPerStage) {
  const Tensor cond = npy::read(data("cond.npy"));
  const Tensor one = npy::read(data("codes.npy"));  // [4, T] with masked codes
  const int64_t T = one.size(1);
  Tensor codes = Tensor::empty({2, 4, T}, DType::I32);
  for (int b = 0; b < 2; ++b)
    std::copy(one.data<const int32_t>(), one.data<const int32_t>() + one.numel(),
              codes.data<int32_t>() + b * one.numel());
  for (int stage : {0, 2}) {
    const Tensor want = npy::read(data(cat("logits_s", stage, ".npy")));
    const Tensor got = lm->forward(codes, {cond, Tensor()}, stage, -1, pool);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LE(nmse(got, want), 1e-5) << "stage " << stage;
    // One codebook alone (what decoding asks for) is the same slice.
    const Tensor k2 = lm->forward(codes, {cond, Tensor()}, stage, 2, pool);
    EXPECT_LE(nmse(k2.select(1, 0).contiguous(), want.select(1, 2).contiguous()), 1e-5);
  }
  // The restriction matters: stage 2 without it gives stage 0's logits, not stage 2's.
  EXPECT_GT(nmse(npy::read(data("logits_s0.npy")), npy::read(data("logits_s2.npy"))), 1e-4);
}

TEST_F(MagnetLM, CodesOutsideTheVocabularyAreAnError) {
  Tensor codes = Tensor::zeros({1, 4, 6}, DType::I32);
  codes.data<int32_t>()[5] = 65;  // card 64: 64 is the mask, 65 is nothing
  EXPECT_THROW(lm->forward(codes, {Tensor()}, 0, -1, pool), Error);
  EXPECT_THROW(lm->forward(Tensor::zeros({1, 3, 6}, DType::I32), {Tensor()}, 0, -1, pool), Error);
}

TEST(MagnetSchedule, MatchesLmMagnetFormulas) {
  std::ifstream in(data("schedule.json"));
  const auto j = nlohmann::json::parse(in);
  for (const auto& s : j) {
    const int steps = s["steps"];
    const int64_t n_spans = s["n_spans"];
    for (int i = 0; i < steps; ++i) {
      const auto& r = s["rows"][static_cast<size_t>(i)];
      // cos in float32 differs by an ulp between libm and torch's vectorized kernels, and that
      // ulp can move int(mask_p · n) across an integer: the count is checked from torch's mask_p.
      const float p = mask_probability(i, steps);
      const auto ref_p = static_cast<float>(r["mask_p"].get<double>());
      EXPECT_NEAR(p, ref_p, 3e-7) << steps << " step " << i;
      EXPECT_EQ(masked_spans(ref_p, n_spans), r["num_masked"].get<int64_t>()) << steps << " " << i;
      EXPECT_LE(std::abs(masked_spans(p, n_spans) - r["num_masked"].get<int64_t>()), 1);
      EXPECT_NEAR(cfg_coefficient(p, 10, 1), r["cfg"].get<double>(), 1e-5);
      EXPECT_NEAR(temperature(3, i, steps, true), r["temp"].get<double>(), 1e-6);
    }
  }
}

TEST(MagnetSchedule, TopSpansAndTopP) {
  EXPECT_EQ(top_spans({0.1f, 0.9f, -1e4f, 0.5f, 0.9f}, 3), (std::vector<int64_t>{1, 4, 3}));
  std::vector<std::pair<float, int32_t>> scratch;
  const float probs[] = {0.05f, 0.5f, 0.15f, 0.3f};
  // Sorted 0.5, 0.3, 0.15, 0.05; mass before each: 0, 0.5, 0.8, 0.95 -> the last is dropped
  // (0.95 > 0.9); the nucleus 0.5, 0.3, 0.15 is renormalized by 0.95.
  EXPECT_EQ(sample_top_p(probs, 4, 0.9f, 0.0, scratch), 1);
  EXPECT_EQ(sample_top_p(probs, 4, 0.9f, 0.52, scratch), 1);   // 0.494 < 0.5
  EXPECT_EQ(sample_top_p(probs, 4, 0.9f, 0.54, scratch), 3);   // 0.513 in [0.5, 0.8)
  EXPECT_EQ(sample_top_p(probs, 4, 0.9f, 0.999, scratch), 2);  // never the dropped 0.05
  EXPECT_EQ(sample_top_p(probs, 4, 0.0f, 0.999, scratch), 0);  // p = 0: everything
  EXPECT_EQ(sample_top_p(probs, 4, 0.4f, 0.999, scratch), 1);  // only the first
  double mean = 0;
  for (uint64_t i = 0; i < 10000; ++i) mean += uniform(3, i);
  EXPECT_NEAR(mean / 10000, 0.5, 0.02);
}

// The whole decoding loop (span masking, re-masking by score, CFG and temperature annealing)
// against audiocraft's own _generate_stage, made deterministic with argmax instead of sampling.
TEST_F(MagnetLM, GreedyDecodingMatchesAudiocraft) {
  GenerateOptions opt;
  opt.steps = {3, 2, 2, 2};
  opt.sampling = false;
  const Tensor got = generate(*lm, npy::read(data("cond.npy")), 16, opt, pool);
  const Tensor want = npy::read(data("greedy_codes.npy"));
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_TRUE(std::equal(got.data<const int32_t>(), got.data<const int32_t>() + got.numel(),
                         want.data<const int32_t>()));
}

TEST_F(MagnetLM, GenerationIsSeededAndValid) {
  const Tensor cond = condition();
  GenerateOptions opt;
  opt.steps = {3, 2, 2, 2};
  opt.seed = 7;
  int calls = 0;
  opt.progress = [&](int, int, int done, int total) {
    ++calls;
    EXPECT_EQ(total, 9);
    EXPECT_EQ(done, calls);
  };
  const Tensor a = generate(*lm, cond, 16, opt, pool);
  EXPECT_EQ(calls, 9);
  ASSERT_EQ(a.shape(), (Dims{4, 15}));  // cut to whole spans of 3
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_GE(a.data<const int32_t>()[i], 0);
    EXPECT_LT(a.data<const int32_t>()[i], 64);
  }
  opt.progress = nullptr;
  ThreadPool one(1);
  const Tensor b = generate(*lm, cond, 16, opt, one);  // other thread count, same codes
  EXPECT_TRUE(std::equal(a.data<const int32_t>(), a.data<const int32_t>() + a.numel(),
                         b.data<const int32_t>()));
  opt.seed = 8;
  const Tensor c = generate(*lm, cond, 16, opt, pool);
  EXPECT_FALSE(std::equal(a.data<const int32_t>(), a.data<const int32_t>() + a.numel(),
                          c.data<const int32_t>()));
  const Tensor u = generate(*lm, Tensor(), 16, opt, pool);  // unconditional
  EXPECT_EQ(u.shape(), (Dims{4, 15}));
  EXPECT_THROW(generate(*lm, cond, 2, opt, pool), Error);  // less than one span
  opt.steps = {3, 2};
  EXPECT_THROW(generate(*lm, cond, 16, opt, pool), Error);
}

// A t5-base-shaped directory with a tokenizer: the fixture encoder plus the T5 tests' spm model.
std::string t5_dir_with_tokenizer() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / cat("eight_magnet_t5_", ::getpid());
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(data("t5/") + f, dir / f, fs::copy_options::overwrite_existing);
  gzFile in = gzopen((testing::source_dir() + "/tests/data/t5/spm.model.gz").c_str(), "rb");
  EXPECT_NE(in, nullptr);
  std::ofstream out(dir / "spiece.model", std::ios::binary);
  char buf[65536];
  for (int n; (n = gzread(in, buf, sizeof buf)) > 0;) out.write(buf, n);
  gzclose(in);
  return dir.string();
}

TEST(MagnetTextToCodes, PromptToCodes) {
  ThreadPool pool(2);
  const std::string t5 = t5_dir_with_tokenizer();
  const auto m = TextToCodes::load(data("state_dict.bin"), t5);
  EXPECT_FALSE(m.condition("", pool).defined());  // the empty description is the null one
  const Tensor cond = m.condition("Hello world!", pool);
  EXPECT_EQ(cond.shape(), (Dims{9, 32}));  // 8 pieces and </s> (tests/data/t5/tokens.json)
  EXPECT_EQ(m.frames(1.0), 50);
  GenerateOptions opt;
  opt.steps = {2, 1, 1, 1};
  opt.seed = 1;
  const Tensor codes = m.generate("Hello world!", 0.3, opt, pool);
  EXPECT_EQ(codes.shape(), (Dims{4, 15}));
  EXPECT_THROW(m.frames(-1), Error);
  EXPECT_THROW(TextToCodes::load(data("state_dict.bin"), data("t5")), Error);  // no tokenizer
  std::filesystem::remove_all(t5);
}

// The planner's heap estimate for a decoding run against what the tracked allocators held.
TEST_F(MagnetLM, PlanMatchesMeasuredPeak) {
  const Tensor cond = npy::read(data("cond.npy"));
  GenerateOptions opt;
  opt.steps = {1, 1, 1, 1};
  int64_t numel = 0;  // the parameter count is what the checkpoint holds
  const auto ck = torch::Checkpoint::open(data("state_dict.bin"));
  for (const auto& t : ck.tensors()) numel += t.numel();
  EXPECT_EQ(magnet_parameters(lm->config()), numel);
  for (int64_t frames : {1500, 3000}) {
    const auto before = memory_tracker().stats();
    memory_tracker().reset_peak();
    generate(*lm, cond, frames, opt, pool);
    const int64_t used = memory_tracker().stats().heap_peak - before.heap_current;
    const MagnetPlan p = plan_magnet(lm->config(), DType::F32, frames, cond.size(0), pool.size());
    const int64_t planned = p.activation_bytes + p.scratch_bytes;
    EXPECT_NEAR(static_cast<double>(planned) / static_cast<double>(used), 1.0, 0.05)
        << frames << " frames: planned " << planned << ", used " << used;
  }
}

TEST(MagnetPlan, SmallAndMediumShapes) {
  // magnet-small / -medium as published (xp.cfg: dim 1024/1536, 16/24 heads, 24/48 layers,
  // card 2048, 4 codebooks, t5-base 768), 10 s.
  magnet::Config small;
  small.dim = 1024, small.num_heads = 16, small.num_layers = 24, small.ffn = 4096;
  small.text_dim = 768;
  magnet::Config medium = small;
  medium.dim = 1536, medium.num_heads = 24, medium.num_layers = 48, medium.ffn = 6144;
  const MagnetPlan s = plan_magnet(small, DType::F32, 500, 32, 8);
  const MagnetPlan m = plan_magnet(medium, DType::F16, 500, 32, 8);
  EXPECT_EQ(s.frames, 498);
  // The names say 300M / 1.5B; with cross-attention in every layer the tensors hold more
  // (MusicGen-medium, the same shapes, ships 3.68 GB of f16: 1.84B).
  EXPECT_NEAR(static_cast<double>(m.parameters), 1.84e9, 0.01e9);
  // medium in f16 with t5-base in f32 (~0.45 GB) fits 8 GiB with room to spare.
  EXPECT_LT(m.total() + int64_t{450} * 1000 * 1000, int64_t{8} << 30);
  std::printf("magnet-small f32: %.2f GB weights + %.1f MB heap; medium f16: %.2f GB + %.1f MB\n",
              s.weight_bytes / 1e9, (s.activation_bytes + s.scratch_bytes) / 1e6,
              m.weight_bytes / 1e9, (m.activation_bytes + m.scratch_bytes) / 1e6);
}

TEST(MagnetConfig, UnsupportedSettingsAreNamed) {
  const auto cfg = nlohmann::json::parse(
      R"({"lm_model": "transformer_lm_magnet", "transformer_lm": {"dim": 64, "norm_first": false}})");
  try {
    parse_config(cfg, "x");
    FAIL() << "post-norm accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("norm_first"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_config(nlohmann::json::parse(R"({"lm_model": "transformer_lm"})"), "x"),
               Error);
  EXPECT_THROW(parse_config(nlohmann::json::parse(R"({"transformer_lm": {"dim": "big"}})"), "x"),
               Error);
  EXPECT_THROW(parse_config(nlohmann::json::parse(R"({"transformer_lm": {"dim": -4}})"), "x"),
               Error);
  nlohmann::json bad_bytes;  // a value that is not UTF-8 still gives eight's Error
  bad_bytes["transformer_lm"]["dim"] = std::string("\xff\xfe");
  EXPECT_THROW(parse_config(bad_bytes, "x"), Error);
}

}  // namespace
}  // namespace eight::magnet
