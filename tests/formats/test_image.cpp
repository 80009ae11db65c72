// Image decoding: every pixel format to RGB, alpha over white, the eight EXIF orientations (PNG
// eXIf and JPEG APP1), WebP, size limits before allocation, and truncated / corrupted / foreign
// files ending in Error (never a crash). Preprocessing against PIL lives in
// tests/python/test_image_preprocess.py; here only its shape, padding and config rules.
#include <gtest/gtest.h>
#include <webp/encode.h>

#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "core/memory.h"
#include "formats/image.h"
#include "formats/image_exif.h"
#include "test_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace eight::image {
namespace {

using Bytes = std::vector<uint8_t>;

void append(void* ctx, void* data, int size) {
  auto* out = static_cast<Bytes*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

Bytes png(const Bytes& px, int w, int h, int c) {
  Bytes out;
  stbi_write_png_to_func(append, &out, w, h, c, px.data(), w * c);
  return out;
}
Bytes jpeg(const Bytes& px, int w, int h, int c, int quality = 95) {
  Bytes out;
  stbi_write_jpg_to_func(append, &out, w, h, c, px.data(), quality);
  return out;
}
Bytes bmp(const Bytes& px, int w, int h, int c) {
  Bytes out;
  stbi_write_bmp_to_func(append, &out, w, h, c, px.data());
  return out;
}

// A w×h RGB image whose every pixel is distinct, so any misplaced pixel shows.
Bytes pattern(int w, int h) {
  Bytes px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<uint8_t>(x * 17 + 3);
      p[1] = static_cast<uint8_t>(y * 29 + 5);
      p[2] = static_cast<uint8_t>((x * 7 + y * 13) & 255);
    }
  return px;
}

const uint8_t* pixel(const Image& im, int x, int y) {
  return im.rgb.data<const uint8_t>() + (static_cast<int64_t>(y) * im.width + x) * 3;
}

// A TIFF block (big or little endian) holding one IFD0 entry: Orientation = o.
Bytes tiff_with_orientation(int o, bool big_endian) {
  auto u16 = [&](Bytes& b, uint32_t v) {
    if (big_endian) {
      b.push_back(static_cast<uint8_t>(v >> 8));
      b.push_back(static_cast<uint8_t>(v));
    } else {
      b.push_back(static_cast<uint8_t>(v));
      b.push_back(static_cast<uint8_t>(v >> 8));
    }
  };
  auto u32 = [&](Bytes& b, uint32_t v) {
    if (big_endian) {
      u16(b, v >> 16);
      u16(b, v & 0xFFFF);
    } else {
      u16(b, v & 0xFFFF);
      u16(b, v >> 16);
    }
  };
  Bytes t = big_endian ? Bytes{'M', 'M', 0, 42} : Bytes{'I', 'I', 42, 0};
  u32(t, 8);       // IFD0 offset
  u16(t, 2);       // two entries: an unrelated one first
  u16(t, 0x010F);  // Make, ASCII, 4 bytes inline
  u16(t, 2);
  u32(t, 4);
  t.insert(t.end(), {'e', 'i', 'g', 0});
  u16(t, 0x0112);  // Orientation, SHORT, 1
  u16(t, 3);
  u32(t, 1);
  u16(t, static_cast<uint32_t>(o));
  u16(t, 0);
  u32(t, 0);  // no next IFD
  return t;
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// Inserts a chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
Bytes png_with_chunk(Bytes file, const char* type, const Bytes& data) {
  Bytes chunk;
  const auto n = static_cast<uint32_t>(data.size());
  chunk.insert(chunk.end(), {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                             static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  chunk.insert(chunk.end(), type, type + 4);
  chunk.insert(chunk.end(), data.begin(), data.end());
  const uint32_t crc = crc32(chunk.data() + 4, chunk.size() - 4);
  chunk.insert(chunk.end(), {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16),
                             static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc)});
  file.insert(file.begin() + 33, chunk.begin(), chunk.end());
  return file;
}

// Inserts an APP1 Exif segment right after SOI.
Bytes jpeg_with_exif(Bytes file, const Bytes& tiff) {
  Bytes seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  const size_t len = seg.size() - 2;
  seg[2] = static_cast<uint8_t>(len >> 8);
  seg[3] = static_cast<uint8_t>(len);
  file.insert(file.begin() + 2, seg.begin(), seg.end());
  return file;
}

Image decode_bytes(const Bytes& b, int64_t max_pixels = kMaxPixels) {
  return decode(std::span<const uint8_t>(b.data(), b.size()), "test", max_pixels);
}

TEST(ImageDecode, PngRgbExact) {
  const int w = 7, h = 5;
  const Bytes px = pattern(w, h);
  const Image im = decode_bytes(png(px, w, h, 3));
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  EXPECT_EQ(im.rgb.shape(), (Dims{h, w, 3}));
  EXPECT_EQ(std::memcmp(im.rgb.raw(), px.data(), px.size()), 0);
}

TEST(ImageDecode, GreyBecomesRgb) {
  const Bytes grey = {0, 50, 100, 150, 200, 255};
  const Image im = decode_bytes(png(grey, 3, 2, 1));
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(pixel(im, i % 3, i / 3)[c], grey[static_cast<size_t>(i)]);
}

// Pillow's alpha_composite over opaque white, which transformers' convert_to_rgb applies.
int over_white(int c, int a) {
  const uint32_t coef1 = static_cast<uint32_t>(a) * 128, coef2 = 255 * 128 - coef1;
  const uint32_t t = static_cast<uint32_t>(c) * coef1 + 255 * coef2 + (0x80 << 7);
  return static_cast<int>((((t >> 8) + t) >> 8) >> 7);
}

TEST(ImageDecode, AlphaCompositedOnWhite) {
  // RGBA: opaque, fully transparent, half transparent.
  const Bytes rgba = {10, 20, 30, 255, 10, 20, 30, 0, 200, 100, 0, 128};
  const Image im = decode_bytes(png(rgba, 3, 1, 4));
  EXPECT_EQ(pixel(im, 0, 0)[0], 10);
  EXPECT_EQ(pixel(im, 0, 0)[2], 30);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(pixel(im, 1, 0)[c], 255) << "transparent is white";
  for (int c = 0; c < 3; ++c) EXPECT_EQ(pixel(im, 2, 0)[c], over_white(rgba[8 + c], 128));
  EXPECT_NEAR(pixel(im, 2, 0)[0], (200 * 128 + 255 * 127) / 255.0, 1.0);
  // Grey + alpha.
  const Bytes la = {40, 255, 40, 0, 40, 64};
  const Image g = decode_bytes(png(la, 3, 1, 2));
  EXPECT_EQ(pixel(g, 0, 0)[1], 40);
  EXPECT_EQ(pixel(g, 1, 0)[1], 255);
  EXPECT_EQ(pixel(g, 2, 0)[2], over_white(40, 64));
}

TEST(ImageDecode, PngTransparentColourKey) {
  // An RGB PNG whose tRNS names (10, 20, 30) transparent: those pixels become white.
  const Bytes px = {10, 20, 30, 1, 2, 3};
  const Bytes file = png_with_chunk(png(px, 2, 1, 3), "tRNS", {0, 10, 0, 20, 0, 30});
  const Image im = decode_bytes(file);
  EXPECT_EQ(pixel(im, 0, 0)[0], 255);
  EXPECT_EQ(pixel(im, 1, 0)[0], 1);
  EXPECT_EQ(pixel(im, 1, 0)[2], 3);
}

TEST(ImageDecode, BmpAndJpeg) {
  const int w = 9, h = 6;
  const Bytes px = pattern(w, h);
  const Image b = decode_bytes(bmp(px, w, h, 3));
  EXPECT_EQ(std::memcmp(b.rgb.raw(), px.data(), px.size()), 0);
  // JPEG is lossy: a flat colour survives almost exactly.
  Bytes flat(static_cast<size_t>(16 * 16 * 3));
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = i % 3 == 0 ? 200 : (i % 3 == 1 ? 60 : 120);
  const Image j = decode_bytes(jpeg(flat, 16, 16, 3));
  ASSERT_EQ(j.width, 16);
  EXPECT_NEAR(pixel(j, 5, 5)[0], 200, 3);
  EXPECT_NEAR(pixel(j, 5, 5)[1], 60, 3);
  EXPECT_NEAR(pixel(j, 5, 5)[2], 120, 3);
}

TEST(ImageDecode, WebpLosslessAndLossy) {
  const int w = 11, h = 7;
  const Bytes px = pattern(w, h);
  uint8_t* out = nullptr;
  size_t n = WebPEncodeLosslessRGB(px.data(), w, h, w * 3, &out);
  ASSERT_GT(n, 0u);
  const Bytes lossless(out, out + n);
  WebPFree(out);
  const Image im = decode_bytes(lossless);
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  EXPECT_EQ(std::memcmp(im.rgb.raw(), px.data(), px.size()), 0);

  Bytes rgba(static_cast<size_t>(w * h * 4), 0);  // fully transparent → white
  n = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &out);
  const Bytes transparent(out, out + n);
  WebPFree(out);
  EXPECT_EQ(pixel(decode_bytes(transparent), 3, 3)[1], 255);

  n = WebPEncodeRGB(px.data(), w, h, w * 3, 90.f, &out);
  const Bytes lossy(out, out + n);
  WebPFree(out);
  const Image l = decode_bytes(lossy);
  EXPECT_EQ(l.width, w);
  // Truncated WebP: an error naming the file, at every length.
  for (size_t len = 1; len < lossy.size(); ++len) {
    const Bytes cut(lossy.begin(), lossy.begin() + static_cast<ptrdiff_t>(len));
    EXPECT_THROW(decode_bytes(cut), Error) << "length " << len;
  }
}

// Where stored pixel (x, y) of a w×h image is displayed for each EXIF orientation, written from
// the EXIF specification's description of each value (row 0 / column 0 placement).
std::pair<int, int> displayed_at(int o, int x, int y, int w, int h) {
  switch (o) {
    case 1:
      return {x, y};
    case 2:
      return {w - 1 - x, y};  // mirrored horizontally
    case 3:
      return {w - 1 - x, h - 1 - y};  // rotated 180
    case 4:
      return {x, h - 1 - y};  // mirrored vertically
    case 5:
      return {y, x};  // mirrored, then rotated 90 CW... i.e. transposed
    case 6:
      return {h - 1 - y, x};  // needs 90 CW rotation to display
    case 7:
      return {h - 1 - y, w - 1 - x};  // transverse
    case 8:
      return {y, w - 1 - x};  // needs 90 CCW rotation to display
  }
  return {-1, -1};
}

TEST(ImageDecode, ExifOrientationsPng) {
  const int w = 5, h = 3;
  const Bytes px = pattern(w, h);
  const Bytes base = png(px, w, h, 3);
  for (int o = 1; o <= 8; ++o)
    for (bool be : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "orientation " << o << (be ? " MM" : " II"));
      const Image im = decode_bytes(png_with_chunk(base, "eXIf", tiff_with_orientation(o, be)));
      const bool swap = o >= 5;
      ASSERT_EQ(im.width, swap ? h : w);
      ASSERT_EQ(im.height, swap ? w : h);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const auto [dx, dy] = displayed_at(o, x, y, w, h);
          EXPECT_EQ(std::memcmp(pixel(im, dx, dy), &px[static_cast<size_t>((y * w + x) * 3)], 3), 0)
              << "stored (" << x << "," << y << ") expected at (" << dx << "," << dy << ")";
        }
    }
}

