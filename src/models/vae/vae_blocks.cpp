// AutoencoderKL's blocks (diffusers' resnet.py ResnetBlock2D, unet_2d_blocks.py UNetMidBlock2D,
// DownEncoderBlock2D, UpDecoderBlock2D; vae.py Encoder and Decoder), one line per sub-layer, and
// beside each a bill of what it allocates, step by step, for the planner's upper bound.
//
// Activations are [N, C, H, W] f32. At 1024 x 1024 the decoder's last levels hold 128 and 256
// channels at full resolution (0.5 and 1 GiB per tensor), so every intermediate is dropped as
// soon as the next step has consumed it.
#include <algorithm>
#include <cmath>
#include <utility>

#include "backend/vulkan/vulkan.h"
#include "models/vae/vae_internal.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/softmax.h"
#include "ops/transpose.h"

namespace eight::vae {
namespace {

constexpr float kEps = 1e-6f;  // every GroupNorm of the VAE (resnet_eps, Attention's eps)

void norm(const GroupNorm& g, const Tensor& x, const Tensor& y, int64_t groups, bool silu,
          ThreadPool& pool, int64_t channel_dim = 1) {
  ops::group_norm(x, y,
                  {.groups = groups,
                   .weight = &g.weight,
                   .bias = &g.bias,
                   .eps = kEps,
                   .silu = silu,
                   .channel_dim = channel_dim,
                   .pool = &pool});
}

ops::Conv2dParams conv_params(const Conv& c, int64_t stride) {
  // Stride 2 is Downsample2D with padding=0: F.pad(x, (0, 1, 0, 1)) then a 3x3 conv without
  // padding; otherwise "same" padding (3x3: 1, 1x1: 0).
  if (stride == 2)
    return {.stride = {2, 2}, .padding = {0, 0}, .padding_end = {1, 1}, .bias = &c.bias};
  const int64_t pad = c.k() / 2;
  return {.padding = {pad, pad}, .bias = &c.bias};
}

// x: [R, S] -> a new contiguous [S, R] on x's device.
Tensor transposed(const Tensor& x, ThreadPool& pool) {
  Tensor y = ops::empty({x.size(1), x.size(0)}, DType::F32, x.device());
  ops::transpose(x, y, &pool);
  return y;
}

// Queries per block of attention_rows: the block's scores [rows, T] stay near 16 MiB.
int64_t score_rows(int64_t t) {
  return std::clamp<int64_t>((int64_t{16} << 20) / (t * 4), 16, t);
}

// The single-head attention of the middle block, added to x in place (residual_connection).
// x: [N, C, H, W]; tokens are the H * W pixels of one sample, each a C-wide query, key and value.
// Every step runs on x's device.
void mid_attention(const MidAttention& a, const Tensor& x, int64_t groups, ThreadPool& pool) {
  const Device dev = x.device();
  const int64_t c = x.size(1), t = x.size(2) * x.size(3);
  for (int64_t n = 0; n < x.size(0); ++n) {
    const Tensor xn = x.select(0, n).reshape({c, t});  // [C, T]
    Tensor g = ops::empty({c, t}, DType::F32, dev);
    norm(a.norm, xn, g, groups, false, pool, 0);
    Tensor gt = transposed(g, pool);  // tokens: [T, C]
    g = Tensor();
    Tensor q = ops::matmul(gt, a.q.weight, pool, {.bias = &a.q.bias});  // to_q: [T, C]
    Tensor k = ops::matmul(gt, a.k.weight, pool, {.bias = &a.k.bias});  // to_k
    Tensor v = ops::matmul(gt, a.v.weight, pool, {.bias = &a.v.bias});  // to_v
    gt = Tensor();
    Tensor o = ops::empty({t, c}, DType::F32, dev);
    // softmax(q k^T / sqrt(C)) v, one head. On a GPU ops::attention takes its chunked route (the
    // same blocks of scores through matmul and softmax, V transposed inside).
    if (dev.kind == DeviceKind::CPU) {
      Tensor vt = transposed(v, pool);  // [C, T]
      v = Tensor();
      attention_rows(q, k, vt, o, pool, score_rows(t));
    } else {
      ops::attention(q.reshape({t, 1, c}), k.reshape({t, 1, c}), v.reshape({t, 1, c}),
                     o.reshape({t, 1, c}), pool, {.causal = false});
    }
    q = k = v = Tensor();
    Tensor out = ops::matmul(o, a.out.weight, pool, {.bias = &a.out.bias});  // to_out.0: [T, C]
    o = Tensor();
    const Tensor back = transposed(out, pool);  // [C, T]
    out = Tensor();
    ops::add(xn, back, xn);
  }
}

}  // namespace

void attention_rows(const Tensor& q, const Tensor& k, const Tensor& vt, const Tensor& out,
                    ThreadPool& pool, int64_t rows) {
  const int64_t t = q.size(0), c = q.size(1), tk = k.size(0);
  check(rows > 0 && k.size(1) == c && vt.size(0) == c && vt.size(1) == tk && out.size(0) == t &&
            out.size(1) == c,
        "[vae] attention_rows: q ", q.shape().str(), ", k ", k.shape().str(), ", vt ",
        vt.shape().str(), " and out ", out.shape().str(), " do not fit together");
  const float scale = 1.f / std::sqrt(static_cast<float>(c));
  Tensor scores = Tensor::empty({std::min(rows, t), tk}, DType::F32);
  for (int64_t r0 = 0; r0 < t; r0 += rows) {
    const int64_t r1 = std::min(t, r0 + rows);
    const Tensor s = scores.slice(0, 0, r1 - r0);
    ops::matmul(q.slice(0, r0, r1), k, s, pool);     // q k^T: [rows, T]
    ops::softmax(s, s, {.scale = scale});            // rows of weights
    ops::matmul(s, vt, out.slice(0, r0, r1), pool);  // weights v: [rows, C]
  }
}

namespace {

// ---- Bills: what the code above allocates, in the same order -------------------------------

int64_t f32_bytes(int64_t n) {
  return (n * 4 + 63) / 64 * 64;
}

// Live bytes beyond the block's input, and the most they reached.
struct Bill {
  int64_t live = 0, peak = 0;
  void add(int64_t b) {
    live += b;
    peak = std::max(peak, live);
  }
  void sub(int64_t b) { live -= b; }
  void spike(int64_t b) { peak = std::max(peak, live + b); }
};

struct Shape {
  int64_t n, c, h, w;
  int64_t bytes() const { return f32_bytes(n * c * h * w); }
};

// ops::conv2d (src/ops/conv.cpp) takes, per sample: the weight reordered channels last (its own
// dtype), the input channels last, one im2col tile of about 8 MiB and the tile's product.
int64_t conv_scratch(const Conv& c, const Shape& in, int64_t h_out, int64_t w_out) {
  const int64_t co = c.weight.size(0), kk = c.weight.size(1) * c.k() * c.k();
  const int64_t tile = std::clamp<int64_t>((int64_t{8} << 20) / (kk * 4), 16, h_out * w_out);
  const int64_t wbytes = (static_cast<int64_t>(c.weight.nbytes()) + 63) / 64 * 64;
  return wbytes + f32_bytes(in.c * in.h * in.w) + f32_bytes(tile * kk) + f32_bytes(tile * co);
}

Shape bill_conv(Bill& b, const Conv& c, const Shape& in, int64_t stride = 1) {
  const Shape out{in.n, c.weight.size(0), stride == 2 ? in.h / 2 : in.h,
                  stride == 2 ? in.w / 2 : in.w};
  b.add(out.bytes());
  b.spike(conv_scratch(c, in, out.h, out.w));
  return out;
}

Shape bill_resnet(Bill& b, const Resnet& r, const Shape& in) {
  b.add(in.bytes());  // h = norm1(x)
  const Shape h2 = bill_conv(b, r.conv1, in);
  b.sub(in.bytes());
  const Shape y = bill_conv(b, r.conv2, h2);
  b.sub(h2.bytes());
  if (r.shortcut.weight.defined()) {
    bill_conv(b, r.shortcut, in);
    b.sub(y.bytes());
  }
  return y;
}

Shape bill_mid(Bill& b, const MidBlock& m, const Shape& in) {
  Shape x = bill_resnet(b, m.first, in);
  if (m.has_attention) {
    const int64_t one = f32_bytes(x.c * x.h * x.w);  // [C, T] of one sample
    b.spike(4 * one);                                // gt, q, k, v (g is gone before q)
    b.spike(3 * one + one);                          // q, k, v, o
  }
  const Shape y = bill_resnet(b, m.second, x);
  b.sub(x.bytes());
  return y;
}

// Replaces `x` (live in b) by the result of a block billed by f.
template <class F>
Shape step(Bill& b, const Shape& x, F&& f) {
  const Shape y = f();
  b.sub(x.bytes());
  return y;
}

}  // namespace

Tensor conv(const Conv& c, const Tensor& x, ThreadPool& pool, int64_t stride) {
  const ops::Conv2dParams p = conv_params(c, stride);
  Tensor y = ops::empty(ops::conv2d_output_shape(x, c.weight, p), DType::F32, x.device());
  ops::conv2d(x, c.weight, y, pool, p);
  return y;
}

// ResnetBlock2D.forward: norm1, SiLU, conv1, norm2, SiLU, (dropout), conv2, + shortcut(x).
Tensor resnet(const Resnet& r, const Tensor& x, int64_t groups, ThreadPool& pool) {
  Tensor h = ops::empty(x.shape(), DType::F32, x.device());
  norm(r.norm1, x, h, groups, true, pool);
  Tensor h2 = conv(r.conv1, h, pool);
  h = Tensor();
  norm(r.norm2, h2, h2, groups, true, pool);
  Tensor y = conv(r.conv2, h2, pool);
  h2 = Tensor();
  if (r.shortcut.weight.defined())
    ops::add(y, conv(r.shortcut, x, pool), y);
  else
    ops::add(y, x, y);
  return y;
}

// UNetMidBlock2D.forward: resnets[0], attentions[0], resnets[1].
Tensor mid_block(const MidBlock& m, const Tensor& x, int64_t groups, ThreadPool& pool) {
  const Tensor h = resnet(m.first, x, groups, pool);
  if (m.has_attention) mid_attention(m.attention, h, groups, pool);
  return resnet(m.second, h, groups, pool);
}

// vae.py Encoder.forward, then AutoencoderKL's quant_conv.
Tensor run_encoder(const Model::Impl& m, const Tensor& images, ThreadPool& pool) {
  const Encoder& e = m.encoder;
  const int64_t groups = m.config.groups;
  Tensor x = conv(e.conv_in, ops::to_device(images.contiguous(), m.device), pool);
  for (const DownBlock& b : e.down) {
    for (const Resnet& r : b.resnets) x = resnet(r, x, groups, pool);
    if (b.downsample.weight.defined()) x = conv(b.downsample, x, pool, 2);
  }
  x = mid_block(e.mid, x, groups, pool);
  norm(e.norm_out, x, x, groups, true, pool);  // conv_norm_out, conv_act
  x = conv(e.conv_out, x, pool);
  if (e.quant_conv.weight.defined()) x = conv(e.quant_conv, x, pool);
  return ops::to_device(x, Device::cpu());
}

// AutoencoderKL's post_quant_conv, then vae.py Decoder.forward.
Tensor run_decoder(const Model::Impl& m, const Tensor& z, ThreadPool& pool) {
  const Decoder& d = m.decoder;
  const int64_t groups = m.config.groups;
  // On a device the work recorded so far is submitted after every block, as the UNet does: a
  // buffer freed while work is recorded is held until that work has run, so without submits every
  // buffer of the decoder would be held to its end (runtime/plan/diffusion.cpp replays this).
  const auto submit = [&] {
    if (m.device.kind == DeviceKind::Vulkan) vulkan::flush(m.device.index);
  };
  Tensor x = ops::to_device(z.contiguous(), m.device);
  if (d.post_quant_conv.weight.defined()) x = conv(d.post_quant_conv, x, pool);
  x = conv(d.conv_in, x, pool);
  submit();
  x = mid_block(d.mid, x, groups, pool);
  submit();
  for (const UpBlock& b : d.up) {
    for (const Resnet& r : b.resnets) {
      x = resnet(r, x, groups, pool);
      submit();
    }
    if (b.upsample.weight.defined()) {  // Upsample2D: nearest 2x, then conv
      Tensor u =
          ops::empty({x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, DType::F32, x.device());
      ops::upsample_nearest2x(x, u);
      x = std::move(u);  // the low-resolution input is freed before the conv
      x = conv(b.upsample, x, pool);
      submit();
    }
  }
  norm(d.norm_out, x, x, groups, true, pool);  // conv_norm_out, conv_act
  return ops::to_device(conv(d.conv_out, x, pool), Device::cpu());
}

int64_t encoder_peak_bytes(const Model::Impl& m, int64_t n, int64_t h, int64_t w) {
  const Encoder& e = m.encoder;
  Bill b;
  Shape x{n, m.config.in_channels, h, w};
  b.add(x.bytes());  // images.contiguous() (a tile is a strided view)
  x = step(b, x, [&] { return bill_conv(b, e.conv_in, x); });
  for (const DownBlock& d : e.down) {
    for (const Resnet& r : d.resnets) x = step(b, x, [&] { return bill_resnet(b, r, x); });
    if (d.downsample.weight.defined())
      x = step(b, x, [&] { return bill_conv(b, d.downsample, x, 2); });
  }
  x = step(b, x, [&] { return bill_mid(b, e.mid, x); });
  x = step(b, x, [&] { return bill_conv(b, e.conv_out, x); });
  if (e.quant_conv.weight.defined()) x = step(b, x, [&] { return bill_conv(b, e.quant_conv, x); });
  return b.peak;
}

int64_t decoder_peak_bytes(const Model::Impl& m, int64_t n, int64_t h, int64_t w) {
  const Decoder& d = m.decoder;
  Bill b;
  Shape x{n, m.config.latent_channels, h, w};
  b.add(x.bytes());  // z.contiguous()
  if (d.post_quant_conv.weight.defined())
    x = step(b, x, [&] { return bill_conv(b, d.post_quant_conv, x); });
  x = step(b, x, [&] { return bill_conv(b, d.conv_in, x); });
  x = step(b, x, [&] { return bill_mid(b, d.mid, x); });
  for (const UpBlock& u : d.up) {
    for (const Resnet& r : u.resnets) x = step(b, x, [&] { return bill_resnet(b, r, x); });
    if (u.upsample.weight.defined()) {
      x = step(b, x, [&] {
        const Shape up{x.n, x.c, 2 * x.h, 2 * x.w};
        b.add(up.bytes());
        return up;
      });
      x = step(b, x, [&] { return bill_conv(b, u.upsample, x); });
    }
  }
  bill_conv(b, d.conv_out, x);
  return b.peak;
}

}  // namespace eight::vae
