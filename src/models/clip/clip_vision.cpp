// CLIP's vision tower (transformers' CLIPVisionTransformer): patches -> linear (the stride-p conv)
// -> [class; patches] + positions -> pre_layrnorm -> encoder -> post_layernorm(class token) ->
// visual_projection, L2-normalized. The whole batch goes through each matmul together.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/clip/clip_internal.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::clip {
namespace {

// PyTorch's cubic convolution kernel with A = -0.75 (upsample_bicubic2d).
void cubic_weights(double t, double w[4]) {
  constexpr double A = -0.75;
  auto near = [](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };       // |x| <= 1
  auto far = [](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

}  // namespace

Tensor interpolate_positions(const Tensor& table, int64_t grid_in, int64_t h_out, int64_t w_out) {
  const int64_t d = table.size(1);
  check(table.size(0) == grid_in * grid_in, "[clip] position table ", table.shape().str(),
        " is not a ", grid_in, "x", grid_in, " grid");
  Tensor out = Tensor::empty({h_out * w_out, d}, DType::F32);
  const float* src = table.data<float>();
  float* dst = out.data<float>();
  // align_corners=False: source coordinate (dst + 0.5) * in / out - 0.5, not clamped; the four
  // taps are clamped to the grid.
  auto taps = [grid_in](int64_t o, int64_t n_out, int64_t idx[4], double w[4]) {
    const double real = (static_cast<double>(o) + 0.5) * grid_in / n_out - 0.5;
    const double fl = std::floor(real);
    cubic_weights(real - fl, w);
    for (int k = 0; k < 4; ++k)
      idx[k] = std::clamp<int64_t>(static_cast<int64_t>(fl) - 1 + k, 0, grid_in - 1);
  };
  Tensor acc_buf = Tensor::empty({d}, DType::F64);  // one output position, accumulated in double
  double* acc = acc_buf.data<double>();
  for (int64_t oy = 0; oy < h_out; ++oy) {
    int64_t iy[4];
    double wy[4];
    taps(oy, h_out, iy, wy);
    for (int64_t ox = 0; ox < w_out; ++ox) {
      int64_t ix[4];
      double wx[4];
      taps(ox, w_out, ix, wx);
      std::fill(acc, acc + d, 0.0);
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const float* s = src + (iy[a] * grid_in + ix[b]) * d;
          const double w = wy[a] * wx[b];
          for (int64_t j = 0; j < d; ++j) acc[j] += w * s[j];
        }
      float* o = dst + (oy * w_out + ox) * d;
      for (int64_t j = 0; j < d; ++j) o[j] = static_cast<float>(acc[j]);
    }
  }
  return out;
}

Tensor vision_hidden_states(const Model::Impl& m, const Tensor& pixels_in, int64_t n_layers,
                            ThreadPool& pool) {
  const Config& c = m.config;
  const VisionWeights& w = m.vision;
  check(pixels_in.dim() == 4 && pixels_in.size(1) == 3 && pixels_in.dtype() == DType::F32,
        "[clip] pixels must be f32 [n, 3, H, W], got ", pixels_in.str());
  const Tensor pixels = pixels_in.contiguous();
  const int64_t n = pixels.size(0), H = pixels.size(2), W = pixels.size(3);
  const int64_t p = c.patch_size, gh = H / p, gw = W / p, np = gh * gw, S = np + 1;
  const int64_t D = c.vision.hidden, K = 3 * p * p;
  check(gh >= 1 && gw >= 1, "[clip] a ", H, "x", W, " image is smaller than one ", p, "x", p,
        " patch");
  check(n_layers >= 0 && n_layers <= static_cast<int64_t>(w.tower.layers.size()), "[clip] ",
        n_layers, " layers asked of a ", w.tower.layers.size(), "-layer vision tower");
  if (n == 0) return Tensor::empty({0, D}, DType::F32);

  // The stride-p convolution as a matmul: patches [n * np, 3 * p * p] in (channel, y, x) order,
  // like the conv weight [D, 3, p, p]; pixels past the last whole patch are ignored, as the conv
  // ignores them.
  Tensor patches = Tensor::empty({n * np, K}, DType::F32);
  pool.parallel_for(n * np, [&](int64_t r, int) {
    const int64_t b = r / np, gy = (r % np) / gw, gx = r % gw;
    float* dst = patches.data<float>() + r * K;
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 0; y < p; ++y) {
        const float* src = pixels.data<float>() + ((b * 3 + ch) * H + gy * p + y) * W + gx * p;
        std::memcpy(dst + (ch * p + y) * p, src, static_cast<size_t>(p) * sizeof(float));
      }
  });
  const Tensor emb = ops::matmul(patches, w.patch_embedding, pool);  // [n * np, D]

