// Image decoding: stb_image for JPEG/PNG/BMP/GIF, libwebp for WebP, then one conversion to RGB and
// the EXIF orientation. Preprocessing lives in image_preprocess.cpp.
#include "formats/image.h"

#include <webp/decode.h>

#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/storage.h"
#include "formats/image_exif.h"
#include "formats/image_guard.h"
#include "formats/image_stb.h"

namespace eight::image {
namespace {

using namespace std::literals;

bool starts_with(std::span<const uint8_t> b, size_t at, std::string_view magic) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

bool is_webp(std::span<const uint8_t> b) {
  return starts_with(b, 0, "RIFF"sv) && starts_with(b, 8, "WEBP"sv);
}

// Names formats people try that eight does not read, so the error says so rather than "corrupt".
const char* unsupported_format(std::span<const uint8_t> b) {
  if (starts_with(b, 0, "II*"sv) || starts_with(b, 0, "MM"sv)) return "TIFF";
  if (starts_with(b, 4, "ftypheic"sv) || starts_with(b, 4, "ftypheix"sv) ||
      starts_with(b, 4, "ftypmif1"sv))
    return "HEIC";
  if (starts_with(b, 4, "ftypavif"sv)) return "AVIF";
  if (starts_with(b, 0, "8BPS"sv)) return "PSD";
  if (starts_with(b, 0, "\x00\x00\x01\x00"sv)) return "ICO";
  if (starts_with(b, 0, "%PDF"sv)) return "PDF";
  if (starts_with(b, 0, "<svg"sv) || starts_with(b, 0, "<?xml"sv)) return "SVG";
  if (starts_with(b, 0, "\xff\x0a"sv) || starts_with(b, 4, "jP  "sv)) return "JPEG XL / JPEG 2000";
  return nullptr;
}

const char* known_format(std::span<const uint8_t> b) {
  if (starts_with(b, 0, "\xff\xd8"sv)) return "JPEG";
  if (starts_with(b, 0, "\x89PNG"sv)) return "PNG";
  if (starts_with(b, 0, "GIF8"sv)) return "GIF";
  if (starts_with(b, 0, "BM"sv)) return "BMP";
  return nullptr;
}

void check_size(int w, int h, int64_t max_pixels, const std::string& name) {
  check(w > 0 && h > 0, "[image] '", name, "' has an empty size ", w, "x", h);
  check(static_cast<int64_t>(w) * h <= max_pixels, "[image] '", name, "' is ", w, "x", h, " = ",
        static_cast<int64_t>(w) * h, " pixels, more than the limit of ", max_pixels);
}

// libwebp decodes straight into a tracked tensor: I8 [h, w, 3 or 4].
Tensor decode_webp(std::span<const uint8_t> bytes, int64_t max_pixels, const std::string& name) {
  WebPBitstreamFeatures f;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &f);
  check(status == VP8_STATUS_OK, "[image] cannot read the WebP header of '", name, "' (libwebp ",
        status == VP8_STATUS_NOT_ENOUGH_DATA ? "says it is truncated" : "status ",
        status == VP8_STATUS_NOT_ENOUGH_DATA ? "" : std::to_string(status), ")");
  check(!f.has_animation, "[image] '", name, "' is an animated WebP, which is not supported");
  check_size(f.width, f.height, max_pixels, name);
  const int c = f.has_alpha ? 4 : 3;
  Tensor t = Tensor::empty({f.height, f.width, c}, DType::I8);
  auto* out = t.data<uint8_t>();
  const size_t stride = static_cast<size_t>(f.width) * c;
  const size_t size = stride * static_cast<size_t>(f.height);
  const uint8_t* ok =
      c == 4 ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), out, size, static_cast<int>(stride))
             : WebPDecodeRGBInto(bytes.data(), bytes.size(), out, size, static_cast<int>(stride));
  check(ok != nullptr, "[image] cannot decode '", name, "' (WebP ", f.width, "x", f.height,
        "): the bitstream is truncated or corrupt");
  return t;
}

// Alpha over opaque white with the integer arithmetic of Pillow's alpha_composite (7 fractional
// bits, then a shift-based division by 255), which Hugging Face's convert_to_rgb uses: a
// transparent logo on a white page looks like what its author saw, where dropping alpha would show
// whatever colour the encoder left in transparent pixels (often black).
uint8_t over_white(uint32_t c, uint32_t a) {
  const uint32_t coef1 = a << 7, coef2 = (255u << 7) - coef1;
  const uint32_t t = c * coef1 + 255u * coef2 + (0x80u << 7);
  return static_cast<uint8_t>((((t >> 8) + t) >> 8) >> 7);
}

