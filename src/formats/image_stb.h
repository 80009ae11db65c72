#pragma once
// The slice of stb_image that image.cpp uses, compiled once in image_stb.cpp with eight's tracked
// allocator (so decoded pixels count against the host budget) and only the formats eight accepts.
#include <cstdint>
#include <span>
#include <string>

#include "core/tensor.h"

namespace eight::image::detail {

struct StbInfo {
  int width = 0, height = 0;
  int channels = 0;  // channels in the file: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
};

// Header only: false when stb does not recognise or refuses the header (*reason says why).
bool stb_info(std::span<const uint8_t> bytes, StbInfo* info, std::string* reason);

// Decodes into I8 [height, width, info.channels] (bytes are uint8 pixels). Throws Error with stb's
// reason (prefixed by `name`) when decoding fails.
Tensor stb_decode(std::span<const uint8_t> bytes, const StbInfo& info, const std::string& name);

}  // namespace eight::image::detail
