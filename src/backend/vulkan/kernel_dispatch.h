#pragma once
// What every kernel entry (kernels.cpp, kernels_image.cpp) does before it records a dispatch:
// bounds checks on the buffers, 32-bit sizes, the workgroup grid, and the dispatch itself.
#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>

#include "backend/vulkan/vulkan_impl.h"
#include "core/error.h"

namespace eight::vulkan::detail {

// The ref's buffer holds `bytes` from its offset (all shaders index below 2^32 bytes).
inline void need(const char* op, const char* what, BufferRef r, uint64_t bytes) {
  check(r.buffer != nullptr, "[vulkan] ", op, ": ", what, " has no buffer");
  check(r.offset <= r.buffer->size() && bytes <= r.buffer->size() - r.offset, "[vulkan] ", op, ": ",
        what, " needs ", bytes, " bytes at offset ", r.offset, " but its buffer has ",
        r.buffer->size());
  check(r.offset + bytes < (uint64_t{1} << 32), "[vulkan] ", op, ": ", what, " ends at byte ",
        r.offset + bytes, "; the shaders address at most 4 GiB per binding");
}

inline void need_f32(const char* op, const char* what, BufferRef r, uint64_t elems) {
  check(r.offset % 4 == 0, "[vulkan] ", op, ": ", what, " offset ", r.offset,
        " is not a multiple of 4 bytes");
  need(op, what, r, elems * 4);
}

inline int device_of(const char* op, BufferRef r) {
  check(r.buffer != nullptr, "[vulkan] ", op, ": missing buffer");
  return r.buffer->device_index();
}

// A 1-D count of workgroups spread over x and y (x is limited to 65535 everywhere).
inline std::array<uint32_t, 2> grid(uint64_t groups) {
  const uint64_t x = std::min<uint64_t>(groups, 65535);
  const uint64_t y = x ? (groups + x - 1) / x : 0;
  check(y <= 65535, "[vulkan] ", groups, " workgroups exceed the 65535 x 65535 grid");
  return {static_cast<uint32_t>(x), static_cast<uint32_t>(y)};
}

inline uint32_t u32(const char* op, int64_t v) {
  check(v >= 0 && v <= int64_t{0xFFFFFFFF}, "[vulkan] ", op, ": size ", v,
        " does not fit the shaders' 32-bit indices");
  return static_cast<uint32_t>(v);
}

// Records `shader` with bindings `args` and push-constant struct `push` (first fields: one uint32
// offset per binding, filled by the dispatcher).
template <class Push>
void run(int device, const std::string& shader, std::initializer_list<Arg> args, Push push,
         uint32_t gx, uint32_t gy = 1, uint32_t gz = 1) {
  std::array<uint8_t, sizeof(Push)> bytes;
  std::memcpy(bytes.data(), &push, sizeof(Push));
  Context::get(device).dispatch(shader, std::span<const Arg>(args.begin(), args.size()), bytes, gx,
                                gy, gz);
}

}  // namespace eight::vulkan::detail