  const int64_t grid = c.image_size / p;
  const Tensor& table = w.position_embedding;  // [grid^2 + 1, D]
  Tensor patch_pos = table.slice(0, 1, table.size(0));
  if (gh != grid || gw != grid) patch_pos = interpolate_positions(patch_pos, grid, gh, gw);

  // x: [n * S, D], each image's class token first.
  Tensor x = Tensor::empty({n * S, D}, DType::F32);
  for (int64_t b = 0; b < n; ++b) {
    float* row = x.data<float>() + b * S * D;
    const float* cls = w.class_embedding.data<float>();
    const float* pos0 = table.data<float>();
    for (int64_t j = 0; j < D; ++j) row[j] = cls[j] + pos0[j];
    for (int64_t i = 0; i < np; ++i) {
      float* r = row + (1 + i) * D;
      const float* e = emb.data<float>() + (b * np + i) * D;
      const float* q = patch_pos.data<float>() + i * D;
      for (int64_t j = 0; j < D; ++j) r[j] = e[j] + q[j];
    }
  }
  const float eps = static_cast<float>(c.vision.eps);
  ops::layer_norm(x, x, {.weight = &w.pre_norm.weight, .bias = &w.pre_norm.bias, .eps = eps});
  if (n_layers == static_cast<int64_t>(w.tower.layers.size())) {
    run_tower(w.tower, x, std::vector<int64_t>(static_cast<size_t>(n), S), false, pool);
  } else {  // a prefix of the tower: the layer handles are shared, nothing is copied
    Tower prefix{.config = w.tower.config, .act = w.tower.act, .layers = {}};
    prefix.layers.assign(w.tower.layers.begin(), w.tower.layers.begin() + n_layers);
    run_tower(prefix, x, std::vector<int64_t>(static_cast<size_t>(n), S), false, pool);
  }
  return x;
}

Tensor forward_vision(const Model::Impl& m, const Tensor& pixels, ThreadPool& pool) {
  const Config& c = m.config;
  const VisionWeights& w = m.vision;
  check(pixels.dim() == 4, "[clip] pixels must be f32 [n, 3, H, W], got ", pixels.str());
  const int64_t n = pixels.size(0), D = c.vision.hidden;
  if (n == 0) return Tensor::empty({0, c.projection_dim}, DType::F32);
  const Tensor x =
      vision_hidden_states(m, pixels, static_cast<int64_t>(w.tower.layers.size()), pool);
  const int64_t S = x.size(0) / n;
  const float eps = static_cast<float>(c.vision.eps);
  Tensor pooled = Tensor::empty({n, D}, DType::F32);  // the class tokens
  for (int64_t b = 0; b < n; ++b)
    std::memcpy(pooled.data<float>() + b * D, x.data<float>() + b * S * D,
                static_cast<size_t>(D) * sizeof(float));
  if (w.post_norm.weight.defined())
    ops::layer_norm(pooled, pooled,
                    {.weight = &w.post_norm.weight, .bias = &w.post_norm.bias, .eps = eps});
  Tensor out = w.projection.defined() ? ops::matmul(pooled, w.projection, pool) : pooled;
  normalize_rows(out);
  return out;
}

}  // namespace eight::clip
