// The entries of the image kernels the SDXL UNet and VAE need (group norm, nearest upsampling,
// the two halves of a convolution around matmul): bounds checks, push constants, workgroups.
#include <cstdint>

#include "backend/vulkan/kernel_dispatch.h"
#include "core/error.h"

namespace eight::vulkan {

using detail::device_of;
using detail::grid;
using detail::need_f32;
using detail::run;
using detail::u32;

void group_norm(BufferRef x, BufferRef w, BufferRef b, BufferRef y, int64_t batch, int64_t channels,
                int64_t spatial, int64_t groups, float eps, bool silu) {
  const char* op = "group_norm";
  check(batch >= 0 && spatial >= 0 && groups > 0 && channels % groups == 0,
        "[vulkan] group_norm: ", channels, " channels do not split into ", groups, " groups");
  if (batch == 0 || channels == 0 || spatial == 0) return;
  const uint64_t total = static_cast<uint64_t>(batch * channels) * static_cast<uint64_t>(spatial);
  need_f32(op, "x", x, total);
  need_f32(op, "y", y, total);
  if (w.buffer) need_f32(op, "w", w, static_cast<uint64_t>(channels));
  if (b.buffer) need_f32(op, "b", b, static_cast<uint64_t>(channels));
  const int64_t cg = channels / groups;
  u32(op, cg * spatial);  // one group's values are indexed in 32 bits
  struct {
    uint32_t x_off, w_off, b_off, y_off, tasks, groups, cg, spatial, has_w, has_b, silu;
    float eps;
  } push{0,
         0,
         0,
         0,
         u32(op, batch * groups),
         u32(op, groups),
         u32(op, cg),
         u32(op, spatial),
         w.buffer ? 1u : 0u,
         b.buffer ? 1u : 0u,
         silu ? 1u : 0u,
         eps};
  const BufferRef wb = w.buffer ? w : x, bb = b.buffer ? b : x;  // unused bindings
  const auto g = grid(static_cast<uint64_t>(batch * groups));
  run(device_of(op, x), "group_norm",
      {{x.buffer, x.offset}, {wb.buffer, wb.offset}, {bb.buffer, bb.offset}, {y.buffer, y.offset}},
      push, g[0], g[1]);
}

void upsample_nearest2x(BufferRef x, BufferRef y, int64_t planes, int64_t h, int64_t w) {
  const char* op = "upsample_nearest2x";
  check(planes >= 0 && h >= 0 && w >= 0, "[vulkan] upsample_nearest2x: ", planes, " planes of ", h,
        "x", w);
  const uint64_t in = static_cast<uint64_t>(planes * h) * static_cast<uint64_t>(w);
  if (in == 0) return;
  need_f32(op, "x", x, in);
  need_f32(op, "y", y, 4 * in);
  struct {
    uint32_t x_off, y_off, total, h, w;
  } push{0, 0, u32(op, static_cast<int64_t>(4 * in)), u32(op, h), u32(op, w)};
  const auto g = grid((4 * in + 127) / 128);  // 128: upsample_nearest2x.comp
  run(device_of(op, x), "upsample_nearest2x", {{x.buffer, x.offset}, {y.buffer, y.offset}}, push,
      g[0], g[1]);
}

void im2col(const Im2colArgs& a) {
  const char* op = "im2col";
  check(a.c > 0 && a.h > 0 && a.w > 0 && a.kh > 0 && a.kw > 0 && a.stride_h > 0 && a.stride_w > 0 &&
            a.pad_h >= 0 && a.pad_w >= 0 && a.dilation_h > 0 && a.dilation_w > 0 && a.w_out > 0 &&
            a.p0 >= 0 && a.np >= 0,
        "[vulkan] im2col: x [", a.c, ", ", a.h, ", ", a.w, "], kernel ", a.kh, "x", a.kw,
        ", stride ", a.stride_h, "x", a.stride_w, ", padding ", a.pad_h, "x", a.pad_w,
        ", dilation ", a.dilation_h, "x", a.dilation_w, ", ", a.w_out, " output columns, pixels ",
        a.p0, " + ", a.np);
  if (a.np == 0) return;
  const int64_t kk = a.c * a.kh * a.kw;
  need_f32(op, "x", a.x, static_cast<uint64_t>(a.c * a.h) * static_cast<uint64_t>(a.w));
  need_f32(op, "cols", a.cols, static_cast<uint64_t>(a.np) * static_cast<uint64_t>(kk));
  // The last pixel's furthest tap, as the shader computes it, stays within 32 bits.
  const int64_t last = a.p0 + a.np - 1;
  u32(op, (last / a.w_out) * a.stride_h + (a.kh - 1) * a.dilation_h + a.h);
  u32(op, (last % a.w_out) * a.stride_w + (a.kw - 1) * a.dilation_w + a.w);
  struct {
    uint32_t x_off, c_off, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, w_out, p0,
        np, kk;
  } push{0,
         0,
         u32(op, a.h),
         u32(op, a.w),
         u32(op, a.kh),
         u32(op, a.kw),
         u32(op, a.stride_h),
         u32(op, a.stride_w),
         u32(op, a.pad_h),
         u32(op, a.pad_w),
         u32(op, a.dilation_h),
         u32(op, a.dilation_w),
         u32(op, a.w_out),
         u32(op, a.p0),
         u32(op, a.np),
         u32(op, kk)};
  const uint64_t total = static_cast<uint64_t>(a.np) * static_cast<uint64_t>(kk);
  u32(op, static_cast<int64_t>(total));
  const auto g = grid((total + 127) / 128);  // 128: im2col.comp
  run(device_of(op, a.x), "im2col", {{a.x.buffer, a.x.offset}, {a.cols.buffer, a.cols.offset}},
      push, g[0], g[1]);
}

void transpose(BufferRef x, int64_t ldx, BufferRef bias, BufferRef y, int64_t ldy, int64_t rows,
               int64_t cols) {
  const char* op = "transpose";
  check(rows >= 0 && cols >= 0 && ldx >= cols && ldy >= rows, "[vulkan] transpose: ", rows, "x",
        cols, " with row strides ", ldx, " (x) and ", ldy, " (y)");
  if (rows == 0 || cols == 0) return;
  need_f32(op, "x", x, static_cast<uint64_t>((rows - 1) * ldx + cols));
  need_f32(op, "y", y, static_cast<uint64_t>((cols - 1) * ldy + rows));
  if (bias.buffer) need_f32(op, "bias", bias, static_cast<uint64_t>(cols));
  struct {
    uint32_t x_off, b_off, y_off, rows, cols, ldx, ldy, has_bias;
  } push{0, 0, 0, u32(op, rows), u32(op, cols), u32(op, ldx), u32(op, ldy), bias.buffer ? 1u : 0u};
  const BufferRef bb = bias.buffer ? bias : x;
  constexpr int64_t kTile = 32;  // transpose.comp
  run(device_of(op, x), "transpose",
      {{x.buffer, x.offset}, {bb.buffer, bb.offset}, {y.buffer, y.offset}}, push,
      u32(op, (cols + kTile - 1) / kTile), u32(op, (rows + kTile - 1) / kTile));
}

}  // namespace eight::vulkan
