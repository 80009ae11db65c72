#pragma once
// Normalizations over the last dimension. y may be x itself (in place); shapes must match.
//
//   ops::rms_norm(x, y, {.weight = &w, .eps = 1e-5f});     // Llama: x / rms(x) * w
//   ops::layer_norm(x, y, {.weight = &g, .bias = &b});      // (x - mean) / std * g + b
//   ops::group_norm(x, y, {.groups = 32, ...});             // x: [C, ...] channels first
//   ops::group_norm(x, y, {.weight = &g, .bias = &b, .eps = 1e-6f, .silu = true,
//                          .channel_dim = 1, .pool = &pool});  // x: [N, C, H, W], then SiLU
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::ops {

struct RmsNormParams {
  const Tensor* weight = nullptr;  // [n] f32, or nullptr for none
  float eps = 1e-6f;
};
void rms_norm(const Tensor& x, const Tensor& y, const RmsNormParams& params = {});

struct LayerNormParams {
  const Tensor* weight = nullptr;  // [n] f32 or nullptr
  const Tensor* bias = nullptr;    // [n] f32 or nullptr
  float eps = 1e-5f;
};
void layer_norm(const Tensor& x, const Tensor& y, const LayerNormParams& params = {});

// x: contiguous [batch..., C, spatial...] with C at channel_dim (0: one sample [C, H, W]; 1:
// [N, C, H, W]); channels split into `groups` groups, each normalized over its channels and all
// spatial positions of one sample (torch.nn.GroupNorm); weight/bias are per channel [C]. With
// silu, y = silu(group_norm(x)) in the same pass. Groups run in parallel on pool when given. On a
// Vulkan device (x, y, weight and bias there) one workgroup normalizes each (sample, group).
struct GroupNormParams {
  int64_t groups = 32;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  float eps = 1e-5f;
  bool silu = false;
  int64_t channel_dim = 0;
  ThreadPool* pool = nullptr;
};
void group_norm(const Tensor& x, const Tensor& y, const GroupNormParams& params);

}  // namespace eight::ops
