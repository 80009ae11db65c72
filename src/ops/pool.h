#pragma once
// Pooling and upsampling of one channels-first image x: [C, H, W] f32 (reference-quality).
//
//   ops::pool2d(x, y, {.kind = ops::PoolKind::Max, .kernel = {2, 2}, .stride = {2, 2}});
//   ops::upsample(x, y, {.mode = ops::UpsampleMode::Bilinear});  // y: [C, H2, W2], any size
//   ops::upsample_nearest2x(x, y);   // x: [..., H, W] -> y: [..., 2H, 2W] (UNet/VAE upsampler)
#include <array>

#include "core/tensor.h"

namespace eight::ops {

enum class PoolKind { Avg, Max };

// PyTorch's rule: H_out = (H + 2 * pad - kernel) / stride + 1. Average pooling divides by the
// full kernel area (padding counts as zeros, PyTorch's count_include_pad default); max pooling
// ignores padding.
struct Pool2dParams {
  PoolKind kind = PoolKind::Avg;
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{2, 2};
  std::array<int64_t, 2> padding{0, 0};
};
void pool2d(const Tensor& x, const Tensor& y, const Pool2dParams& params = {});

enum class UpsampleMode { Nearest, Bilinear };

// Output size comes from y. Bilinear uses half-pixel centers (align_corners = false); nearest
// picks floor(out * in / out_size), both as PyTorch's interpolate does.
struct UpsampleParams {
  UpsampleMode mode = UpsampleMode::Nearest;
};
void upsample(const Tensor& x, const Tensor& y, const UpsampleParams& params = {});

// F.interpolate(x, scale_factor=2, mode="nearest") on the per-ISA kernel: x: contiguous f32
// [..., H, W] (any leading dimensions, e.g. [N, C, H, W]), y: [..., 2H, 2W]. upsample() with
// Nearest and an exact 2x size takes this path too. Runs on a Vulkan device when x and y are there.
void upsample_nearest2x(const Tensor& x, const Tensor& y);

}  // namespace eight::ops
