#include "formats/image_exif.h"

#include <cstring>

namespace eight::image::detail {
namespace {

class Reader {
 public:
  Reader(std::span<const uint8_t> b, bool big_endian) : b_(b), be_(big_endian) {}
  // Each read returns false when [off, off+n) is outside the buffer.
  bool u16(size_t off, uint32_t* v) const {
    if (off > b_.size() || b_.size() - off < 2) return false;
    *v = be_ ? (b_[off] << 8 | b_[off + 1]) : (b_[off + 1] << 8 | b_[off]);
    return true;
  }
  bool u32(size_t off, uint32_t* v) const {
    uint32_t hi = 0, lo = 0;
    if (!u16(off, be_ ? &hi : &lo) || !u16(off + 2, be_ ? &lo : &hi)) return false;
    *v = hi << 16 | lo;
    return true;
  }

 private:
  std::span<const uint8_t> b_;
  bool be_;
};

uint32_t be16(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 8 | p[1];
}
uint32_t be32(const uint8_t* p) {
  return be16(p) << 16 | be16(p + 2);
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[3]) << 24 | p[2] << 16 | p[1] << 8 | p[0];
}

// JPEG: walk the marker segments before the scan data; EXIF lives in an APP1 segment.
int jpeg_orientation(std::span<const uint8_t> f) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= f.size()) {
    if (f[pos] != 0xFF) return 1;
    const uint8_t marker = f[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      pos += 2;  // markers without a length
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // scan data / end: no EXIF before it
    const uint32_t len = be16(&f[pos + 2]);
    if (len < 2 || f.size() - (pos + 2) < len) return 1;
    const auto seg = f.subspan(pos + 4, len - 2);
    if (marker == 0xE1 && seg.size() >= 6 && std::memcmp(seg.data(), "Exif\0\0", 6) == 0)
      return tiff_orientation(seg);
    pos += 2 + len;
  }
  return 1;
}

// PNG: chunks of [length BE32][type][data][crc]. Returns the data of the first chunk of `type`
// (empty when absent or when the chunk list is broken before it).
std::span<const uint8_t> png_chunk(std::span<const uint8_t> f, const char* type) {
  size_t pos = 8;
  while (pos + 8 <= f.size()) {
    const uint32_t len = be32(&f[pos]);
    if (f.size() - (pos + 8) < len) return {};
    if (std::memcmp(&f[pos + 4], type, 4) == 0) return f.subspan(pos + 8, len);
    if (std::memcmp(&f[pos + 4], "IEND", 4) == 0) return {};
    if (f.size() - (pos + 8) - len < 4) return {};
    pos += 12 + static_cast<size_t>(len);
  }
  return {};
}

bool is_png(std::span<const uint8_t> f) {
  return f.size() >= 8 && std::memcmp(f.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

// WebP: RIFF chunks of [type][length LE32][data, padded to even]; EXIF is the "EXIF" chunk.
int webp_orientation(std::span<const uint8_t> f) {
  size_t pos = 12;
  while (pos + 8 <= f.size()) {
    const uint32_t len = le32(&f[pos + 4]);
    if (f.size() - (pos + 8) < len) return 1;
    if (std::memcmp(&f[pos], "EXIF", 4) == 0) return tiff_orientation(f.subspan(pos + 8, len));
    pos += 8 + static_cast<size_t>(len) + (len & 1);
  }
  return 1;
}

}  // namespace

int tiff_orientation(std::span<const uint8_t> t) {
  if (t.size() >= 6 && std::memcmp(t.data(), "Exif\0\0", 6) == 0) t = t.subspan(6);
  if (t.size() < 8) return 1;
  bool big_endian;
  if (std::memcmp(t.data(), "II*\0", 4) == 0)
    big_endian = false;
  else if (std::memcmp(t.data(), "MM\0*", 4) == 0)
    big_endian = true;
  else
    return 1;
  const Reader r(t, big_endian);
  uint32_t ifd0 = 0, count = 0;
  if (!r.u32(4, &ifd0) || !r.u16(ifd0, &count)) return 1;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t entry = static_cast<size_t>(ifd0) + 2 + 12 * static_cast<size_t>(i);
    uint32_t tag = 0, type = 0, n = 0, value = 0;
    if (!r.u16(entry, &tag) || !r.u16(entry + 2, &type) || !r.u32(entry + 4, &n)) return 1;
    if (tag != 0x0112) continue;
    // SHORT (3), one value, stored in the first two bytes of the value field.
    if (type != 3 || n < 1 || !r.u16(entry + 8, &value)) return 1;
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

int exif_orientation(std::span<const uint8_t> f) {
  if (f.size() >= 4 && f[0] == 0xFF && f[1] == 0xD8) return jpeg_orientation(f);
  // eXIf may sit anywhere before IEND (readers accept it after IDAT too).
  if (is_png(f)) return tiff_orientation(png_chunk(f, "eXIf"));
  if (f.size() >= 12 && std::memcmp(f.data(), "RIFF", 4) == 0 &&
      std::memcmp(f.data() + 8, "WEBP", 4) == 0)
    return webp_orientation(f);
  return 1;
}

bool png_has_transparency(std::span<const uint8_t> f) {
  return is_png(f) && !png_chunk(f, "tRNS").empty();
}

}  // namespace eight::image::detail
