#include "ops/conv.h"

#include <algorithm>

#include "ops/device.h"
#include "ops/matmul.h"

namespace eight::ops {

namespace {

struct Geometry {
  int64_t c_in, h, w, c_out, kh, kw, h_out, w_out;
};

Geometry geometry(const Tensor& x, const Dims& w, const Conv2dParams& p) {
  check(x.defined(), "[conv2d] undefined tensor argument");
  check(x.dim() == 3 && w.size() == 4, "[conv2d] x must be [C_in, H, W] and w [C_out, C_in / ",
        "groups, kh, kw], got ", x.shape().str(), " and ", w.str());
  check(x.dtype() == DType::F32, "[conv2d] x must be f32, got ", dtype_name(x.dtype()));
  std::array<int64_t, 2> pad_end{};
  for (int i = 0; i < 2; ++i) {
    pad_end[i] = p.padding_end[i] < 0 ? p.padding[i] : p.padding_end[i];
    check(p.stride[i] > 0 && p.dilation[i] > 0 && p.padding[i] >= 0, "[conv2d] stride ",
          p.stride[i], ", dilation ", p.dilation[i], " and padding ", p.padding[i],
          " must be positive (padding >= 0)");
  }
  Geometry g{x.size(0), x.size(1), x.size(2), w[0], w[2], w[3], 0, 0};
  check(p.groups > 0 && g.c_in % p.groups == 0 && g.c_out % p.groups == 0 &&
            w[1] * p.groups == g.c_in,
        "[conv2d] ", g.c_in, " input and ", g.c_out, " output channels with groups = ", p.groups,
        " do not match the weight ", w.str());
  const int64_t eh = p.dilation[0] * (g.kh - 1) + 1, ew = p.dilation[1] * (g.kw - 1) + 1;
  const int64_t ph = g.h + p.padding[0] + pad_end[0], pw = g.w + p.padding[1] + pad_end[1];
  check(ph >= eh && pw >= ew, "[conv2d] input ", x.shape().str(),
        " is smaller than the (dilated) kernel ", eh, "x", ew);
  g.h_out = (ph - eh) / p.stride[0] + 1;
  g.w_out = (pw - ew) / p.stride[1] + 1;
  return g;
}

// Scratch of the Vulkan route: one unfolded tile and its product, each at most this size.
constexpr int64_t kDeviceTileBytes = int64_t{32} << 20;

// conv2d when its tensors are on a Vulkan device (false: they are on the CPU). Per sample and
// per tile of output pixels: vulkan::im2col unfolds the tile into cols [P, C_in * kh * kw] in the
// order the weight [C_out, C_in, kh, kw] flattens to, vulkan::matmul multiplies it by the weight
// rows as they are (f32, f16 or bf16), and vulkan::transpose writes the [P, C_out] product into
// y [C_out, H_out * W_out] with the bias.
bool conv2d_on_device(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  const Device device = op_device("conv2d", {{"x", &x}, {"w", &w}, {"y", &y}, {"bias", p.bias}});
  if (device.kind != DeviceKind::Vulkan) return false;
  check(p.groups == 1, "[conv2d] groups = ", p.groups, " on ", device.name(),
        " (the Vulkan route runs groups = 1 only)");
  const bool batched = x.dim() == 4;
  const int64_t n = batched ? x.size(0) : 1;
  const Tensor x0 = batched ? x.slice(0, 0, 1).reshape({x.size(1), x.size(2), x.size(3)}) : x;
  const Geometry g = geometry(x0, w.shape(), p);
  const Dims want = batched ? Dims{n, g.c_out, g.h_out, g.w_out} : Dims{g.c_out, g.h_out, g.w_out};
  check(y.defined() && y.dtype() == DType::F32 && y.shape() == want && y.is_contiguous() &&
            x.is_contiguous() && w.is_contiguous(),
        "[conv2d] x, w and y must be contiguous and y f32 ", want.str(), ", got ", x.str(), ", ",
        w.str(), " and ", y.defined() ? y.str() : std::string("undefined"));
  check(w.dtype() == DType::F32 || w.dtype() == DType::F16 || w.dtype() == DType::BF16,
        "[conv2d] weight type ", dtype_name(w.dtype()), " is not supported (f32, f16, bf16)");
  const vulkan::BufferRef bias = optional_device_vector("conv2d", "bias", p.bias, g.c_out);
  const int64_t kk = g.c_in * g.kh * g.kw, hw = g.h_out * g.w_out;
  const int64_t tile = std::clamp<int64_t>(kDeviceTileBytes / (std::max(kk, g.c_out) * 4), 1, hw);
  const Tensor cols = empty({tile, kk}, DType::F32, device);
  const Tensor out = empty({tile, g.c_out}, DType::F32, device);
  const vulkan::BufferRef xb = vulkan::buffer_of(x), yb = vulkan::buffer_of(y);
  for (int64_t s = 0; s < n; ++s) {
    const vulkan::BufferRef xs{xb.buffer,
                               xb.offset + static_cast<size_t>(s * g.c_in * g.h * g.w) * 4};
    for (int64_t p0 = 0; p0 < hw; p0 += tile) {
      const int64_t np = std::min(tile, hw - p0);
      vulkan::im2col({.x = xs,
                      .c = g.c_in,
                      .h = g.h,
                      .w = g.w,
                      .kh = g.kh,
                      .kw = g.kw,
                      .stride_h = p.stride[0],
                      .stride_w = p.stride[1],
                      .pad_h = p.padding[0],
                      .pad_w = p.padding[1],
                      .dilation_h = p.dilation[0],
                      .dilation_w = p.dilation[1],
                      .w_out = g.w_out,
                      .p0 = p0,
                      .np = np,
                      .cols = vulkan::buffer_of(cols)});
      vulkan::matmul({.m = np,
                      .n = g.c_out,
                      .k = kk,
                      .x = vulkan::buffer_of(cols),
                      .ldx = kk,
                      .w_type = w.dtype(),
                      .w = vulkan::buffer_of(w),
                      .ldw = dtype_row_bytes(w.dtype(), kk),
                      .y = vulkan::buffer_of(out),
                      .ldy = g.c_out});
      const vulkan::BufferRef ys{yb.buffer,
                                 yb.offset + static_cast<size_t>(s * g.c_out * hw + p0) * 4};
      vulkan::transpose(vulkan::buffer_of(out), g.c_out, bias, ys, hw, np, g.c_out);
    }
  }
  return true;
}

}  // namespace

Dims conv2d_output_shape(const Tensor& x, const Dims& w_shape, const Conv2dParams& params) {
  if (x.defined() && x.dim() == 4) {
    const Geometry g =
        geometry(x.slice(0, 0, 1).reshape({x.size(1), x.size(2), x.size(3)}), w_shape, params);
    return {x.size(0), g.c_out, g.h_out, g.w_out};
  }
  const Geometry g = geometry(x, w_shape, params);
  return {g.c_out, g.h_out, g.w_out};
}

Dims conv2d_output_shape(const Tensor& x, const Tensor& w, const Conv2dParams& params) {
  check(w.defined(), "[conv2d] undefined tensor argument");
  return conv2d_output_shape(x, w.shape(), params);
}

namespace {

// Output pixels per im2col tile: the unfolded tile stays near 8 MiB whatever the image size (a
// 1024 px SDXL image would otherwise unfold its 128x128 level-0 convs into 190 MB), and is still
// hundreds of rows, which the matmul kernels run at full speed.
constexpr int64_t kTileBytes = int64_t{8} << 20;

// w [C_out, cg, kh, kw] -> [C_out, kh, kw, cg] for output channels [o0, o1) (the element moved
// as it is, so f16 and bf16 stay 2-byte for the matmul kernels), so each (ky, kx) tap reads cg
// contiguous channels. One output channel's cg x taps values stay in L1; writes are in order.
void reorder_channels_last(const Tensor& w, const Tensor& out, int64_t o0, int64_t o1) {
  const int64_t cg = w.size(1), taps = w.size(2) * w.size(3), kk = cg * taps;
  auto move = [&](const auto* src, auto* dst) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t c = 0; c < cg; ++c) dst[o * kk + t * cg + c] = src[(o * cg + c) * taps + t];
  };
  if (w.dtype() == DType::F32)
    move(w.data<float>(), out.data<float>());
  else
    move(w.data<uint16_t>(), out.data<uint16_t>());
}

