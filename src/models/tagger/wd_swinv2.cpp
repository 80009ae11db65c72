// timm's SwinTransformerV2 (Liu et al. 2022, "Swin Transformer V2") as the WD SwinV2 tagger uses
// it (swinv2_base_window8_256 with img_size 448, window_size 14: embed 128, depths 2-2-18-2, heads
// 4-8-16-32). timm swin_transformer_v2.py, activations channels last ([n, H, W, C] rows):
//   patch_embed   conv 4x4 stride 4, LayerNorm
//   stage i>0     PatchMerging: 2x2 neighbours concatenated (x00, x10, x01, x11), reduction
//                 (no bias), LayerNorm
//   block         x + norm1(window_attention(x)); x + norm2(mlp(x))        (post-norm)
//   end           LayerNorm (norm), average over H x W; head.fc applied by WdTagger
// Window attention: a window is min(window_size, resolution) wide; odd blocks shift by half a
// window when the resolution exceeds it (cyclic roll, -100 between tokens from different regions).
// Cosine attention: normalize(q) · normalize(k) · exp(min(logit_scale, log 100)) plus
// 16 · sigmoid(cpb_mlp(log-spaced relative coordinates)) per head, softmax, · v. q/k/v biases are
// q_bias, zeros, v_bias. LayerNorms use PyTorch's eps 1e-5.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "models/tagger/wd_internal.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/matmul.h"

