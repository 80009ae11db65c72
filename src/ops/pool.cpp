#include "ops/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"

namespace eight::ops {

namespace {

void check_image(const char* op, const Tensor& t, const char* what) {
  check(t.defined() && t.dim() == 3 && t.dtype() == DType::F32 && t.is_contiguous(), "[", op, "] ",
        what, " must be a contiguous f32 [C, H, W], got ",
        t.defined() ? t.str() : std::string("undefined"));
}

}  // namespace

void pool2d(const Tensor& x, const Tensor& y, const Pool2dParams& p) {
  check_image("pool2d", x, "x");
  check_image("pool2d", y, "y");
  for (int i = 0; i < 2; ++i)
    check(
        p.kernel[i] > 0 && p.stride[i] > 0 && p.padding[i] >= 0 && 2 * p.padding[i] <= p.kernel[i],
        "[pool2d] kernel ", p.kernel[i], ", stride ", p.stride[i], ", padding ", p.padding[i],
        " are invalid (padding at most half the kernel)");
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  check(h + 2 * p.padding[0] >= p.kernel[0] && w + 2 * p.padding[1] >= p.kernel[1],
        "[pool2d] input ", x.shape().str(), " is smaller than the kernel");
  const int64_t ho = (h + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1;
  const int64_t wo = (w + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1;
  check(y.shape() == Dims{c, ho, wo}, "[pool2d] y must be [", c, ", ", ho, ", ", wo, "], got ",
        y.shape().str());
  const float area = static_cast<float>(p.kernel[0] * p.kernel[1]);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* src = x.data<float>() + ch * h * w;
    float* dst = y.data<float>() + ch * ho * wo;
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        float acc = p.kind == PoolKind::Max ? -std::numeric_limits<float>::infinity() : 0.f;
        for (int64_t ky = 0; ky < p.kernel[0]; ++ky)
          for (int64_t kx = 0; kx < p.kernel[1]; ++kx) {
            const int64_t iy = oy * p.stride[0] - p.padding[0] + ky;
            const int64_t ix = ox * p.stride[1] - p.padding[1] + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const float v = src[iy * w + ix];
            acc = p.kind == PoolKind::Max ? std::max(acc, v) : acc + v;
          }
        dst[oy * wo + ox] = p.kind == PoolKind::Max ? acc : acc / area;
      }
  }
}

void upsample(const Tensor& x, const Tensor& y, const UpsampleParams& p) {
  check_image("upsample", x, "x");
  check_image("upsample", y, "y");
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2), ho = y.size(1), wo = y.size(2);
  check(y.size(0) == c && h > 0 && w > 0, "[upsample] x ", x.shape().str(), " and y ",
        y.shape().str(), " must have the same channels and nonempty images");
  if (p.mode == UpsampleMode::Nearest && ho == 2 * h && wo == 2 * w) {
    upsample_nearest2x(x, y);
    return;
  }
  const double sy = static_cast<double>(h) / static_cast<double>(ho);
  const double sx = static_cast<double>(w) / static_cast<double>(wo);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* src = x.data<float>() + ch * h * w;
    float* dst = y.data<float>() + ch * ho * wo;
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        if (p.mode == UpsampleMode::Nearest) {
          const int64_t iy = std::min(h - 1, static_cast<int64_t>(std::floor(oy * sy)));
          const int64_t ix = std::min(w - 1, static_cast<int64_t>(std::floor(ox * sx)));
          dst[oy * wo + ox] = src[iy * w + ix];
          continue;
        }
        const double fy = std::max(0.0, (oy + 0.5) * sy - 0.5);
        const double fx = std::max(0.0, (ox + 0.5) * sx - 0.5);
        const int64_t y0 = std::min(h - 1, static_cast<int64_t>(fy));
        const int64_t x0 = std::min(w - 1, static_cast<int64_t>(fx));
        const int64_t y1 = std::min(h - 1, y0 + 1), x1 = std::min(w - 1, x0 + 1);
        const double ly = fy - y0, lx = fx - x0;
        const double top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx;
        const double bot = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx;
        dst[oy * wo + ox] = static_cast<float>(top * (1 - ly) + bot * ly);
      }
  }
}

void upsample_nearest2x(const Tensor& x, const Tensor& y) {
  auto ok = [](const Tensor& t) {
    return t.defined() && t.dim() >= 2 && t.dtype() == DType::F32 && t.is_contiguous();
  };
  check(ok(x) && ok(y), "[upsample_nearest2x] x and y must be contiguous f32 [..., H, W], got ",
        x.defined() ? x.str() : std::string("undefined"), " and ",
        y.defined() ? y.str() : std::string("undefined"));
  const bool on_device =
      op_device("upsample_nearest2x", {{"x", &x}, {"y", &y}}).kind == DeviceKind::Vulkan;
  Dims want = x.shape();
  const int d = x.dim();
  want[d - 2] *= 2;
  want[d - 1] *= 2;
  check(y.shape() == want, "[upsample_nearest2x] y must be ", want.str(), " for x ",
        x.shape().str(), ", got ", y.shape().str());
  const int64_t h = x.size(d - 2), w = x.size(d - 1), planes = h * w > 0 ? x.numel() / (h * w) : 0;
  if (on_device) {
    vulkan::upsample_nearest2x(vulkan::buffer_of(x), vulkan::buffer_of(y), planes, h, w);
    return;
  }
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < planes; ++i)
    k.upsample_nearest2x(x.data<float>() + i * h * w, y.data<float>() + i * 4 * h * w, h, w);
}

}  // namespace eight::ops