TEST(ImageDecode, ExifOrientationJpeg) {
  // A 32×16 JPEG, left half black, right half white; orientation 6 displays it 16×32 with the
  // white half at the bottom.
  const int w = 32, h = 16;
  Bytes px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px[static_cast<size_t>((y * w + x) * 3 + c)] = x < 16 ? 0 : 255;
  const Bytes file = jpeg_with_exif(jpeg(px, w, h, 3), tiff_with_orientation(6, true));
  const Image im = decode_bytes(file);
  ASSERT_EQ(im.width, 16);
  ASSERT_EQ(im.height, 32);
  EXPECT_LT(pixel(im, 8, 4)[0], 20);
  EXPECT_GT(pixel(im, 8, 28)[0], 235);
}

TEST(ImageExif, MalformedBlocksMeanUpright) {
  using detail::tiff_orientation;
  EXPECT_EQ(tiff_orientation(tiff_with_orientation(6, false)), 6);
  Bytes t = tiff_with_orientation(6, false);
  for (size_t len = 0; len < t.size(); ++len) {
    const int o = tiff_orientation(std::span<const uint8_t>(t.data(), len));
    EXPECT_TRUE(o == 1 || o == 6) << len;
  }
  Bytes bad_offset = t;
  bad_offset[4] = 0xF0;  // IFD0 beyond the block
  EXPECT_EQ(tiff_orientation(bad_offset), 1);
  Bytes bad_value = tiff_with_orientation(9, true);
  EXPECT_EQ(tiff_orientation(bad_value), 1);
  Bytes huge_count = t;
  huge_count[8] = 0xFF;  // 65535 entries claimed
  huge_count[9] = 0xFF;
  EXPECT_EQ(tiff_orientation(huge_count), 6) << "found before the entries run out";
  huge_count[22] = 0x13;  // no orientation entry: the walk stops at the end of the block
  EXPECT_EQ(tiff_orientation(huge_count), 1);
  EXPECT_EQ(tiff_orientation(Bytes{'E', 'x', 'i', 'f', 0, 0}), 1);
}