// Unfolds output pixels [p0, p0 + rows) of a channels-last input xt [H, W, C_in]: row r holds the
// taps (ky, kx) in order, each the cg channels from c0 (zeros outside the image, before it by
// `padding` and after it up to the geometry's size).
void unfold_tile(const float* xt, const Geometry& g, const Conv2dParams& p, int64_t c0, int64_t cg,
                 int64_t p0, int64_t rows, float* cols, ThreadPool& pool) {
  const int64_t kk = cg * g.kh * g.kw;
  pool.parallel_chunks(rows, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t oy = (p0 + r) / g.w_out, ox = (p0 + r) % g.w_out;
      float* row = cols + r * kk;
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
          float* dst = row + (ky * g.kw + kx) * cg;
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
            std::fill_n(dst, cg, 0.f);
          else
            std::copy_n(xt + (iy * g.w + ix) * g.c_in + c0, cg, dst);
        }
      }
    }
  });
}

void check_weight(const Tensor& w) {
  check(w.defined() && w.dim() == 4, "[conv2d] w must be [C_out, C_in / groups, kh, kw], got ",
        w.defined() ? w.shape().str() : std::string("undefined"));
  check(w.is_contiguous(), "[conv2d] w must be contiguous");
  check(w.device() == Device::cpu(), "[conv2d] a weight on ", w.device().name(),
        " needs x and y there too (the Vulkan route); this one is the CPU's");
  // Block-quantized types pack along the last dimension (kw), which no block size divides.
  check(w.dtype() == DType::F32 || w.dtype() == DType::F16 || w.dtype() == DType::BF16,
        "[conv2d] weight type ", dtype_name(w.dtype()), " is not supported (f32, f16, bf16)");
}

}  // namespace

