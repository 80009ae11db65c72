// CLIP pieces below the model level: the tokenizer on its own (truncation, decoding, malformed
// merges, arbitrary bytes) and the bicubic position-embedding resampler. The towers are checked
// against the float64 reference in tests/python/test_clip_model.py.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/clip/clip_internal.h"
#include "test_util.h"
#include "text/clip_tokenizer.h"

namespace eight {
namespace {

text::CLIPTokenizer small_tokenizer() {
  // "c a" "t</w>" style merges over the byte alphabet: cat, dog, a.
  return text::CLIPTokenizer::from_merges(
      text::CLIPTokenizer::parse_merges("#version: 0.2\nc a\nca t</w>\nd o\ndo g</w>\n"));
}

TEST(CLIPTokenizer, EncodesTruncatesAndDecodes) {
  const auto tok = small_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 512u + 4 + 2);
  EXPECT_EQ(tok.bos(), 516);
  EXPECT_EQ(tok.eos(), 517);
  const auto ids = tok.encode("  CAT\t\tdog!  ");
  // bos, "cat</w>", "dog</w>", "!</w>", eos
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[1], 513);
  EXPECT_EQ(ids[2], 515);
  EXPECT_EQ(tok.decode(ids), "<|startoftext|>cat dog ! <|endoftext|>");  // as HF decodes it
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "cat ";
  const auto cut = tok.encode(long_text, 77);
  ASSERT_EQ(cut.size(), 77u);
  EXPECT_EQ(cut.front(), tok.bos());
  EXPECT_EQ(cut.back(), tok.eos());
  EXPECT_EQ(tok.encode(long_text, 0).size(), 202u);
  EXPECT_EQ(tok.encode("").size(), 2u);
  EXPECT_THROW(tok.encode("x", 1), Error);
  EXPECT_THROW(tok.decode({100000}), Error);
}

TEST(CLIPTokenizer, ArbitraryBytesNeverCrash) {
  const auto tok = small_tokenizer();
  std::mt19937_64 rng(testing::rng()());
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    const auto ids = tok.encode(s);
    for (int32_t id : ids) EXPECT_LT(static_cast<size_t>(id), tok.vocab_size());
  }
}

TEST(CLIPTokenizer, MalformedMergesAreErrors) {
  EXPECT_THROW(text::CLIPTokenizer::parse_merges("#version: 0.2\nabc\n"), Error);
  EXPECT_THROW(text::CLIPTokenizer::parse_merges("a b c\n"), Error);
  // A merge whose parts are not tokens of the explicit vocabulary.
  std::vector<std::string> tokens = {"a", "b", "<|startoftext|>", "<|endoftext|>"};
  EXPECT_THROW(text::CLIPTokenizer::from_vocab(tokens, {"a b"}), Error);
  EXPECT_THROW(text::CLIPTokenizer::from_vocab({"a"}, {}), Error);  // no special tokens
  EXPECT_THROW(text::CLIPTokenizer::from_vocab_json("{\"a\": 5}", ""), Error);
  EXPECT_THROW(text::CLIPTokenizer::from_tokenizer_json("{}"), Error);
}

TEST(CLIPPositions, BicubicKeepsTheGridAndConstants) {
  const int64_t g = 5, d = 3;
  Tensor table = Tensor::empty({g * g, d}, DType::F32);
  const auto v = testing::random_floats(static_cast<size_t>(g * g * d));
  std::copy(v.begin(), v.end(), table.data<float>());
  const Tensor same = clip::interpolate_positions(table, g, g, g);
  for (int64_t i = 0; i < g * g * d; ++i) EXPECT_NEAR(same.data<float>()[i], v[i], 1e-6);
  Tensor flat = Tensor::empty({g * g, d}, DType::F32);
  for (int64_t i = 0; i < g * g * d; ++i) flat.data<float>()[i] = 0.25f;
  const Tensor up = clip::interpolate_positions(flat, g, 7, 9);
  ASSERT_EQ(up.shape(), (Dims{63, d}));
  for (int64_t i = 0; i < up.numel(); ++i) EXPECT_NEAR(up.data<float>()[i], 0.25f, 1e-6);
  EXPECT_THROW(clip::interpolate_positions(table, 4, 4, 4), Error);
}

}  // namespace
}  // namespace eight
