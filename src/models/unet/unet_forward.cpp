// The UNet's forward pass (diffusers' UNet2DConditionModel.forward with SDXL's "text_time" added
// conditioning), one line per sub-layer. Activations are channels first [N, C, H, W] for the
// convolutions and token rows [N * H * W, C] inside the transformers.
//
// Memory: every block allocates its outputs and scratch as it runs and frees them when done, so
// the peak is the skip connections held for the up path plus one block's working set.
// activation_bytes() (unet_memory.cpp) walks the same allocations without running anything; a
// change to the allocations here must be mirrored there (tests/models/test_unet.cpp holds the
// two together).
//
// On a Vulkan device the same code runs with device tensors: the ops record their kernels, and
// the few steps written here as host loops (the time embedding's broadcast add, the residual
// adds, the transposes between images and token rows, the skip concatenation) have a device
// branch that calls ops instead. Only the inputs and the output cross to and from the host.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/unet/unet_internal.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/transpose.h"

namespace eight::unet {
namespace {

const Tensor* opt(const Tensor& t) {
  return t.defined() ? &t : nullptr;
}

bool on_device(const Tensor& t) {
  return t.device().kind != DeviceKind::CPU;
}

// fn(r0, r1) over [0, n) in chunks of `grain` on the pool (the row-wise ops take no pool).
template <class Fn>
void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const Fn& fn) {
  pool.parallel_for((n + grain - 1) / grain,
                    [&](int64_t t, int) { fn(t * grain, std::min(n, (t + 1) * grain)); });
}

// y += x element-wise (same shape, contiguous), in parallel.
void add_into(ThreadPool& pool, const Tensor& y, const Tensor& x) {
  if (on_device(y)) return ops::add(y, x, y);  // one recorded kernel
  const Tensor yf = y.reshape({-1}), xf = x.reshape({-1});
  parallel_rows(pool, yf.numel(), 1 << 16, [&](int64_t a, int64_t b) {
    ops::add(yf.slice(0, a, b), xf.slice(0, a, b), yf.slice(0, a, b));
  });
}

// get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0) into out[0..dim):
// [cos(t f_0..), sin(t f_0..)] with f_i = exp(-ln(10000) i / (dim / 2)), in f32 as diffusers.
void sinusoid(float t, int64_t dim, float* out) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = -std::log(10000.0f) * static_cast<float>(i) / static_cast<float>(half);
    const float arg = t * std::exp(exponent);
    out[i] = std::cos(arg);
    out[half + i] = std::sin(arg);
  }
}

// y = x W^T + b, plus (up @ down) x when the weight carries a run-time LoRA (a quantized weight:
// models/sdxl/lora.h); x: [..., in], y: [..., out] contiguous rows.
void linear(const Linear& l, const Tensor& x, const Tensor& y, ThreadPool& pool) {
  ops::matmul(x, l.weight, y, pool, {.bias = opt(l.bias)});
  if (!l.lora_down.defined()) return;
  const Tensor h = ops::matmul(x, l.lora_down, pool);  // [..., r]
  add_into(pool, y, ops::matmul(h, l.lora_up, pool));  // [..., out]
}

struct Ctx {
  const Config& config;
  ThreadPool& pool;
  Tensor emb;  // [N, time_embed_dim] silu(temb + aug_emb): what every resnet's time_emb_proj reads
  Tensor context;  // [N * L, cross_attention_dim] rows
  int64_t N = 0, L = 0;
};

// y = conv(x), 'same' padding for odd kernels; x: [N, C_in, H, W].
Tensor conv(const Conv& c, const Tensor& x, ThreadPool& pool, int64_t stride = 1) {
  const int64_t pad = c.weight.shape[2] / 2;
  const ops::Conv2dParams p{.stride = {stride, stride}, .padding = {pad, pad}, .bias = &c.bias};
  Tensor y = ops::empty(ops::conv2d_output_shape(x, c.weight.shape, p), DType::F32, x.device());
  if (on_device(x))
    ops::conv2d(x, c.weight.w, y, pool, p);  // the checkpoint's [out, in, kh, kw] there
  else
    ops::conv2d(x, c.weight, y, pool, p);
  return y;
}

