// PNG (ISO/IEC 15948): signature, IHDR (8-bit truecolor), tEXt chunks, one zlib stream of the
// scanlines split into IDAT chunks, IEND. Every chunk carries a CRC-32 of its type and data.
#include "formats/png.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace eight::image {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

void put_chunk(std::string& out, const char* type, std::string_view data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const size_t at = out.size();
  out.append(type, 4);
  out.append(data);
  const auto* p = reinterpret_cast<const Bytef*>(out.data() + at);
  put_u32(out, static_cast<uint32_t>(crc32(0L, p, static_cast<uInt>(4 + data.size()))));
}

}  // namespace

std::string encode_png(std::span<const uint8_t> rgb, int width, int height, const PngText& text) {
  check(width > 0 && height > 0 && width <= (1 << 16) && height <= (1 << 16), "[png] ", width, "x",
        height, " is not a writable image size");
  const size_t row = static_cast<size_t>(width) * 3;
  check(rgb.size() == row * static_cast<size_t>(height), "[png] ", rgb.size(), " bytes for a ",
        width, "x", height, " RGB image (", row * static_cast<size_t>(height), " expected)");
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, truecolor, deflate, filter 0, no
                                                   // interlace
  put_chunk(out, "IHDR", ihdr);
  for (const auto& [key, value] : text) {
    check(!key.empty() && key.size() <= 79 && key.find('\0') == std::string::npos, "[png] '", key,
          "' is not a PNG text keyword (1-79 characters, no NUL)");
    check(value.find('\0') == std::string::npos, "[png] the text of '", key, "' holds a NUL");
    put_chunk(out, "tEXt", key + std::string(1, '\0') + value);
  }
  // Scanlines with filter type "Up" (2): smooth images compress better than unfiltered ones.
  std::string raw(row * static_cast<size_t>(height) + static_cast<size_t>(height), '\0');
  for (size_t y = 0; y < static_cast<size_t>(height); ++y) {
    char* dst = raw.data() + y * (row + 1);
    const uint8_t* cur = rgb.data() + y * row;
    dst[0] = y == 0 ? 0 : 2;
    for (size_t x = 0; x < row; ++x)
      dst[1 + x] = static_cast<char>(y == 0 ? cur[x] : static_cast<uint8_t>(cur[x] - cur[x - row]));
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  check(compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                  reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                  6) == Z_OK,
        "[png] zlib could not compress ", raw.size(), " bytes");
  packed.resize(packed_size);
  constexpr size_t kIdat = 1 << 20;
  for (size_t at = 0; at < packed.size(); at += kIdat)
    put_chunk(out, "IDAT", std::string_view(packed).substr(at, kIdat));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
               const PngText& text) {
  const std::string bytes = encode_png(rgb, width, height, text);
  const std::string tmp = path + ".part";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    check(f.good(), "[png] cannot write '", path, "'");
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    check(f.good(), "[png] writing '", path, "' failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::remove(tmp.c_str());
  check(!ec, "[png] cannot move the image into '", path, "': ", ec.message());
}

}  // namespace eight::image
