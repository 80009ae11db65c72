#pragma once
// Convolutions (channels first) as im2col + ops::matmul, so the product runs on the fast matmul
// kernels; bench/bench_diffusion.cpp measures this route against a direct convolution (at SDXL's
// 320 x 64 x 64, 3x3: ~60 GFLOP/s against ~8 on the 2-core AVX-512 dev machine). The input is
// first made channels last ([H, W, C_in]) and the weight [C_out, kh, kw, C_in / groups], so each
// kernel tap of an output pixel unfolds as one contiguous copy; pixels are unfolded a tile of
// about 8 MiB at a time, in parallel on the pool. Weights: f32, f16 or bf16, read by the matmul
// kernels as they are. Scratch: the channels-last input, one tile, and the reordered weight (none
// with a Conv2dWeight prepared once).
// On a Vulkan device (x, w, y and the bias there; groups = 1): tiles of up to 32 MiB unfolded in
// the weight's own order (no reordered copy), vulkan::matmul, then a transpose adding the bias.
//
//   // x: [C_in, H, W] or [N, C_in, H, W] f32, w: [C_out, C_in / groups, kh, kw],
//   // y: [C_out, H_out, W_out] (or [N, ...]) f32
//   ops::conv2d(x, w, y, pool, {.stride = {2, 2}, .padding = {1, 1}, .bias = &b});
//   // x: [C_in, L], w: [C_out, C_in / groups, k], y: [C_out, L_out]
//   ops::conv1d(x, w, y, pool, {.stride = 2, .padding = 1});
//
// H_out = (H + 2 * pad - dilation * (kh - 1) - 1) / stride + 1 (PyTorch's rule), with pad + pad_end
// in place of 2 * pad when padding_end is set.
#include <array>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::ops {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1};   // (h, w)
  std::array<int64_t, 2> padding{0, 0};  // zeros on both sides
  // Zeros after the input (bottom, right) when they differ from `padding`: -1 means the same.
  // diffusers' Downsample2D with padding=0 pads (0, 1, 0, 1): {.padding_end = {1, 1}}.
  std::array<int64_t, 2> padding_end{-1, -1};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  const Tensor* bias = nullptr;  // [C_out] f32
};
void conv2d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const Conv2dParams& params = {});

// A weight reordered once for conv2d, for models that call a convolution many times: the
// [C_out, C_in / groups, kh, kw] weight in the (ky, kx, c) order of the unfolded rows, which
// conv2d(x, Tensor w, ...) otherwise makes on every call (a tenth of an SDXL UNet step at 256 px).
// A 1x1 weight is a view of the original; a larger one a new tensor of the same type and size.
//
//   const ops::Conv2dWeight cw = ops::conv2d_prepare_weight(w, &pool);   // at load
//   ops::conv2d(x, cw, y, pool, {.padding = {1, 1}});                    // per call
struct Conv2dWeight {
  Tensor w;    // [C_out, kh * kw * C_in / groups], f32, f16 or bf16
  Dims shape;  // the original [C_out, C_in / groups, kh, kw]
  bool defined() const { return w.defined(); }
};
// pool: nullptr runs on the calling thread.
Conv2dWeight conv2d_prepare_weight(const Tensor& w, ThreadPool* pool = nullptr);
void conv2d(const Tensor& x, const Conv2dWeight& w, const Tensor& y, ThreadPool& pool,
            const Conv2dParams& params = {});

// Channels last, for networks that stay channels last from layer to layer (DeepBooru's ResNet):
// x [H, W, C_in] f32 contiguous, y [H_out, W_out, C_out]; groups = 1, CPU only. The product is
// written straight into y (no transposes); a 1x1 stride-1 convolution is one matmul on x itself,
// others unfold tiles of about 8 MiB as conv2d does. padding_end gives TensorFlow's asymmetric
// "same" padding ({.stride = {2, 2}, .padding = {0, 0}, .padding_end = {1, 1}} for a 3x3/2).
void conv2d_nhwc(const Tensor& x, const Conv2dWeight& w, const Tensor& y, ThreadPool& pool,
                 const Conv2dParams& params = {});

// The output shape conv2d expects for this input and weight (or weight shape).
Dims conv2d_output_shape(const Tensor& x, const Tensor& w, const Conv2dParams& params = {});
Dims conv2d_output_shape(const Tensor& x, const Dims& w_shape, const Conv2dParams& params = {});
// The most bytes conv2d holds at once while it runs (the reordered weight unless `prepared`, the
// channels-last input, one unfolded tile and its product; a batched x runs one sample at a time),
// for an input of x_shape ([C_in, H, W] or [N, C_in, H, W]) and a weight of w_shape and w_dtype.
// Models add it to their activation budgets.
int64_t conv2d_scratch_bytes(const Dims& x_shape, const Dims& w_shape, DType w_dtype,
                             const Conv2dParams& params = {}, bool prepared = false);
// The rows of the unfolded tiles conv2d and conv2d_nhwc multiply (kk = C_in/groups · kh · kw
// values per output pixel, hw output pixels): the planners' matmul scratch for the product.
int64_t conv2d_tile_rows(int64_t kk, int64_t hw);

struct Conv1dParams {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  const Tensor* bias = nullptr;
};
void conv1d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
            const Conv1dParams& params = {});

// Transposed 1-D convolution (PyTorch's ConvTranspose1d, groups 1, no padding or output
// padding: models trim the result themselves, as SEANet does):
//   y[o, t * stride + j * dilation] += sum_i x[i, t] * w[i, o, j]   (+ bias[o])
// x: [C_in, L] f32, w: [C_in, C_out, k] f32 (PyTorch's layout), y: [C_out, L_out] f32 with
// L_out = (L - 1) * stride + dilation * (k - 1) + 1. Runs as one matmul per tile of input frames
// ([frames, C_in] x [C_in, C_out * k]) and an overlap-add, in parallel over output channels.
// Scratch: the transposed weight, the transposed input and one product tile of about 8 MiB.
struct ConvTranspose1dParams {
  int64_t stride = 1, dilation = 1;
  const Tensor* bias = nullptr;  // [C_out] f32
};
Dims conv_transpose1d_output_shape(const Tensor& x, const Tensor& w,
                                   const ConvTranspose1dParams& params = {});
void conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& y, ThreadPool& pool,
                      const ConvTranspose1dParams& params = {});

}  // namespace eight::ops
