// SDXL's two CLIP text encoders (clip::TextEncoder) against diffusers' encode_prompt on the tiny
// random-weight pipeline: hidden_states[-2] of each, side by side, and the pooled projection.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/thread_pool.h"
#include "formats/safetensors.h"
#include "models/clip/text_encoder.h"
#include "sdxl_test_util.h"
#include "text/clip_tokenizer.h"

namespace eight {
namespace {

using sdxl_test::ids_of;
using sdxl_test::weights_of;

class SDXLText : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    tiny_ = sdxl_test::write_tiny(*dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::shared_ptr<const clip::TextEncoder> encoder(const std::string& folder,
                                                          const std::string& act,
                                                          bool with_config) {
    const std::string d = tiny_ + "/" + folder;
    return clip::TextEncoder::build(weights_of(d + "/model.safetensors"),
                                    with_config ? sdxl_test::read_text(d + "/config.json") : "",
                                    act, folder);
  }
  static testing::TempDir* dir_;
  static std::string tiny_;
};
testing::TempDir* SDXLText::dir_ = nullptr;
std::string SDXLText::tiny_;

TEST_F(SDXLText, BothEncodersMatchDiffusers) {
  ThreadPool& pool = global_thread_pool(2);
  for (bool with_config : {true, false}) {
    const auto te1 = encoder("text_encoder", "quick_gelu", with_config);
    const auto te2 = encoder("text_encoder_2", "gelu", with_config);
    for (const std::string which : {"prompt", "negative"}) {
      const Tensor want = sdxl_test::fixture("text_" + which + "_embeds");         // [1, 77, 192]
      const Tensor want_pooled = sdxl_test::fixture("text_" + which + "_pooled");  // [1, 128]
      const auto a =
          te1->encode({ids_of(sdxl_test::fixture("text_" + which + "_tokens"))}, -2, pool);
      const auto b =
          te2->encode({ids_of(sdxl_test::fixture("text_" + which + "_tokens_2"))}, -2, pool);
      ASSERT_EQ(a.hidden.shape(), (Dims{1, 77, 64}));
      ASSERT_EQ(b.hidden.shape(), (Dims{1, 77, 128}));
      const double e1 = sdxl_test::nmse(a.hidden, want.slice(2, 0, 64));
      const double e2 = sdxl_test::nmse(b.hidden, want.slice(2, 64, 192));
      const double ep = sdxl_test::nmse(b.pooled, want_pooled);
      EXPECT_LT(e1, 1e-10) << which << " text_encoder, config " << with_config;
      EXPECT_LT(e2, 1e-10) << which << " text_encoder_2, config " << with_config;
      EXPECT_LT(ep, 1e-10) << which << " pooled, config " << with_config;
      std::printf("%s (config.json %d): NMSE %.3g, %.3g, pooled %.3g\n", which.c_str(), with_config,
                  e1, e2, ep);
    }
  }
}

TEST_F(SDXLText, ShippedVocabularyTokenizesAsDiffusers) {
  // The fixtures' ids come from the folder's tokenizers; eight's built-in vocabulary (used for
  // single files) must give the same words.
  const text::CLIPTokenizer& tok = text::CLIPTokenizer::openai();
  EXPECT_EQ(tok.vocab_size(), 49408u);
  const std::vector<int32_t> want = ids_of(sdxl_test::fixture("text_prompt_tokens"));
  const std::vector<int32_t> got = tok.encode("a photo of a cat", 77);
  ASSERT_LE(got.size(), want.size());
  EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + got.size()));
}

TEST_F(SDXLText, MissingTensorIsNamed) {
  auto w = weights_of(tiny_ + "/text_encoder/model.safetensors");
  w.erase("text_model.encoder.layers.1.mlp.fc2.weight");
  try {
    clip::TextEncoder::build(w, "", "quick_gelu", "text_encoder");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.mlp.fc2.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eight
