// PNG writing: the bytes decode back (through the image reader, stb) to the same pixels, the
// text chunks are present with valid CRCs, and bad arguments are refused.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>

#include "core/error.h"
#include "formats/image.h"
#include "formats/png.h"

namespace eight {
namespace {

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

TEST(Png, RoundTripsThroughTheReader) {
  for (auto [w, h] : {std::pair{1, 1}, {31, 17}, {96, 64}, {257, 3}}) {
    std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
    std::mt19937 gen(static_cast<unsigned>(w * 1000 + h));
    for (size_t i = 0; i < rgb.size(); ++i)
      rgb[i] = static_cast<uint8_t>(i % 7 == 0 ? gen() : (i / 3) % 256);
    const std::string png = image::encode_png(rgb, w, h, {{"parameters", "a cat\nSteps: 4"}});
    const image::Image im =
        image::decode({reinterpret_cast<const uint8_t*>(png.data()), png.size()}, "test.png");
    ASSERT_EQ(im.width, w);
    ASSERT_EQ(im.height, h);
    EXPECT_EQ(std::memcmp(im.rgb.data<int8_t>(), rgb.data(), rgb.size()), 0) << w << "x" << h;
  }
}

TEST(Png, ChunksCarryTextAndValidCrcs) {
  const std::vector<uint8_t> rgb(4 * 2 * 3, 128);
  const std::string png = image::encode_png(rgb, 4, 2, {{"parameters", "a cat, Seed: 7"}});
  ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::vector<std::string> types;
  bool found_text = false;
  for (size_t at = 8; at < png.size();) {
    const uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const auto crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4));
    EXPECT_EQ(crc, be32(png, at + 8 + len)) << type;
    if (type == "tEXt")
      found_text = png.substr(at + 8, len) == std::string("parameters\0a cat, Seed: 7", 25);
    types.push_back(type);
    at += 12 + len;
  }
  EXPECT_TRUE(found_text);
  ASSERT_GE(types.size(), 4u);
  EXPECT_EQ(types.front(), "IHDR");
  EXPECT_EQ(types.back(), "IEND");
}

TEST(Png, RefusesBadArguments) {
  const std::vector<uint8_t> rgb(12, 0);
  EXPECT_THROW(image::encode_png(rgb, 2, 3), Error);  // 18 bytes needed
  EXPECT_THROW(image::encode_png(rgb, 0, 4), Error);
  EXPECT_THROW(image::encode_png(rgb, 2, 2, {{"", "x"}}), Error);
  EXPECT_THROW(image::encode_png(rgb, 2, 2, {{std::string(80, 'k'), "x"}}), Error);
  EXPECT_THROW(image::encode_png(rgb, 2, 2, {{"k", std::string("a\0b", 3)}}), Error);
  EXPECT_THROW(image::write_png("/nonexistent-dir/x.png", rgb, 2, 2), Error);
}

}  // namespace
}  // namespace eight