namespace eight::tagger::wd {
namespace {

constexpr float kEps = 1e-5f;

struct Block {
  int64_t ws = 0, shift = 0;  // the window (clamped to the resolution) and the shift
  int64_t heads = 0;
  clip::Linear qkv;   // attn.qkv [3C, C], bias = q_bias ‖ 0 ‖ v_bias
  Tensor scale;       // [heads] exp(min(logit_scale, log 100))
  Tensor bias_table;  // [(2ws-1)^2, heads] 16 · sigmoid(cpb_mlp(coords))
  clip::Linear proj;  // attn.proj
  clip::LayerNorm norm1, norm2;
  clip::Linear fc1, fc2;  // mlp
};

struct Stage {
  clip::Linear reduction;  // downsample.reduction [2C, 4C], undefined for stage 0
  clip::LayerNorm down_norm;
  std::vector<Block> blocks;
  int64_t dim = 0, res = 0;  // channels and side of the feature map in this stage
};

// timm's relative_coords_table for a window of ws (pretrained window pws, 0: none), through the
// continuous position bias MLP: [(2ws-1)^2, heads] = 16 · sigmoid(fc2(relu(fc1(coords)))).
Tensor bias_table(const Weights& w, const std::string& p, int64_t ws, int64_t pws, int64_t heads) {
  const int64_t side = 2 * ws - 1, hidden = w.need(p + "cpb_mlp.0.weight").size(0);
  const Tensor w1 = clip::to_f32(w.need(p + "cpb_mlp.0.weight", {hidden, 2}));
  const Tensor b1 = w.vector_f32(p + "cpb_mlp.0.bias", hidden);
  const Tensor w2 = clip::to_f32(w.need(p + "cpb_mlp.2.weight", {heads, hidden}));
  Tensor out = Tensor::empty({side * side, heads}, DType::F32);
  const double div = static_cast<double>(std::max<int64_t>((pws > 0 ? pws : ws) - 1, 1));
  auto coord = [&](int64_t d) {  // sign(x) · log2(|x| + 1) / log2(8) of x = 8 d / div, in f32
    const auto x = static_cast<float>(static_cast<float>(d) / static_cast<float>(div) * 8.0f);
    return std::copysign(std::log2(std::fabs(x) + 1.0f), x) / 3.0f;
  };
  std::vector<float> hid(static_cast<size_t>(hidden));
  for (int64_t dy = -(ws - 1); dy < ws; ++dy)
    for (int64_t dx = -(ws - 1); dx < ws; ++dx) {
      const float cy = coord(dy), cx = coord(dx);
      for (int64_t j = 0; j < hidden; ++j) {
        const float v =
            w1.data<float>()[j * 2] * cy + w1.data<float>()[j * 2 + 1] * cx + b1.data<float>()[j];
        hid[static_cast<size_t>(j)] = std::max(v, 0.0f);
      }
      float* o = out.data<float>() + ((dy + ws - 1) * side + (dx + ws - 1)) * heads;
      for (int64_t h = 0; h < heads; ++h) {
        double s = 0;
        for (int64_t j = 0; j < hidden; ++j)
          s += static_cast<double>(w2.data<float>()[h * hidden + j]) * hid[static_cast<size_t>(j)];
        o[h] = static_cast<float>(16.0 / (1.0 + std::exp(-s)));
      }
    }
  return out;
}

// Which of the three shifted-window regions a coordinate lies in (timm's img_mask slices).
int region(int64_t y, int64_t size, int64_t ws, int64_t shift) {
  return y < size - ws ? 0 : y < size - shift ? 1 : 2;
}

class SwinV2 final : public Backbone {
 public:
  SwinV2(const Config& c, const Weights& w) {
    const std::string& src = w.source();
    act_ = activation_of(c.model_args, src);
    int64_t window = c.model_args.value("window_size", int64_t{0});
    if (window == 0) {  // from the name: swinv2_base_window8_256
      const auto at = c.architecture.find("window");
      if (at != std::string::npos) window = std::atoi(c.architecture.c_str() + at + 6);
    }
    check(window > 0, "[wd] ", src, ": no window_size in model_args or the architecture name");
    std::vector<int64_t> pretrained = {0, 0, 0, 0};
    if (c.model_args.contains("pretrained_window_sizes"))
      pretrained = c.model_args["pretrained_window_sizes"].get<std::vector<int64_t>>();

    const Tensor& pw = w.need("patch_embed.proj.weight");
    check(pw.dim() == 4 && pw.size(1) == 3 && pw.size(2) == pw.size(3), "[wd] ", src,
          ": patch_embed.proj.weight ", pw.shape().str(), " is not [C, 3, p, p]");
    p_ = pw.size(2);
    patch_w_ = ops::conv2d_prepare_weight(pw);
    patch_b_ = w.vector_f32("patch_embed.proj.bias", pw.size(0));
    patch_norm_ = w.norm("patch_embed.norm", pw.size(0));
    size_ = c.input_size;
    int64_t dim = pw.size(0), res = size_ / p_;
    check(res * p_ == size_, "[wd] ", src, ": input size ", size_, " is not a multiple of ", p_);
    for (int64_t s = 0; w.has(cat("layers.", s, ".blocks.0.norm1.weight")); ++s) {
      Stage st;
      const std::string sp = cat("layers.", s, ".");
      if (w.has(sp + "downsample.reduction.weight")) {
        const int64_t out = w.need(sp + "downsample.reduction.weight").size(0);
        st.reduction = w.linear(sp + "downsample.reduction", out, 4 * dim);
        st.down_norm = w.norm(sp + "downsample.norm", out);
        dim = out;
        res = (res + 1) / 2;
      }
      st.dim = dim;
      st.res = res;
      const int64_t pws = s < static_cast<int64_t>(pretrained.size()) ? pretrained[s] : 0;
      for (int64_t i = 0; w.has(cat(sp, "blocks.", i, ".norm1.weight")); ++i)
        st.blocks.push_back(load_block(w, cat(sp, "blocks.", i, "."), dim, res, window, pws, i));
      stages_.push_back(std::move(st));
    }
    check(!stages_.empty(), "[wd] ", src, " has no layers.0.blocks.0");
    features_ = dim;
    norm_ = w.norm("norm", dim);
  }

  int64_t num_features() const override { return features_; }

