// LLaVA-NeXT's image encoder against transformers: the tiny random-weight model and the packed
// image features (vision tower hidden state -2 without CLS, GELU projector, pack_image_features)
// that tools/reference/make_llava_fixtures.py wrote to tests/data/llava/, for images of several
// aspect ratios. Pass: the same image-token count and NMSE <= 1e-4 (F32 weights; in practice
// ~1e-12), plus unpad_box on hand-checked cases.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/thread_pool.h"
#include "formats/image.h"
#include "formats/npy.h"
#include "models/llava/llava.h"

namespace eight {
namespace {

const std::string kData = std::string(EIGHT_SOURCE_DIR) + "/tests/data/llava/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

// The HF directory and llama.cpp's mmproj layouts (current: every layer plus feature_layer;
// legacy: the last layer dropped) hold the same weights; the mmproj's patch conv is F16.
class LlavaVision : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Layouts, LlavaVision,
                         ::testing::Values("tiny", "tiny-mmproj-f32.gguf",
                                           "tiny-mmproj-legacy.gguf"));

TEST_P(LlavaVision, MatchesTransformersPackedFeatures) {
  const auto enc = llava::VisionEncoder::load(kData + GetParam());
  // Legacy files stored only the layers up to the one read: the last stored layer (-1).
  EXPECT_EQ(enc->config().feature_layer,
            std::string(GetParam()).ends_with("legacy.gguf") ? -1 : -2);
  EXPECT_EQ(enc->config().text_hidden, 64);
  // The 84x84 pinpoint: 2x2 tiles + the whole image, 9 + 6 * (6 + 1) embeddings.
  EXPECT_EQ(enc->max_tiles(), 5);
  EXPECT_EQ(enc->max_tokens(), 51);
  ThreadPool pool(2);
  const auto meta = read_json(kData + "preprocess.json");
  ASSERT_GE(meta["images"].size(), 4u);
  for (const auto& c : meta["images"]) {
    const std::string file = c["file"];
    const image::Image im = image::load(kData + file);
    const Tensor want = npy::read(kData + c["features"].get<std::string>());
    const int64_t n_tokens = c["n_image_tokens"];
    EXPECT_EQ(enc->count_tokens(im.height, im.width), n_tokens) << file;
    const Tensor got = enc->encode(im, pool);
    ASSERT_EQ(got.shape(), want.shape()) << file;
    double err = 0, ref = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double d = double(got.data<float>()[i]) - want.data<float>()[i];
      err += d * d;
      ref += double(want.data<float>()[i]) * want.data<float>()[i];
    }
    const double nmse = err / ref;
    std::printf("%s: %lld image tokens, NMSE %.3g\n", file.c_str(),
                static_cast<long long>(n_tokens), nmse);
    EXPECT_LE(nmse, 1e-4) << file;
  }
}

TEST(LlavaUnpad, UnpadBox) {
  // llava-v1.6 at 336 px: a 1000x500 (w x h) image on the 672x672 pinpoint is a 48x48 grid;
  // the image covers 48 x 24 of it, centred: rows 12..36.
  auto b = llava::unpad_box(48, 48, 500, 1000);
  EXPECT_EQ(b.row0, 12);
  EXPECT_EQ(b.row1, 36);
  EXPECT_EQ(b.col0, 0);
  EXPECT_EQ(b.col1, 48);
  // A portrait image on a 24x48 (rows x cols) grid: columns trimmed.
  b = llava::unpad_box(24, 48, 300, 200);
  EXPECT_EQ(b.row0, 0);
  EXPECT_EQ(b.row1, 24);
  EXPECT_EQ(b.col0, 16);
  EXPECT_EQ(b.col1, 32);
}

TEST(LlavaLoad, RefusesDirectoryWithoutConfig) {
  EXPECT_THROW(llava::VisionEncoder::load(kData + "no-such-dir"), Error);
}

}  // namespace
}  // namespace eight