Conv2dWeight conv2d_prepare_weight(const Tensor& w, ThreadPool* pool) {
  check_weight(w);
  const int64_t co = w.size(0), kk = w.size(1) * w.size(2) * w.size(3);
  if (w.size(2) * w.size(3) == 1) return {.w = w.reshape({co, kk}), .shape = w.shape()};
  Tensor out = Tensor::empty({co, kk}, w.dtype());
  if (pool)
    pool->parallel_chunks(co, 4,
                          [&](int64_t b, int64_t e, int) { reorder_channels_last(w, out, b, e); });
  else
    reorder_channels_last(w, out, 0, co);
  return {.w = out, .shape = w.shape()};
}

int64_t conv2d_scratch_bytes(const Dims& x_shape, const Dims& w_shape, DType w_dtype,
                             const Conv2dParams& p, bool prepared) {
  check(x_shape.size() == 3 || x_shape.size() == 4, "[conv2d] x must be [C_in, H, W] or [N, ",
        "C_in, H, W], got ", x_shape.str());
  check(w_shape.size() == 4, "[conv2d] w must be [C_out, C_in / groups, kh, kw], got ",
        w_shape.str());
  const int o = x_shape.size() == 4 ? 1 : 0;
  const int64_t c_in = x_shape[o], h = x_shape[o + 1], w = x_shape[o + 2];
  const int64_t c_out = w_shape[0], kk = w_shape[1] * w_shape[2] * w_shape[3];
  const int64_t eh = p.dilation[0] * (w_shape[2] - 1) + 1,
                ew = p.dilation[1] * (w_shape[3] - 1) + 1;
  const int64_t hw = ((h + 2 * p.padding[0] - eh) / p.stride[0] + 1) *
                     ((w + 2 * p.padding[1] - ew) / p.stride[1] + 1);
  // As conv2d below: the weight in its own element size, xt, cols and out in f32.
  const int64_t tile = conv2d_tile_rows(kk, hw);
  const int64_t taps = w_shape[2] * w_shape[3];
  const int64_t weight = taps == 1 || prepared ? 0 : c_out * kk * (w_dtype == DType::F32 ? 4 : 2);
  return weight + (h * w * c_in + tile * kk + tile * (c_out / p.groups)) * 4;
}

