#pragma once
// EXIF orientation (TIFF tag 0x0112 in IFD0) read from the bytes of a JPEG (APP1 "Exif"), PNG
// (eXIf chunk) or WebP (RIFF EXIF chunk). A bounds-checked reader: anything malformed or absent
// is orientation 1, since a broken EXIF block must not make a decodable image unreadable.
#include <cstdint>
#include <span>

namespace eight::image::detail {

// 1..8 as EXIF defines them (1: as stored).
int exif_orientation(std::span<const uint8_t> file);
// The orientation tag from a TIFF structure ("II*\0" or "MM\0*" header, optionally preceded by
// "Exif\0\0").
int tiff_orientation(std::span<const uint8_t> tiff);

// Whether a PNG carries a tRNS chunk (a transparent colour or palette alpha), which stb only turns
// into an alpha channel when asked for one.
bool png_has_transparency(std::span<const uint8_t> file);

}  // namespace eight::image::detail
