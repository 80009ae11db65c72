// timm's ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s") as the WD ConvNeXt tagger uses it
// (convnext_base: depths 3-3-27-3, dims 128-256-512-1024). timm convnext.py, activations kept
// channels last ([n, H, W, C] rows), the layout the block's norm and MLP read:
//   stem        conv 4x4 stride 4 (stem.0), LayerNorm2d (stem.1)
//   stage i>0   LayerNorm2d (downsample.0), conv 2x2 stride 2 (downsample.1)
//   block       x + gamma * fc2(act(fc1(norm(conv_dw(x)))))   conv_dw: 7x7 depthwise, padding 3
//   head        global average pool, LayerNorm (head.norm); head.fc applied by WdTagger
// Every LayerNorm uses eps 1e-6 (timm's default for ConvNeXt). The stride-k convolutions see
// non-overlapping k x k patches: each is one matmul over the unfolded patches.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/tagger/wd_internal.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace eight::tagger::wd {
namespace {

constexpr float kEps = 1e-6f;

// A stride-k, k x k convolution over channels-last x [n, H, W, C] → [n, H/k, W/k, C_out].
struct PatchConv {
  int64_t k = 0, c_in = 0, c_out = 0;
  ops::Conv2dWeight w;  // [c_out, k * k * c_in] in (ky, kx, c) order
  Tensor bias;          // [c_out] f32
};

struct Block {
  Tensor dw;  // conv_dw.weight [C, 1, 7, 7] as f32 [7, 7, C] (taps outer, channels inner)
  Tensor dw_bias;
  clip::LayerNorm norm;
  clip::Linear fc1, fc2;
  Tensor gamma;  // [C] layer scale, or undefined
};

struct Stage {
  clip::LayerNorm down_norm;  // undefined for stage 0
  PatchConv down;
  std::vector<Block> blocks;
  int64_t dim = 0;
};

PatchConv load_patch_conv(const Weights& w, const std::string& prefix, int64_t c_in) {
  const Tensor& t = w.need(prefix + ".weight");
  check(t.dim() == 4 && t.size(1) == c_in && t.size(2) == t.size(3), "[wd] ", w.source(), ": ",
        prefix, ".weight ", t.shape().str(), " is not [C_out, ", c_in, ", k, k]");
  return {.k = t.size(2),
          .c_in = c_in,
          .c_out = t.size(0),
          .w = ops::conv2d_prepare_weight(clip::to_f32(t)),
          .bias = w.vector_f32(prefix + ".bias", t.size(0))};
}

Tensor apply_patch_conv(const PatchConv& pc, const Tensor& x, ThreadPool& pool) {
  const int64_t n = x.size(0), H = x.size(1), W = x.size(2), C = pc.c_in, k = pc.k;
  const int64_t Ho = H / k, Wo = W / k, K = k * k * C;
  Tensor patches = Tensor::empty({n * Ho * Wo, K}, DType::F32);
  pool.parallel_for(n * Ho, [&](int64_t r, int) {
    const int64_t b = r / Ho, oy = r % Ho;
    for (int64_t ox = 0; ox < Wo; ++ox) {
      float* dst = patches.data<float>() + ((b * Ho + oy) * Wo + ox) * K;
      for (int64_t ky = 0; ky < k; ++ky)
        std::memcpy(dst + ky * k * C, x.data<float>() + ((b * H + oy * k + ky) * W + ox * k) * C,
                    static_cast<size_t>(k * C) * sizeof(float));
    }
  });
  const Tensor y = ops::matmul(patches, pc.w.w, pool, {.bias = &pc.bias});
  return y.reshape({n, Ho, Wo, pc.c_out});
}

// y = 7x7 depthwise convolution of x (both [n, H, W, C]), zero padding 3, plus the bias.
void depthwise7(const Tensor& x, const Block& blk, const Tensor& y, ThreadPool& pool) {
  const int64_t n = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  pool.parallel_for(n * H, [&](int64_t r, int) {
    const int64_t b = r / H, oy = r % H;
    for (int64_t ox = 0; ox < W; ++ox) {
      float* o = y.data<float>() + ((b * H + oy) * W + ox) * C;
      std::memcpy(o, blk.dw_bias.data<float>(), static_cast<size_t>(C) * sizeof(float));
      for (int64_t ky = 0; ky < 7; ++ky) {
        const int64_t iy = oy + ky - 3;
        if (iy < 0 || iy >= H) continue;
        for (int64_t kx = 0; kx < 7; ++kx) {
          const int64_t ix = ox + kx - 3;
          if (ix < 0 || ix >= W) continue;
          const float* in = x.data<float>() + ((b * H + iy) * W + ix) * C;
          const float* wt = blk.dw.data<float>() + (ky * 7 + kx) * C;
          for (int64_t c = 0; c < C; ++c) o[c] += in[c] * wt[c];
        }
      }
    }
  });
}

class ConvNeXt final : public Backbone {
 public:
  ConvNeXt(const Config& c, const Weights& w) : size_(c.input_size) {
    act_ = activation_of(c.model_args, w.source());
    check(!w.has("stages.0.blocks.0.conv_dw.weight") ||
              !w.has("stages.0.blocks.0.mlp.fc1.weight") ||
              w.need("stages.0.blocks.0.mlp.fc1.weight").dim() == 2,
          "[wd] ", w.source(), ": conv_mlp ConvNeXt blocks are not supported");
    stem_ = load_patch_conv(w, "stem.0", 3);
    stem_norm_ = w.norm("stem.1", stem_.c_out);
    int64_t prev = stem_.c_out;
    for (int64_t s = 0; w.has(cat("stages.", s, ".blocks.0.conv_dw.weight")); ++s) {
      Stage st;
      const std::string p = cat("stages.", s, ".");
      if (w.has(p + "downsample.1.weight")) {
        st.down_norm = w.norm(p + "downsample.0", prev);
        st.down = load_patch_conv(w, p + "downsample.1", prev);
        prev = st.down.c_out;
      }
      st.dim = prev;
      const int64_t C = prev;
      for (int64_t i = 0; w.has(cat(p, "blocks.", i, ".conv_dw.weight")); ++i) {
        const std::string b = cat(p, "blocks.", i, ".");
        Block blk;
        const Tensor dw = clip::to_f32(w.need(b + "conv_dw.weight", {C, 1, 7, 7}));
        blk.dw = Tensor::empty({7, 7, C}, DType::F32);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t t = 0; t < 49; ++t)
            blk.dw.data<float>()[t * C + c] = dw.data<float>()[c * 49 + t];
        blk.dw_bias = w.vector_f32(b + "conv_dw.bias", C);
        blk.norm = w.norm(b + "norm", C);
        const int64_t I = w.need(b + "mlp.fc1.weight").size(0);
        blk.fc1 = w.linear(b + "mlp.fc1", I, C);
        blk.fc2 = w.linear(b + "mlp.fc2", C, I);
        if (w.has(b + "gamma")) blk.gamma = w.vector_f32(b + "gamma", C);
        st.blocks.push_back(std::move(blk));
      }
      stages_.push_back(std::move(st));
    }
    check(!stages_.empty(), "[wd] ", w.source(), " has no stages.0.blocks.0");
    features_ = prev;
    head_norm_ = w.norm("head.norm", prev);
  }