void group_norm(const Ctx& cx, const Norm& n, const Tensor& x, const Tensor& y, float eps,
                bool silu) {
  ops::group_norm(x, y,
                  {.groups = cx.config.groups,
                   .weight = &n.weight,
                   .bias = &n.bias,
                   .eps = eps,
                   .silu = silu,
                   .channel_dim = 1,
                   .pool = &cx.pool});
}

// ResnetBlock2D.forward (resnet.py), x: [N, c_in, H, W] -> [N, c_out, H, W].
Tensor resblock(const ResBlock& r, const Tensor& x, const Ctx& cx) {
  const float eps = cx.config.eps;
  Tensor h = ops::empty(x.shape(), DType::F32, x.device());
  group_norm(cx, r.norm1, x, h, eps, true);  // silu(norm1(x))
  Tensor y = conv(r.conv1, h, cx.pool);      // conv1
  h = Tensor();
  {
    Tensor t = ops::empty({cx.N, r.c_out}, DType::F32, x.device());  // time_emb_proj(silu(temb))
    linear(r.time_emb_proj, cx.emb, t, cx.pool);
    const int64_t hw = y.size(2) * y.size(3);
    if (on_device(y))
      ops::add(y, t.reshape({cx.N, r.c_out, 1, 1}), y);  // + temb[:, :, None, None]
    else
      parallel_rows(cx.pool, cx.N * r.c_out, 16, [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) {  // + temb[:, :, None, None]
          float* p = y.data<float>() + i * hw;
          const float v = t.data<float>()[i];
          for (int64_t k = 0; k < hw; ++k) p[k] += v;
        }
      });
  }
  group_norm(cx, r.norm2, y, y, eps, true);  // silu(norm2(h))
  Tensor out = conv(r.conv2, y, cx.pool);    // conv2
  y = Tensor();
  if (r.shortcut.defined()) {
    const Tensor s = conv(r.shortcut, x, cx.pool);  // conv_shortcut(x) + h
    add_into(cx.pool, out, s);
  } else {
    add_into(cx.pool, out, x);  // x + h
  }
  return out;
}

// dst[n, t, c] = src[n, c, t] (op = copy) or src[n, c, t] += dst[n, t, c] (op = add back), for
// [N, C, T] images and [N * T, C] token rows, in 32 x 32 tiles.
void image_rows(ThreadPool& pool, const Tensor& image, const Tensor& rows, int64_t N, bool add) {
  const int64_t C = rows.size(1), T = rows.size(0) / N, tiles_t = (T + 31) / 32;
  if (on_device(image)) {
    // Per sample, ops::transpose: [C, T] -> [T, C] rows, or the rows back into a [N, C, T]
    // scratch that is then added to the image.
    const Tensor back = add ? ops::empty(image.shape(), DType::F32, image.device()) : Tensor();
    const Tensor im = (add ? back : image).reshape({N, C, T});
    for (int64_t n = 0; n < N; ++n) {
      const Tensor i = im.select(0, n), r = rows.slice(0, n * T, (n + 1) * T);
      if (add)
        ops::transpose(r, i);
      else
        ops::transpose(i, r);
    }
    if (add) ops::add(image, back, image);
    return;
  }
  float* img = image.data<float>();
  float* row = rows.data<float>();
  pool.parallel_for(N * tiles_t, [&](int64_t task, int) {
    const int64_t n = task / tiles_t, t0 = task % tiles_t * 32, t1 = std::min(T, t0 + 32);
    float* im = img + n * C * T;
    float* rw = row + n * T * C;
    for (int64_t c0 = 0; c0 < C; c0 += 32) {
      const int64_t c1 = std::min(C, c0 + 32);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t t = t0; t < t1; ++t) {
          if (add)
            im[c * T + t] += rw[t * C + c];
          else
            rw[t * C + c] = im[c * T + t];
        }
    }
  });
}