  Tensor features(const Tensor& pixels, ThreadPool& pool) const override {
    const int64_t n = pixels.size(0);
    int64_t res = size_ / p_;
    const int64_t C0 = patch_norm_.weight.size(0);
    Tensor emb = Tensor::empty({n, C0, res, res}, DType::F32);
    ops::conv2d(pixels, patch_w_, emb, pool, {.stride = {p_, p_}, .bias = &patch_b_});
    Tensor x = Tensor::empty({n * res * res, C0}, DType::F32);  // NCHW → NHWC rows
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < C0; ++c)
        for (int64_t i = 0; i < res * res; ++i)
          x.data<float>()[(b * res * res + i) * C0 + c] =
              emb.data<float>()[(b * C0 + c) * res * res + i];
    layer_norm_rows(x, patch_norm_, kEps, pool);
    for (const Stage& st : stages_) {
      if (st.reduction.weight.defined()) {
        x = patch_merge(x, n, res, pool);
        x = ops::matmul(x, st.reduction.weight, pool);
        layer_norm_rows(x, st.down_norm, kEps, pool);
        res = st.res;
      }
      for (const Block& blk : st.blocks) run_block(blk, x, n, res, pool);
    }
    layer_norm_rows(x, norm_, kEps, pool);
    return mean_positions(x, n);
  }

  int64_t activation_bytes(int64_t n, int n_threads) const override {
    // features(): emb [n, C0, r, r] lives to the end. Beside it: the convolution's working set
    // (one image at a time); x; a patch merge's input and concatenated rows, then those and the
    // reduced rows; a block's x, qkv, attention out, the projection y, the MLP hidden and each
    // thread's window buffer (scores N², q, k, v 3·N·d, N row indices); the pooled rows.
    const int64_t S = size_, C0 = patch_norm_.weight.size(0), r0 = S / p_;
    const int64_t emb = 4 * n * r0 * r0 * C0;
    int64_t peak =
        std::max(ops::conv2d_scratch_bytes({n, 3, S, S}, patch_w_.shape, patch_w_.w.dtype(),
                                           {.stride = {p_, p_}}, true),
                 emb);
    int64_t res = r0, C = C0;
    for (const Stage& st : stages_) {
      const int64_t rows = n * st.res * st.res;
      if (st.reduction.weight.defined())
        peak = std::max(peak, 4 * rows * 4 * C + 4 * std::max(n * res * res * C, rows * st.dim));
      res = st.res;
      C = st.dim;
      for (const Block& b : st.blocks) {
        const int64_t N = b.ws * b.ws, I = b.fc1.weight.size(0);
        peak = std::max(peak,
                        4 * (rows * (6 * C + I) + n_threads * (N * N + 3 * N * (C / b.heads) + N)));
      }
    }
    return emb + std::max(peak, 4 * n * (res * res * C + C));
  }

  void add_scratch(cpu::ScratchPeak& s, int64_t n) const override {
    const int64_t S = size_, r0 = S / p_, K = 3 * p_ * p_;
    s.add(patch_w_.w.dtype(), ops::conv2d_tile_rows(K, r0 * r0), K);
    int64_t C = patch_norm_.weight.size(0);
    for (const Stage& st : stages_) {
      const int64_t rows = n * st.res * st.res;
      if (st.reduction.weight.defined()) s.add(st.reduction.weight.dtype(), rows, 4 * C);
      C = st.dim;
      for (const Block& b : st.blocks) {
        s.add(b.qkv.weight.dtype(), rows, C);
        s.add(b.proj.weight.dtype(), rows, C);
        s.add(b.fc1.weight.dtype(), rows, C);
        s.add(b.fc2.weight.dtype(), rows, b.fc1.weight.size(0));
      }
    }
  }

  int64_t copied_bytes() const override {
    int64_t b = owned_bytes(patch_w_.w) + owned_bytes(patch_b_) + owned_bytes(patch_norm_) +
                owned_bytes(norm_);
    for (const Stage& st : stages_) {
      b += owned_bytes(st.reduction) + owned_bytes(st.down_norm);
      for (const Block& k : st.blocks)
        b += owned_bytes(k.qkv) + owned_bytes(k.scale) + owned_bytes(k.bias_table) +
             owned_bytes(k.proj) + owned_bytes(k.norm1) + owned_bytes(k.norm2) +
             owned_bytes(k.fc1) + owned_bytes(k.fc2);
    }
    return b;
  }

