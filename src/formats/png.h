#pragma once
// PNG writing for generated images: 8-bit RGB, deflated with zlib, with tEXt chunks (A1111 and
// ComfyUI read the generation settings from a "parameters" text chunk).
//
//   std::string png = image::encode_png(rgb, width, height, {{"parameters", text}});
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace eight::image {

using PngText = std::vector<std::pair<std::string, std::string>>;  // keyword, text

// rgb: height rows of width * 3 bytes. Keywords are 1-79 Latin-1 characters without NUL; text
// has no NUL (both are checked: Error). Returns the file's bytes.
std::string encode_png(std::span<const uint8_t> rgb, int width, int height,
                       const PngText& text = {});
// Writes encode_png's bytes to path (through a temporary file renamed into place, so a failed
// run leaves no half-written image). Throws Error naming the path.
void write_png(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
               const PngText& text = {});

}  // namespace eight::image