// Transformer2DModel.forward (transformer_2d.py, linear projection) in place on x: [N, C, H, W]:
// x += proj_out(blocks(proj_in(norm(x)))), each BasicTransformerBlock (attention.py) being
//   h = h + attn1(norm1(h)); h = h + attn2(norm2(h), context); h = h + ff(norm3(h)).
void transformer(const SpatialTransformer& s, const Tensor& x, const Ctx& cx) {
  ThreadPool& pool = cx.pool;
  const int64_t N = cx.N, C = s.channels, T = x.size(2) * x.size(3), R = N * T;
  const int64_t H = s.heads, d = C / H, L = cx.L, F = std::min(R, kFeedForwardRows);
  const bool gpu = on_device(x);
  auto scratch = [&](const Dims& shape) { return ops::empty(shape, DType::F32, x.device()); };
  // Scratch of the whole transformer: token rows h, a, q, k, v [R, C]; the context's keys and
  // values [N * L, C]; the feed-forward's [F, 8C] projection and [F, 4C] GEGLU output.
  Tensor h = scratch({R, C}), a = scratch({R, C});
  Tensor q = scratch({R, C}), k = scratch({R, C});
  Tensor v = scratch({R, C});
  Tensor kc = scratch({N * L, C}), vc = scratch({N * L, C});
  Tensor ff = scratch({F, 8 * C}), gg = scratch({F, 4 * C});

  group_norm(cx, s.norm, x, q.reshape(x.shape()), kTransformerNormEps, false);  // norm(x)
  image_rows(pool, q, a, N, false);  // [N, C, H, W] -> [N * H * W, C]
  linear(s.proj_in, a, h, pool);     // proj_in
  auto layer_norm = [&](const Norm& n, int64_t r0, int64_t r1) {
    if (gpu)
      return ops::layer_norm(h.slice(0, r0, r1), a.slice(0, r0, r1),
                             {.weight = &n.weight, .bias = &n.bias, .eps = kLayerNormEps});
    parallel_rows(pool, r1 - r0, 32, [&](int64_t i0, int64_t i1) {
      ops::layer_norm(h.slice(0, r0 + i0, r0 + i1), a.slice(0, r0 + i0, r0 + i1),
                      {.weight = &n.weight, .bias = &n.bias, .eps = kLayerNormEps});
    });
  };
  auto heads = [&](const Tensor& t, int64_t n, int64_t len) {
    return t.slice(0, n * len, (n + 1) * len).reshape({len, H, d});
  };
  for (const TransformerBlock& b : s.blocks) {
    layer_norm(b.norm1, 0, R);  // attn1: self-attention over the image's tokens
    linear(b.q1, a, q, pool);
    linear(b.k1, a, k, pool);
    linear(b.v1, a, v, pool);
    for (int64_t n = 0; n < N; ++n)
      ops::attention(heads(q, n, T), heads(k, n, T), heads(v, n, T), heads(a, n, T), pool,
                     {.causal = false});
    linear(b.out1, a, q, pool);  // to_out.0
    add_into(pool, h, q);
    layer_norm(b.norm2, 0, R);  // attn2: cross-attention over the text context
    linear(b.q2, a, q, pool);
    linear(b.k2, cx.context, kc, pool);
    linear(b.v2, cx.context, vc, pool);
    for (int64_t n = 0; n < N; ++n)
      ops::attention(heads(q, n, T), heads(kc, n, L), heads(vc, n, L), heads(a, n, T), pool,
                     {.causal = false});
    linear(b.out2, a, q, pool);
    add_into(pool, h, q);
    for (int64_t r0 = 0; r0 < R; r0 += F) {  // ff: GEGLU then ff.net.2, F rows at a time
      const int64_t r1 = std::min(R, r0 + F), n = r1 - r0;
      layer_norm(b.norm3, r0, r1);
      const Tensor p = ff.slice(0, 0, n), g = gg.slice(0, 0, n);
      linear(b.ff_proj, a.slice(0, r0, r1), p, pool);
      if (gpu)
        ops::geglu(p, g);  // hidden * gelu(gate)
      else
        parallel_rows(pool, n, 8, [&](int64_t i0, int64_t i1) {
          ops::geglu(p.slice(0, i0, i1), g.slice(0, i0, i1));  // hidden * gelu(gate)
        });
      linear(b.ff_out, g, q.slice(0, r0, r1), pool);
    }
    add_into(pool, h, q);
  }
  linear(s.proj_out, h, a, pool);   // proj_out
  image_rows(pool, x, a, N, true);  // + residual, back to [N, C, H, W]
}