 private:
  Block load_block(const Weights& w, const std::string& p, int64_t C, int64_t res, int64_t window,
                   int64_t pws, int64_t index) const {
    Block b;
    b.ws = std::min(window, res);
    b.shift = (index % 2 == 1 && res > b.ws) ? b.ws / 2 : 0;
    check(res % b.ws == 0, "[wd] ", w.source(), ": ", p, " sees a ", res, "x", res,
          " feature map that ", b.ws,
          "-wide windows do not tile (padded windows are not "
          "supported)");
    const Tensor& ls = w.need(p + "attn.logit_scale");
    b.heads = ls.size(0);
    check(ls.numel() == b.heads && C % b.heads == 0, "[wd] ", w.source(), ": ", p,
          "attn.logit_scale ", ls.shape().str(), " does not give heads dividing ", C);
    const Tensor lsf = clip::to_f32(ls).reshape({b.heads});
    b.scale = Tensor::empty({b.heads}, DType::F32);
    for (int64_t h = 0; h < b.heads; ++h)
      b.scale.data<float>()[h] = std::exp(std::min(lsf.data<float>()[h], std::log(100.0f)));
    b.qkv = w.linear(p + "attn.qkv", 3 * C, C);
    if (w.has(p + "attn.q_bias")) {
      b.qkv.bias = Tensor::zeros({3 * C}, DType::F32);
      const Tensor q = w.vector_f32(p + "attn.q_bias", C), v = w.vector_f32(p + "attn.v_bias", C);
      std::memcpy(b.qkv.bias.data<float>(), q.data<float>(), static_cast<size_t>(C) * 4);
      std::memcpy(b.qkv.bias.data<float>() + 2 * C, v.data<float>(), static_cast<size_t>(C) * 4);
    }
    b.bias_table = bias_table(w, p + "attn.", b.ws, pws, b.heads);
    b.proj = w.linear(p + "attn.proj", C, C);
    b.norm1 = w.norm(p + "norm1", C);
    b.norm2 = w.norm(p + "norm2", C);
    const int64_t I = w.need(p + "mlp.fc1.weight").size(0);
    b.fc1 = w.linear(p + "mlp.fc1", I, C);
    b.fc2 = w.linear(p + "mlp.fc2", C, I);
    return b;
  }

  // x [n·H·W, C] → [n·⌈H/2⌉·⌈W/2⌉, 4C]: (y, x) = (0,0), (1,0), (0,1), (1,1) neighbours side by
  // side (timm's reshape/permute order), zeros past an odd edge.
  static Tensor patch_merge(const Tensor& x, int64_t n, int64_t res, ThreadPool& pool) {
    const int64_t C = x.size(1), ro = (res + 1) / 2;
    Tensor out = Tensor::zeros({n * ro * ro, 4 * C}, DType::F32);
    pool.parallel_for(n * ro, [&](int64_t r, int) {
      const int64_t b = r / ro, oy = r % ro;
      for (int64_t ox = 0; ox < ro; ++ox)
        for (int64_t k = 0; k < 4; ++k) {
          const int64_t y = 2 * oy + (k & 1), xx = 2 * ox + (k >> 1);
          if (y >= res || xx >= res) continue;
          std::memcpy(out.data<float>() + ((b * ro + oy) * ro + ox) * 4 * C + k * C,
                      x.data<float>() + ((b * res + y) * res + xx) * C,
                      static_cast<size_t>(C) * sizeof(float));
        }
    });
    return out;
  }