int64_t conv2d_tile_rows(int64_t kk, int64_t hw) {
  return std::min(std::max<int64_t>(kTileBytes / (kk * 4), 16), hw);
}

void conv2d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const Conv2dParams& p) {
  if (conv2d_on_device(x, w, y, p)) return;
  conv2d(x, conv2d_prepare_weight(w, &pool), y, pool, p);
}

void conv2d(const Tensor& x, const Conv2dWeight& w, const Tensor& y, ThreadPool& pool,
            const Conv2dParams& p) {
  check(x.defined() && (x.dim() == 3 || x.dim() == 4), "[conv2d] x must be [C_in, H, W] or [N, ",
        "C_in, H, W], got ", x.defined() ? x.shape().str() : std::string("undefined"));
  check(w.w.defined() && w.shape.size() == 4 && w.w.dim() == 2 && w.w.size(0) == w.shape[0] &&
            w.w.size(1) == w.shape[1] * w.shape[2] * w.shape[3],
        "[conv2d] the weight was not made by conv2d_prepare_weight");
  if (x.dim() == 4) {
    check(y.defined() && y.dim() == 4 && y.size(0) == x.size(0), "[conv2d] y must be [", x.size(0),
          ", C_out, H_out, W_out] for x ", x.shape().str());
    const Tensor xc = x.contiguous();
    for (int64_t n = 0; n < x.size(0); ++n)
      conv2d(xc.slice(0, n, n + 1).reshape({x.size(1), x.size(2), x.size(3)}), w,
             y.slice(0, n, n + 1).reshape({y.size(1), y.size(2), y.size(3)}), pool, p);
    return;
  }
  const Geometry g = geometry(x, w.shape, p);
  check(y.defined() && y.dtype() == DType::F32 && y.shape() == Dims{g.c_out, g.h_out, g.w_out} &&
            y.is_contiguous(),
        "[conv2d] y must be a contiguous f32 [", g.c_out, ", ", g.h_out, ", ", g.w_out, "], got ",
        y.defined() ? y.str() : std::string("undefined"));
  if (p.bias)
    check(p.bias->defined() && p.bias->dtype() == DType::F32 && p.bias->numel() == g.c_out &&
              p.bias->is_contiguous(),
          "[conv2d] bias must be a contiguous f32 [", g.c_out, "]");
  for (const Tensor* t : {&x, &y})
    check(t->device() == Device::cpu(), "[conv2d] a prepared (CPU) weight with a tensor on ",
          t->device().name(), ": pass the device weight itself");
  const int64_t cg = g.c_in / p.groups, og = g.c_out / p.groups;
  const int64_t kk = cg * g.kh * g.kw, hw = g.h_out * g.w_out;
  const Tensor& wc = w.w;  // [C_out, (ky, kx, c)]
  // x channels last: xt [H, W, C_in], so each tap of an output pixel is cg contiguous floats.
  Tensor xt = Tensor::empty({g.h, g.w, g.c_in}, DType::F32);
  {
    const Tensor xc = x.contiguous();
    const float* src = xc.data<float>();
    float* dst = xt.data<float>();
    const int64_t plane = g.h * g.w;
    pool.parallel_chunks(plane, 256, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t c = 0; c < g.c_in; ++c) dst[i * g.c_in + c] = src[c * plane + i];
    });
  }
  const int64_t tile = std::clamp<int64_t>(kTileBytes / (kk * 4), 16, hw);
  Tensor cols = Tensor::empty({tile, kk}, DType::F32);  // one tile of unfolded pixels
  Tensor out = Tensor::empty({tile, og}, DType::F32);
  const float* bias = p.bias ? p.bias->data<float>() : nullptr;
  for (int64_t grp = 0; grp < p.groups; ++grp) {
    const Tensor wg = wc.slice(0, grp * og, (grp + 1) * og);
    for (int64_t p0 = 0; p0 < hw; p0 += tile) {
      const int64_t rows = std::min(tile, hw - p0);
      unfold_tile(xt.data<float>(), g, p, grp * cg, cg, p0, rows, cols.data<float>(), pool);
      const Tensor ct = cols.slice(0, 0, rows), ot = out.slice(0, 0, rows);
      matmul(ct, wg, ot, pool);
      // out [rows, og] -> y [og, hw] at column p0 (+ bias), one output channel per item.
      pool.parallel_chunks(og, 8, [&](int64_t b, int64_t e, int) {
        for (int64_t o = b; o < e; ++o) {
          const int64_t co = grp * og + o;
          const float bv = bias ? bias[co] : 0.f;
          float* dst = y.data<float>() + co * hw + p0;
          const float* src = out.data<float>() + o;
          for (int64_t r = 0; r < rows; ++r) dst[r] = src[r * og] + bv;
        }
      });
    }
  }
}

