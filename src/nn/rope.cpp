#include "nn/rope.h"

#include <cmath>

#include "core/error.h"
#include "nn/shape_text.h"
#include "ops/device.h"

namespace eight::nn {

void rope_table(float* cos_sin, const int32_t* positions, int64_t T, const RopeParams& p) {
  check(p.n_rot > 0 && p.n_rot % 2 == 0, "[rope] n_rot must be even and positive, got ", p.n_rot);
  const int64_t half = p.n_rot / 2;
  const float* ff = nullptr;
  if (p.freq_factors.defined()) {
    check(p.freq_factors.dtype() == DType::F32 && p.freq_factors.numel() == half,
          "[rope] frequency factors must be f32 [", half, "], got ",
          dtype_name(p.freq_factors.dtype()), " ", ShapeText(p.freq_factors.shape()));
    ff = p.freq_factors.data<float>();
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      // Angles in double: positions reach 10^5 and float rounding of the angle would show.
      double theta = positions[t] * static_cast<double>(p.freq_scale) *
                     std::pow(static_cast<double>(p.base), -2.0 * i / static_cast<double>(p.n_rot));
      if (ff) theta /= ff[i];
      cos_sin[(t * half + i) * 2 + 0] = static_cast<float>(std::cos(theta) * p.attn_factor);
      cos_sin[(t * half + i) * 2 + 1] = static_cast<float>(std::sin(theta) * p.attn_factor);
    }
}

void rope_apply(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t row_stride,
                const float* cos_sin, const RopeParams& p) {
  check(p.n_rot <= head_dim, "[rope] n_rot ", p.n_rot, " exceeds head_dim ", head_dim);
  const int64_t half = p.n_rot / 2;
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = cos_sin + t * half * 2;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + t * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = p.style == RopeStyle::Norm ? 2 * i : i;
        const int64_t b = p.style == RopeStyle::Norm ? 2 * i + 1 : i + half;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void rope_apply(const Tensor& x, int64_t n_heads, int64_t head_dim, const Tensor& cos_sin,
                const RopeParams& p) {
  check(p.n_rot <= head_dim, "[rope] n_rot ", p.n_rot, " exceeds head_dim ", head_dim);
  check(ops::op_device("rope", {{"x", &x}, {"cos_sin", &cos_sin}}).kind == DeviceKind::Vulkan,
        "[rope] the tensor form runs on a GPU; x is on ", x.device().name());
  const int64_t T = x.size(0);
  check(x.dim() == 2 && x.dtype() == DType::F32 && x.size(1) == n_heads * head_dim &&
            x.stride(1) == 1,
        "[rope] x ", ShapeText(x.shape()), " must be f32 [T, ", n_heads * head_dim, "]");
  check(cos_sin.dtype() == DType::F32 && cos_sin.numel() >= T * p.n_rot && cos_sin.is_contiguous(),
        "[rope] cos_sin ", ShapeText(cos_sin.shape()), " must hold [", T, ", ", p.n_rot, "] f32");
  const vulkan::BufferRef xb = vulkan::buffer_of(x);
  vulkan::rope(xb, x.stride(0), xb, x.stride(0), vulkan::buffer_of(cos_sin), T, n_heads, head_dim,
               p.n_rot,
               p.style == RopeStyle::Neox ? vulkan::RopeStyle::Neox : vulkan::RopeStyle::Norm);
}

}  // namespace eight::nn