// [h, w, c] with c in 1..4 → [h, w, 3].
Tensor to_rgb(const Tensor& px) {
  const int c = static_cast<int>(px.size(2));
  if (c == 3) return px;
  const int64_t n = px.size(0) * px.size(1);
  Tensor rgb = Tensor::empty({px.size(0), px.size(1), 3}, DType::I8);
  const auto* in = px.data<const uint8_t>();
  auto* out = rgb.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i, in += c, out += 3) {
    if (c == 1) {
      out[0] = out[1] = out[2] = in[0];
    } else if (c == 2) {
      out[0] = out[1] = out[2] = in[1] == 255 ? in[0] : over_white(in[0], in[1]);
    } else {
      for (int k = 0; k < 3; ++k) out[k] = in[3] == 255 ? in[k] : over_white(in[k], in[3]);
    }
  }
  return rgb;
}

// Applies EXIF orientation o (1..8) to an RGB [H, W, 3] image. Each output pixel (x, y) reads the
// stored pixel start + x * step_x + y * step_y; orientations 5..8 swap width and height.
Tensor orient(const Tensor& rgb, int o) {
  if (o == 1) return rgb;
  const int64_t H = rgb.size(0), W = rgb.size(1);
  const bool swap = o >= 5;
  const int64_t out_h = swap ? W : H, out_w = swap ? H : W;
  // (column, row) of the stored pixel that lands at output (0,0), and the stored-pixel steps for
  // one output column and one output row (as PIL's exif_transpose maps them).
  struct Map {
    int64_t col, row, dx_col, dx_row, dy_col, dy_row;
  };
  const Map maps[9] = {{},
                       {0, 0, 1, 0, 0, 1},
                       {W - 1, 0, -1, 0, 0, 1},       // 2: mirror left-right
                       {W - 1, H - 1, -1, 0, 0, -1},  // 3: rotate 180
                       {0, H - 1, 1, 0, 0, -1},       // 4: mirror top-bottom
                       {0, 0, 0, 1, 1, 0},            // 5: transpose
                       {0, H - 1, 0, -1, 1, 0},       // 6: rotate 90 clockwise
                       {W - 1, H - 1, 0, -1, -1, 0},  // 7: transverse
                       {W - 1, 0, 0, 1, -1, 0}};      // 8: rotate 90 counter-clockwise
  const Map& m = maps[o];
  const int64_t start = (m.row * W + m.col) * 3;
  const int64_t step_x = (m.dx_row * W + m.dx_col) * 3, step_y = (m.dy_row * W + m.dy_col) * 3;
  Tensor out = Tensor::empty({out_h, out_w, 3}, DType::I8);
  const auto* in = rgb.data<const uint8_t>();
  auto* dst = out.data<uint8_t>();
  for (int64_t y = 0; y < out_h; ++y) {
    const uint8_t* src = in + start + y * step_y;
    for (int64_t x = 0; x < out_w; ++x, src += step_x, dst += 3) {
      dst[0] = src[0];
      dst[1] = src[1];
      dst[2] = src[2];
    }
  }
  return out;
}

}  // namespace

Image decode(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  check(!bytes.empty(), "[image] '", name, "' is empty");
  Tensor px;
  if (is_webp(bytes)) {
    px = decode_webp(bytes, max_pixels, name);
  } else {
    detail::check_jpeg_tables(bytes, name);  // before stb reads any header
    detail::check_png_chunks(bytes, name);
    detail::StbInfo info;
    std::string reason;
    if (!detail::stb_info(bytes, &info, &reason)) {
      if (const char* other = unsupported_format(bytes))
        fail("[image] '", name, "' is a ", other,
             " image; supported formats are JPEG, PNG, WebP, BMP and GIF");
      if (const char* kind = known_format(bytes))
        fail("[image] '", name, "' looks like ", kind, " but its header cannot be read (",
             bytes.size(), " bytes): ", reason);
      fail("[image] '", name, "' is not a JPEG, PNG, WebP, BMP or GIF image (", bytes.size(),
           " bytes)");
    }
    check_size(info.width, info.height, max_pixels, name);
    // Ask for alpha when a PNG has a transparent colour (tRNS), which stb only applies then.
    if ((info.channels == 1 || info.channels == 3) && detail::png_has_transparency(bytes))
      ++info.channels;
    px = detail::stb_decode(bytes, info, name);
  }
  Image image;
  image.rgb = orient(to_rgb(px), detail::exif_orientation(bytes));
  image.height = static_cast<int>(image.rgb.size(0));
  image.width = static_cast<int>(image.rgb.size(1));
  return image;
}

bool read_size(const std::string& path, int* width, int* height) {
  try {
    const MappedFile file(path);
    const std::span<const uint8_t> bytes{file.bytes(), file.size()};
    if (is_webp(bytes)) {
      WebPBitstreamFeatures f;
      if (WebPGetFeatures(bytes.data(), bytes.size(), &f) != VP8_STATUS_OK) return false;
      *width = f.width;
      *height = f.height;
      return true;
    }
    detail::StbInfo info;
    std::string reason;
    if (!detail::stb_info(bytes, &info, &reason)) return false;
    *width = info.width;
    *height = info.height;
    return true;
  } catch (const Error&) {
    return false;
  }
}

Image load(const std::string& path) {
  const MappedFile file(path);  // throws naming the path and the system's reason
  return decode({file.bytes(), file.size()}, path);
}

}  // namespace eight::image