TEST(ImageDecode, BrokenAndForeignFilesAreErrors) {
  auto message = [](const Bytes& b) -> std::string {
    try {
      decode_bytes(b);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message({}).find("empty"), std::string::npos);
  EXPECT_NE(message({'h', 'e', 'l', 'l', 'o'}).find("not a JPEG, PNG, WebP"), std::string::npos);
  EXPECT_NE(message({'I', 'I', '*', 0, 8, 0, 0, 0}).find("TIFF"), std::string::npos);
  EXPECT_NE(message({0, 0, 0, 24, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c'}).find("HEIC"),
            std::string::npos);
  const Bytes good = png(pattern(13, 9), 13, 9, 3);
  EXPECT_NE(message(Bytes(good.begin(), good.begin() + 20)).find("PNG"), std::string::npos);
  // Every truncation of a PNG and a JPEG: an Error or (for JPEG, which stb pads) an image of the
  // right size, never a crash.
  const Bytes jpg = jpeg(pattern(40, 24), 40, 24, 3);
  for (const Bytes* f : {&good, &jpg})
    for (size_t len = 0; len < f->size(); ++len) {
      try {
        const Image im = decode_bytes(Bytes(f->begin(), f->begin() + static_cast<ptrdiff_t>(len)));
        EXPECT_GT(im.width, 0);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'test'"), std::string::npos) << e.what();
      }
    }
  // Random corruption of single bytes.
  std::uniform_int_distribution<int> byte(0, 255);
  for (const Bytes* f : {&good, &jpg})
    for (int trial = 0; trial < 300; ++trial) {
      Bytes b = *f;
      for (int k = 0; k < 3; ++k)
        b[std::uniform_int_distribution<size_t>(0, b.size() - 1)(eight::testing::rng())] =
            static_cast<uint8_t>(byte(eight::testing::rng()));
      try {
        decode_bytes(b);
      } catch (const Error&) {
      }
    }
}

// A 4×4 PNG whose IHDR claims w×h instead.
Bytes png_claiming(int w, int h) {
  Bytes file = png(pattern(4, 4), 4, 4, 3);
  for (auto [at, v] : {std::pair{16, w}, {20, h}})
    for (int k = 0; k < 4; ++k)
      file[static_cast<size_t>(at + k)] =
          static_cast<uint8_t>(static_cast<uint32_t>(v) >> (24 - 8 * k));
  return file;
}

TEST(ImageDecode, SizeLimitBeforeAllocating) {
  // 16385×16384 is just over 2^28 pixels: refused from the header, before any pixel buffer.
  memory_tracker().reset_peak();
  const int64_t before = memory_tracker().stats().heap_current;
  try {
    decode_bytes(png_claiming(16385, 16384));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("16385x16384"), std::string::npos) << e.what();
  }
  // A PNG whose IDAT claims 1.8 GB in a 300-byte file: refused before stb sizes a buffer by it.
  Bytes claim = png(pattern(4, 4), 4, 4, 3);
  for (size_t i = 8; i + 8 <= claim.size();
       i += 12 + (claim[i] << 24 | claim[i + 1] << 16 | claim[i + 2] << 8 | claim[i + 3]))
    if (std::memcmp(&claim[i + 4], "IDAT", 4) == 0) {
      claim[i] = 0x6E;  // 0x6E000000 bytes
      break;
    }
  try {
    decode_bytes(claim);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("IDAT"), std::string::npos) << e.what();
  }
  // Larger still: stb refuses the header itself (over 2^30 bytes of pixels).
  EXPECT_THROW(decode_bytes(png_claiming(20000, 20000)), Error);
  EXPECT_LT(memory_tracker().stats().heap_peak - before, 1 << 20);
  // A caller's own limit (the server's) applies the same way.
  const Bytes small = png(pattern(40, 30), 40, 30, 3);
  EXPECT_THROW(decode_bytes(small, 1000), Error);
  EXPECT_NO_THROW(decode_bytes(small, 1200));
}

TEST(ImageDecode, LoadFromFile) {
  eight::testing::TempDir dir;
  const Bytes file = png(pattern(6, 4), 6, 4, 3);
  std::ofstream(dir.file("a.png"), std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  EXPECT_EQ(load(dir.file("a.png")).width, 6);
  try {
    load(dir.file("missing.png"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos);
  }
}

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb = Tensor::empty({h, w, 3}, DType::I8);
  auto* p = im.rgb.data<uint8_t>();
  for (int i = 0; i < w * h; ++i) {
    p[i * 3] = r;
    p[i * 3 + 1] = g;
    p[i * 3 + 2] = b;
  }
  return im;
}

TEST(ImagePreprocess, ShapeConstantAndNormalization) {
  const PreprocessConfig cfg;
  for (auto [w, h] : {std::pair{640, 480}, {97, 301}, {224, 224}, {50, 20}}) {
    const Tensor t = preprocess(solid(w, h, 255, 128, 0), cfg);
    ASSERT_EQ(t.shape(), (Dims{3, 224, 224}));
    // A constant image stays constant through the bicubic filter (its taps sum to one).
    const float* p = t.data<const float>();
    const float expect[3] = {(1.0f - cfg.mean[0]) / cfg.std[0],
                             (128 / 255.0f - cfg.mean[1]) / cfg.std[1],
                             (0.0f - cfg.mean[2]) / cfg.std[2]};
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 224 * 224; i += 97) EXPECT_NEAR(p[c * 224 * 224 + i], expect[c], 1e-5);
  }
}

TEST(ImagePreprocess, PadsWithZerosWhenSmallerThanCrop) {
  PreprocessConfig cfg;
  cfg.do_resize = false;
  cfg.crop_width = 8;
  cfg.crop_height = 5;
  const Tensor t = preprocess(solid(5, 2, 255, 255, 255), cfg);
  ASSERT_EQ(t.shape(), (Dims{3, 5, 8}));
  // Pasted at (ceil(3/2), ceil(3/2)) = (2, 2) on zeros, like transformers' center_crop.
  const float zero = (0.0f - cfg.mean[0]) / cfg.std[0], one = (1.0f - cfg.mean[0]) / cfg.std[0];
  const float* p = t.data<const float>();
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 8; ++x) {
      const bool inside = y >= 2 && y < 4 && x >= 2 && x < 7;
      EXPECT_NEAR(p[y * 8 + x], inside ? one : zero, 1e-5) << x << "," << y;
    }
}