// torch.cat([h, skip], dim=1).
Tensor concat_channels(const Tensor& h, const Tensor& skip, ThreadPool& pool) {
  const int64_t N = h.size(0), ch = h.size(1), cs = skip.size(1), hw = h.size(2) * h.size(3);
  check(skip.size(0) == N && skip.size(2) == h.size(2) && skip.size(3) == h.size(3),
        "[unet] skip connection ", skip.shape().str(), " does not match ", h.shape().str());
  Tensor y = ops::empty({N, ch + cs, h.size(2), h.size(3)}, DType::F32, h.device());
  if (on_device(h)) {  // per sample, two contiguous slabs
    for (int64_t n = 0; n < N; ++n) {
      const Tensor yn = y.select(0, n);
      ops::copy(h.select(0, n), yn.slice(0, 0, ch));
      ops::copy(skip.select(0, n), yn.slice(0, ch, ch + cs));
    }
    return y;
  }
  pool.parallel_for(N * (ch + cs), [&](int64_t task, int) {
    const int64_t n = task / (ch + cs), c = task % (ch + cs);
    const float* src =
        c < ch ? h.data<float>() + (n * ch + c) * hw : skip.data<float>() + (n * cs + c - ch) * hw;
    std::copy_n(src, hw, y.data<float>() + task * hw);
  });
  return y;
}

// Upsample2D's F.interpolate(mode="nearest") to the skip's size (2x, unless the latent size was
// not a multiple of the levels' total downscale, where diffusers passes upsample_size).
Tensor upsample(const Tensor& x, int64_t h, int64_t w) {
  const int64_t N = x.size(0), C = x.size(1);
  Tensor y = ops::empty({N, C, h, w}, DType::F32, x.device());
  check(!on_device(x) || (h == 2 * x.size(2) && w == 2 * x.size(3)), "[unet] upsampling ",
        x.shape().str(), " to ", h, " x ", w, " on ", x.device().name(),
        ": only the nearest 2x runs there (latent sides that are multiples of ",
        "2^(levels - 1) do)");
  if (h == 2 * x.size(2) && w == 2 * x.size(3)) {
    ops::upsample_nearest2x(x, y);
  } else {
    for (int64_t n = 0; n < N; ++n)
      ops::upsample(x.select(0, n), y.select(0, n), {.mode = ops::UpsampleMode::Nearest});
  }
  return y;
}

}  // namespace

