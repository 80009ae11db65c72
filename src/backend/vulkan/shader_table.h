#pragma once
// The SPIR-V modules compiled from shaders/*.comp at build time (cmake/vulkan_shaders.cmake
// writes the table; a shader with variants appears once per variant, as "<shader>_<variant>").
#include <cstddef>
#include <cstdint>

namespace eight::vulkan::detail {

struct ShaderBlob {
  const char* name;
  const uint32_t* words;
  size_t word_count;
};

extern const ShaderBlob shader_table[];
extern const size_t shader_count;

}  // namespace eight::vulkan::detail