TEST(ImagePreprocess, Config) {
  PreprocessConfig c = parse_preprocess_config(R"({
    "crop_size": {"height": 336, "width": 336}, "do_center_crop": true, "do_normalize": true,
    "do_resize": true, "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.5, 0.25, 0.125], "image_std": [0.1, 0.2, 0.3], "resample": 3,
    "size": {"shortest_edge": 336}})");
  EXPECT_EQ(c.shortest_edge, 336);
  EXPECT_EQ(c.crop_height, 336);
  EXPECT_EQ(c.crop_width, 336);
  EXPECT_FLOAT_EQ(c.mean[2], 0.125f);
  EXPECT_FLOAT_EQ(c.std[1], 0.2f);
  c = parse_preprocess_config(R"({"size": 224, "crop_size": 200, "do_rescale": false})");
  EXPECT_EQ(c.shortest_edge, 224);
  EXPECT_EQ(c.crop_width, 200);
  EXPECT_FALSE(c.do_rescale);
  EXPECT_FLOAT_EQ(c.mean[0], 0.48145466f);
  for (const char* bad :
       {"", "[1]", R"({"size": 0})", R"({"size": {"height": 224, "width": 224}})",
        R"({"crop_size": {"height": 99999, "width": 3}})", R"({"image_std": [1, 0, 1]})",
        R"({"image_mean": [1, 2]})", R"({"resample": 2})", R"({"do_resize": "yes"})",
        R"({"rescale_factor": -1})"})
    EXPECT_THROW(parse_preprocess_config(bad), Error) << bad;
}

}  // namespace
}  // namespace eight::image
