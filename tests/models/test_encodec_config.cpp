// EnCodec config readers: audiocraft's exported xp.cfg YAML (the fixture's, written as
// OmegaConf.to_yaml lays it out) and hand-written variants (flow style, overrides, comments,
// folded scalars), transformers' config.json, and the errors for malformed or absurd ones.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/storage.h"
#include "models/encodec/encodec.h"
#include "test_util.h"

namespace eight {
namespace {

using encodec::PadMode;

TEST(EncodecConfig, AudiocraftFixtureYaml) {
  const std::string yaml = read_small_file(
      testing::source_dir() + "/tests/fuzz/seeds/fuzz_encodec_config/xp_cfg.yaml", "[test]");
  const encodec::Config c = encodec::parse_audiocraft_config(yaml, "xp.cfg");
  EXPECT_EQ(c.dimension, 8);
  EXPECT_EQ(c.n_filters, 2);
  EXPECT_EQ(c.ratios, (std::vector<int64_t>{8, 5, 4, 4}));
  EXPECT_EQ(c.hop(), 640);
  EXPECT_EQ(c.lstm, 2);
  EXPECT_EQ(c.pad_mode, PadMode::Constant);
  EXPECT_TRUE(c.true_skip);
  EXPECT_FALSE(c.causal);
  EXPECT_FALSE(c.final_tanh);
  EXPECT_EQ(c.n_q, 4);
  EXPECT_EQ(c.bins, 2048);
  EXPECT_EQ(c.sample_rate, 32000);
  EXPECT_DOUBLE_EQ(c.elu_alpha, 1.0);
}

TEST(EncodecConfig, FlowStyleOverridesAndComments) {
  const encodec::Config c = encodec::parse_audiocraft_config(
      "# comment\n"
      "sample_rate: 32000   # trailing comment\n"
      "label: 'a # inside quotes'\n"
      "seanet: {dimension: 128, n_filters: 64, ratios: [8, 5, 4, 4], 'pad_mode': \"reflect\"}\n"
      "long: a plain value\n"
      "  folded onto two lines\n"
      "seanet.decoder:\n"
      "  final_activation: Tanh\n"
      "  n_filters: 32\n"
      "rvq:\n"
      "  n_q: 4\n"
      "  bins: 2048\n",
      "flow");
  EXPECT_EQ(c.dimension, 128);
  EXPECT_EQ(c.n_filters, 32);  // the decoder override wins
  EXPECT_EQ(c.pad_mode, PadMode::Reflect);
  EXPECT_TRUE(c.final_tanh);
  EXPECT_EQ(c.lstm, 0);               // SEANetDecoder's default
  EXPECT_EQ(c.n_residual_layers, 3);  // likewise
}

TEST(EncodecConfig, HfJson) {
  const std::string json =
      read_small_file(testing::source_dir() + "/tests/data/encodec/hf/config.json", "[test]");
  const encodec::Config c = encodec::parse_hf_config(json, "config.json");
  EXPECT_EQ(c.pad_mode, PadMode::Reflect);
  EXPECT_EQ(c.hop(), 640);
  EXPECT_TRUE(c.true_skip);  // use_conv_shortcut false
  EXPECT_EQ(c.bins, 2048);
}

TEST(EncodecConfig, Errors) {
  const auto yaml_error = [](const std::string& text) {
    try {
      encodec::parse_audiocraft_config(text, "bad");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(yaml_error("seanet:\n  ratios: [8, x]\n").find("not an integer"), std::string::npos);
  EXPECT_NE(yaml_error("seanet:\n  ratios: [8, 5\n").find("[yaml] bad:2"), std::string::npos);
  EXPECT_NE(yaml_error("seanet:\n  ratios: [64, 64, 64]\n").find("hop"), std::string::npos);
  EXPECT_NE(yaml_error("seanet:\n  ratios: [8]\n  pad_mode: circular\n").find("pad_mode"),
            std::string::npos);
  EXPECT_NE(yaml_error("- 1\n").find("not a YAML mapping"), std::string::npos);
  EXPECT_NE(yaml_error("rvq: {n_q: 4}\n").find("no seanet"), std::string::npos);
  EXPECT_NE(yaml_error("seanet:\n  ratios: [8]\n  activation: GELU\n").find("ELU"),
            std::string::npos);
  EXPECT_THROW(encodec::parse_hf_config("[1, 2]", "bad"), Error);
  EXPECT_THROW(
      encodec::parse_hf_config("{\"model_type\": \"encodec\", \"normalize\": true}", "bad"), Error);
  EXPECT_THROW(
      encodec::parse_hf_config("{\"model_type\": \"encodec\", \"num_filters\": -1}", "bad"), Error);
  EXPECT_THROW(encodec::parse_hf_config("{\"model_type\": \"encodec\", \"upsampling_ratios\": "
                                        "[8, \"5\"]}",
                                        "bad"),
               Error);
}

}  // namespace
}  // namespace eight