Tensor Model::forward(const Tensor& x, const std::vector<float>& timesteps, const Tensor& context,
                      const Tensor& text_embeds, const Tensor& time_ids, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  check(x.defined() && x.dim() == 4 && x.dtype() == DType::F32 && x.size(1) == c.in_channels,
        "[unet] x must be f32 [N, ", c.in_channels, ", h, w], got ",
        x.defined() ? x.str() : std::string("undefined"));
  const int64_t N = x.size(0), ted = c.time_embed_dim, c0 = c.channels[0];
  check(static_cast<int64_t>(timesteps.size()) == N, "[unet] ", timesteps.size(),
        " timesteps for a batch of ", N);
  check(context.defined() && context.dim() == 3 && context.dtype() == DType::F32 &&
            context.size(0) == N && context.size(2) == c.cross_attention_dim && context.size(1) > 0,
        "[unet] context must be f32 [", N, ", L, ", c.cross_attention_dim, "], got ",
        context.defined() ? context.str() : std::string("undefined"));
  check(time_ids.defined() && time_ids.dtype() == DType::F32 && time_ids.shape() == Dims{N, 6},
        "[unet] time_ids must be f32 [", N, ", 6], got ",
        time_ids.defined() ? time_ids.str() : std::string("undefined"));
  check(text_embeds.defined() && text_embeds.dim() == 2, "[unet] text_embeds must be f32 [", N,
        ", pooled_dim], got ", text_embeds.defined() ? text_embeds.str() : "undefined");
  const int64_t pooled = c.pooled_dim > 0 ? c.pooled_dim : text_embeds.size(1);
  const int64_t atd = c.pooled_dim > 0 ? c.addition_time_embed_dim : (m.add_in - pooled) / 6;
  check(text_embeds.dtype() == DType::F32 && text_embeds.shape() == Dims{N, pooled} && atd > 0 &&
            atd % 2 == 0 && pooled + 6 * atd == m.add_in,
        "[unet] text_embeds must be f32 [", N, ", pooled_dim] with pooled_dim + 6 x ",
        "addition_time_embed_dim = ", m.add_in, " (add_embedding's in-features; pooled_dim ",
        c.pooled_dim, ", 0 = unknown), got ", text_embeds.str());

  // emb = time_embedding(time_proj(t)) + add_embedding(concat(text_embeds, time_proj(time_ids))),
  // and the resnets read silu(emb).
  // The sinusoids are made on the host, then uploaded when the model is on a device.
  const Device dev = m.device;
  Tensor emb = ops::empty({N, ted}, DType::F32, dev);
  {
    Tensor tproj = Tensor::empty({N, c0}, DType::F32), t1 = ops::empty({N, ted}, DType::F32, dev);
    Tensor aproj = Tensor::empty({N, m.add_in}, DType::F32);
    Tensor aug = ops::empty({N, ted}, DType::F32, dev);
    const Tensor te = text_embeds.contiguous(), ids = time_ids.contiguous();
    for (int64_t n = 0; n < N; ++n) {
      sinusoid(timesteps[static_cast<size_t>(n)], c0, tproj.data<float>() + n * c0);
      float* row = aproj.data<float>() + n * m.add_in;
      std::copy_n(te.data<float>() + n * pooled, pooled, row);
      for (int64_t i = 0; i < 6; ++i)
        sinusoid(ids.data<float>()[n * 6 + i], atd, row + pooled + i * atd);
    }
    linear(m.time_1, ops::to_device(tproj, dev), t1, pool);
    ops::activation(ops::Activation::SiLU, t1, t1);
    linear(m.time_2, t1, emb, pool);
    linear(m.add_1, ops::to_device(aproj, dev), t1, pool);
    ops::activation(ops::Activation::SiLU, t1, t1);
    linear(m.add_2, t1, aug, pool);
    ops::add(emb, aug, emb);
    ops::activation(ops::Activation::SiLU, emb, emb);
  }
  const Tensor ctx_rows =
      ops::to_device(context.contiguous().reshape({N * context.size(1), context.size(2)}), dev);
  const Ctx cx{
      .config = c, .pool = pool, .emb = emb, .context = ctx_rows, .N = N, .L = context.size(1)};

  // On a device, the work recorded so far is submitted after every block: a buffer freed while
  // recorded work may read it is released only once that work is done, so without these the
  // whole forward's allocations would be held until the output's download.
  const auto submit = [&] {
    if (dev.kind == DeviceKind::Vulkan) vulkan::flush(dev.index);
  };
  std::vector<Tensor> skips;  // down_block_res_samples
  Tensor h = conv(m.conv_in, ops::to_device(x, dev), pool);
  skips.push_back(h);
  for (const Level& L : m.down) {
    for (size_t j = 0; j < L.resnets.size(); ++j) {
      h = resblock(L.resnets[j], h, cx);
      submit();
      if (!L.attentions.empty()) {
        transformer(L.attentions[j], h, cx);
        submit();
      }
      skips.push_back(h);
    }
    if (L.resample.defined()) {
      h = conv(L.resample, h, pool, 2);  // Downsample2D: stride 2, padding 1
      skips.push_back(h);
    }
  }
  h = resblock(m.mid_res0, h, cx);
  submit();
  transformer(m.mid_attn, h, cx);
  submit();
  h = resblock(m.mid_res1, h, cx);
  submit();
  for (const Level& L : m.up) {
    for (size_t j = 0; j < L.resnets.size(); ++j) {
      Tensor cat = concat_channels(h, skips.back(), pool);  // cat([h, res_hidden], dim=1)
      skips.pop_back();
      h = Tensor();
      h = resblock(L.resnets[j], cat, cx);
      cat = Tensor();
      submit();
      if (!L.attentions.empty()) {
        transformer(L.attentions[j], h, cx);
        submit();
      }
    }
    if (L.resample.defined()) {
      Tensor u = upsample(h, skips.back().size(2), skips.back().size(3));
      h = Tensor();
      h = conv(L.resample, u, pool);  // Upsample2D: nearest, then conv
    }
  }
  Tensor t = ops::empty(h.shape(), DType::F32, dev);
  group_norm(cx, m.norm_out, h, t, c.eps, true);  // conv_act(conv_norm_out(h))
  h = Tensor();
  Tensor out = conv(m.conv_out, t, pool);
  if (!on_device(out)) return out;
  Tensor host = Tensor::empty(out.shape(), DType::F32);
  ops::copy(out, host);  // waits for the recorded forward
  return host;
}

}  // namespace eight::unet