void conv2d_nhwc(const Tensor& x, const Conv2dWeight& w, const Tensor& y, ThreadPool& pool,
                 const Conv2dParams& p) {
  check(x.defined() && x.dim() == 3 && x.is_contiguous() && x.device() == Device::cpu(),
        "[conv2d_nhwc] x must be a contiguous [H, W, C_in] tensor on the CPU, got ",
        x.defined() ? x.str() : std::string("undefined"));
  check(p.groups == 1, "[conv2d_nhwc] groups = ", p.groups, " (only 1 is supported)");
  check(w.w.defined() && w.shape.size() == 4 && w.w.dim() == 2,
        "[conv2d_nhwc] the weight was not made by conv2d_prepare_weight");
  const Geometry g = geometry(x.permute({2, 0, 1}), w.shape, p);
  check(y.defined() && y.dtype() == DType::F32 && y.shape() == Dims{g.h_out, g.w_out, g.c_out} &&
            y.is_contiguous() && y.device() == Device::cpu(),
        "[conv2d_nhwc] y must be a contiguous f32 [", g.h_out, ", ", g.w_out, ", ", g.c_out,
        "] on the CPU, got ", y.defined() ? y.str() : std::string("undefined"));
  if (p.bias)
    check(p.bias->defined() && p.bias->dtype() == DType::F32 && p.bias->numel() == g.c_out &&
              p.bias->is_contiguous(),
          "[conv2d_nhwc] bias must be a contiguous f32 [", g.c_out, "]");
  const int64_t kk = g.c_in * g.kh * g.kw, hw = g.h_out * g.w_out;
  const MatmulParams mp{.bias = p.bias};
  const Tensor y2 = y.reshape({hw, g.c_out});
  // A 1x1 stride-1 convolution without padding is the product itself: no copy at all.
  if (kk == g.c_in && hw == g.h * g.w) {
    matmul(x.reshape({hw, g.c_in}), w.w, y2, pool, mp);
    return;
  }
  const int64_t tile = std::clamp<int64_t>(kTileBytes / (kk * 4), 16, hw);
  Tensor cols = Tensor::empty({tile, kk}, DType::F32);
  for (int64_t p0 = 0; p0 < hw; p0 += tile) {
    const int64_t rows = std::min(tile, hw - p0);
    unfold_tile(x.data<float>(), g, p, 0, g.c_in, p0, rows, cols.data<float>(), pool);
    matmul(cols.slice(0, 0, rows), w.w, y2.slice(0, p0, p0 + rows), pool, mp);
  }
}

void conv1d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const Conv1dParams& p) {
  check(x.defined() && w.defined() && y.defined(), "[conv1d] undefined tensor argument");
  check(x.dim() == 2 && w.dim() == 3 && y.dim() == 2, "[conv1d] x must be [C_in, L], w [C_out, ",
        "C_in / groups, k] and y [C_out, L_out], got ", x.shape().str(), ", ", w.shape().str(),
        ", ", y.shape().str());
  check(w.is_contiguous() && y.is_contiguous(), "[conv1d] w and y must be contiguous");
  const Tensor x2 = x.contiguous().reshape({x.size(0), 1, x.size(1)});
  const Tensor w2 = w.reshape({w.size(0), w.size(1), 1, w.size(2)});
  const Tensor y2 = y.reshape({y.size(0), 1, y.size(1)});
  conv2d(x2, w2, y2, pool,
         {.stride = {1, p.stride},
          .padding = {0, p.padding},
          .dilation = {1, p.dilation},
          .groups = p.groups,
          .bias = p.bias});
}

}  // namespace eight::ops