  int64_t num_features() const override { return features_; }

  Tensor features(const Tensor& pixels, ThreadPool& pool) const override {
    const int64_t n = pixels.size(0), S = pixels.size(2);
    // NCHW pixels → NHWC.
    Tensor x = Tensor::empty({n, S, S, 3}, DType::F32);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < S * S; ++i)
          x.data<float>()[(b * S * S + i) * 3 + c] = pixels.data<float>()[(b * 3 + c) * S * S + i];
    x = apply_patch_conv(stem_, x, pool);
    layer_norm_rows(x.reshape({-1, stem_.c_out}), stem_norm_, kEps, pool);
    for (const Stage& st : stages_) {
      if (st.down.k > 0) {
        layer_norm_rows(x.reshape({-1, st.down.c_in}), st.down_norm, kEps, pool);
        x = apply_patch_conv(st.down, x, pool);
      }
      for (const Block& blk : st.blocks) run_block(blk, x, pool);
    }
    // Global average pool over H x W (in double), then head.norm.
    Tensor out = mean_positions(x.reshape({-1, features_}), n);
    layer_norm_rows(out, head_norm_, kEps, pool);
    return out;
  }

  int64_t activation_bytes(int64_t n, int) const override {
    // features(): the NHWC copy of the pixels, then per stride-k convolution its input, the
    // unfolded patches and the product; per block x, the depthwise output h (the MLP writes
    // back into it) and the MLP hidden; last the pooled rows.
    const int64_t S = size_;
    int64_t hw = (S / stem_.k) * (S / stem_.k);
    int64_t peak = 4 * n * (S * S * 3 + hw * (stem_.k * stem_.k * 3 + stem_.c_out));
    int64_t C = stem_.c_out;
    for (const Stage& st : stages_) {
      if (st.down.k > 0) {
        const int64_t in = n * hw * C;
        hw /= st.down.k * st.down.k;
        peak = std::max(peak, 4 * (in + n * hw * (st.down.k * st.down.k * C + st.down.c_out)));
        C = st.down.c_out;
      }
      for (const Block& blk : st.blocks)
        peak = std::max(peak, 4 * n * hw * (2 * C + blk.fc1.weight.size(0)));
    }
    return std::max(peak, 4 * n * (hw * C + C));
  }

  void add_scratch(cpu::ScratchPeak& s, int64_t n) const override {
    const int64_t S = size_;
    int64_t hw = (S / stem_.k) * (S / stem_.k);
    s.add(stem_.w.w.dtype(), n * hw, stem_.k * stem_.k * 3);
    for (const Stage& st : stages_) {
      if (st.down.k > 0) {
        hw /= st.down.k * st.down.k;
        s.add(st.down.w.w.dtype(), n * hw, st.down.k * st.down.k * st.down.c_in);
      }
      for (const Block& blk : st.blocks) {
        s.add(blk.fc1.weight.dtype(), n * hw, st.dim);
        s.add(blk.fc2.weight.dtype(), n * hw, blk.fc1.weight.size(0));
      }
    }
  }

  int64_t copied_bytes() const override {
    int64_t b = owned_bytes(stem_.w.w) + owned_bytes(stem_.bias) + owned_bytes(stem_norm_) +
                owned_bytes(head_norm_);
    for (const Stage& st : stages_) {
      b += owned_bytes(st.down_norm) + owned_bytes(st.down.w.w) + owned_bytes(st.down.bias);
      for (const Block& blk : st.blocks)
        b += owned_bytes(blk.dw) + owned_bytes(blk.dw_bias) + owned_bytes(blk.norm) +
             owned_bytes(blk.fc1) + owned_bytes(blk.fc2) + owned_bytes(blk.gamma);
    }
    return b;
  }

 private:
  void run_block(const Block& blk, Tensor& x, ThreadPool& pool) const {
    const int64_t C = x.size(3), rows = x.numel() / C;
    Tensor h = Tensor::empty(x.shape(), DType::F32);
    depthwise7(x, blk, h, pool);
    const Tensor h2 = h.reshape({rows, C});
    layer_norm_rows(h2, blk.norm, kEps, pool);
    mlp_rows(h2, blk.fc1, blk.fc2, act_, h2, pool);
    const Tensor xr = x.reshape({rows, C});
    pool.parallel_for((rows + 63) / 64, [&](int64_t t, int) {
      for (int64_t r = t * 64; r < std::min(rows, (t + 1) * 64); ++r) {
        float* xo = xr.data<float>() + r * C;
        const float* hv = h2.data<float>() + r * C;
        if (blk.gamma.defined()) {
          const float* g = blk.gamma.data<float>();
          for (int64_t c = 0; c < C; ++c) xo[c] += g[c] * hv[c];
        } else {
          for (int64_t c = 0; c < C; ++c) xo[c] += hv[c];
        }
      }
    });
  }

  int64_t size_ = 0, features_ = 0;
  ops::Activation act_ = ops::Activation::GELU;
  PatchConv stem_;
  clip::LayerNorm stem_norm_, head_norm_;
  std::vector<Stage> stages_;
};

}  // namespace

std::unique_ptr<Backbone> load_convnext(const Config& c, const Weights& w) {
  return std::make_unique<ConvNeXt>(c, w);
}

}  // namespace eight::tagger::wd