  void run_block(const Block& blk, const Tensor& x, int64_t n, int64_t res,
                 ThreadPool& pool) const {
    const int64_t C = x.size(1), rows = x.size(0), H = blk.heads, d = C / H;
    const int64_t ws = blk.ws, N = ws * ws, nw = res / ws, side = 2 * ws - 1;
    const Tensor qkv = ops::matmul(x, blk.qkv.weight, pool, {.bias = &blk.qkv.bias});
    Tensor attn = Tensor::empty({rows, C}, DType::F32);
    Tensor scratch = Tensor::empty({pool.size(), N * N + 3 * N * d + N}, DType::F32);
    pool.parallel_for(n * nw * nw * H, [&](int64_t task, int thread) {
      const int64_t h = task % H, win = task / H, b = win / (nw * nw);
      const int64_t wy = (win / nw) % nw, wx = win % nw;
      float* sc = scratch.data<float>() + thread * (N * N + 3 * N * d + N);
      float *q = sc + N * N, *k = q + N * d, *v = k + N * d;
      auto* src_row = reinterpret_cast<int32_t*>(v + N * d);  // N row indices (as int32 bits)
      // Token t of the window sits at shifted (ys, xs), i.e. at the original ((ys + shift) % res,
      // (xs + shift) % res): the cyclic roll by -shift.
      for (int64_t t = 0; t < N; ++t) {
        const int64_t ys = wy * ws + t / ws, xs = wx * ws + t % ws;
        const int64_t row = (b * res + (ys + blk.shift) % res) * res + (xs + blk.shift) % res;
        src_row[t] = static_cast<int32_t>(row);
        const float* in = qkv.data<float>() + row * 3 * C + h * d;
        for (int part = 0; part < 3; ++part) {
          float* dst = (part == 0 ? q : part == 1 ? k : v) + t * d;
          std::memcpy(dst, in + part * C, static_cast<size_t>(d) * sizeof(float));
          if (part == 2) continue;
          double ss = 0;  // F.normalize: x / max(|x|, 1e-12)
          for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(dst[j]) * dst[j];
          const auto inv = static_cast<float>(1.0 / std::max(std::sqrt(ss), 1e-12));
          for (int64_t j = 0; j < d; ++j) dst[j] *= inv;
        }
      }
      const float scale = blk.scale.data<float>()[h];
      for (int64_t i = 0; i < N; ++i) {
        float* s = sc + i * N;
        const int64_t yi = i / ws, xi = i % ws;
        const int ri =
            region(wy * ws + yi, res, ws, blk.shift) * 3 + region(wx * ws + xi, res, ws, blk.shift);
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < N; ++j) {
          float dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += q[i * d + c] * k[j * d + c];
          const int64_t yj = j / ws, xj = j % ws;
          const int64_t rel = (yi - yj + ws - 1) * side + (xi - xj + ws - 1);
          float a = dot * scale + blk.bias_table.data<float>()[rel * H + h];
          if (blk.shift > 0) {
            const int rj = region(wy * ws + yj, res, ws, blk.shift) * 3 +
                           region(wx * ws + xj, res, ws, blk.shift);
            if (rj != ri) a += -100.0f;
          }
          s[j] = a;
          mx = std::max(mx, a);
        }
        double sum = 0;
        for (int64_t j = 0; j < N; ++j) sum += (s[j] = std::exp(s[j] - mx));
        const auto inv = static_cast<float>(1.0 / sum);
        float* o = attn.data<float>() + static_cast<int64_t>(src_row[i]) * C + h * d;
        std::fill(o, o + d, 0.0f);
        for (int64_t j = 0; j < N; ++j) {
          const float pj = s[j] * inv;
          for (int64_t c = 0; c < d; ++c) o[c] += pj * v[j * d + c];
        }
      }
    });
    Tensor y = ops::matmul(attn, blk.proj.weight, pool, {.bias = &blk.proj.bias});
    layer_norm_rows(y, blk.norm1, kEps, pool);
    add_rows(x, y, pool);
    mlp_rows(x, blk.fc1, blk.fc2, act_, y, pool);
    layer_norm_rows(y, blk.norm2, kEps, pool);
    add_rows(x, y, pool);
  }

  static void add_rows(const Tensor& x, const Tensor& y, ThreadPool& pool) {
    const int64_t total = x.numel(), chunk = 1 << 14;
    pool.parallel_for((total + chunk - 1) / chunk, [&](int64_t t, int) {
      float* a = x.data<float>();
      const float* b = y.data<float>();
      for (int64_t i = t * chunk; i < std::min(total, (t + 1) * chunk); ++i) a[i] += b[i];
    });
  }

  int64_t p_ = 0, size_ = 0, features_ = 0;
  ops::Activation act_ = ops::Activation::GELU;
  ops::Conv2dWeight patch_w_;
  Tensor patch_b_;
  clip::LayerNorm patch_norm_, norm_;
  std::vector<Stage> stages_;
};

}  // namespace

std::unique_ptr<Backbone> load_swinv2(const Config& c, const Weights& w) {
  return std::make_unique<SwinV2>(c, w);
}

}  // namespace eight::tagger::wd
