// AutoencoderKL's decode and encode, whole or in overlapping tiles blended as diffusers'
// tiled_decode / _tiled_encode blend them, and the planner's bounds for both.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "models/vae/vae_internal.h"

namespace eight::vae {
namespace {

// How diffusers lays tiles over an input of `size` pixels: starts 0, step, 2 * step, ... while
// below size, each `tile` long (or what is left).
std::vector<int64_t> tile_starts(int64_t size, int64_t step) {
  std::vector<int64_t> s;
  for (int64_t i = 0; i < size; i += step) s.push_back(i);
  return s;
}

// The geometry of one tiled run, in input pixels (`tile`, `step`) and output pixels (`blend`,
// `limit`); `num / den` converts input to output pixels (decode 8/1, encode 1/8).
struct TileGrid {
  int64_t tile, step, blend, limit, num, den;
  std::vector<int64_t> ys, xs;        // tile starts in the input
  std::vector<int64_t> out_y, out_x;  // where each tile's kept part lands in the output
  int64_t out_h = 0, out_w = 0;

  TileGrid(int64_t h, int64_t w, int64_t tile_, int64_t step_, int64_t blend_, int64_t limit_,
           int64_t num_, int64_t den_)
      : tile(tile_), step(step_), blend(blend_), limit(limit_), num(num_), den(den_) {
    ys = tile_starts(h, step);
    xs = tile_starts(w, step);
    for (int64_t y : ys) {
      out_y.push_back(out_h);
      out_h += std::min(limit, out_len(y, h));
    }
    for (int64_t x : xs) {
      out_x.push_back(out_w);
      out_w += std::min(limit, out_len(x, w));
    }
  }
  int64_t out_len(int64_t start, int64_t size) const {
    return std::min(tile, size - start) * num / den;
  }
};

// blend_v / blend_h of diffusers' AutoencoderKL: the first e rows (columns) of b fade in over the
// last e of the strip a: b[y] = a[-e + y] * (1 - y / e) + b[y] * (y / e), e = min(a, b, blend).
// a: the last rows (columns) of the neighbour, as modified by its own blends. dim: 2 rows, 3
// columns.
void blend(const Tensor& a, const Tensor& b, int dim, int64_t blend_extent) {
  const int64_t sa = a.size(dim), e = std::min({sa, b.size(dim), blend_extent});
  const int64_t planes = b.size(0) * b.size(1), h = b.size(2), w = b.size(3);
  const int64_t ah = a.size(2), aw = a.size(3);
  for (int64_t p = 0; p < planes; ++p) {
    const float* ap = a.data<float>() + p * ah * aw;
    float* bp = b.data<float>() + p * h * w;
    for (int64_t k = 0; k < e; ++k) {
      // Python computes y / e in double; torch then multiplies the f32 tensors by it as f32.
      const double t = static_cast<double>(k) / static_cast<double>(e);
      const float wa = static_cast<float>(1.0 - t), wb = static_cast<float>(t);
      if (dim == 2) {
        const float* ar = ap + (sa - e + k) * aw;
        float* br = bp + k * w;
        for (int64_t x = 0; x < w; ++x) br[x] = ar[x] * wa + br[x] * wb;
      } else {
        for (int64_t y = 0; y < h; ++y) {
          float& bv = bp[y * w + k];
          bv = ap[y * aw + sa - e + k] * wa + bv * wb;
        }
      }
    }
  }
}

// A contiguous copy of t[..., from:, :] (dim 2) or t[..., :, from:] (dim 3).
Tensor tail(const Tensor& t, int dim, int64_t count) {
  const int64_t size = t.size(dim);
  return t.slice(dim, size - std::min(size, count), size).contiguous();
}

void copy_into(const Tensor& src, const Tensor& dst) {
  const int64_t planes = src.size(0) * src.size(1), h = src.size(2), w = src.size(3);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < h; ++y) {
      const float* s = src.data<float>() + (p * src.size(2) + y) * src.size(3);
      float* d = dst.data<float>() + (p / dst.size(1)) * dst.stride(0) +
                 (p % dst.size(1)) * dst.stride(1) + y * dst.stride(2);
      std::copy_n(s, w, d);
    }
}

// Runs `run` on each tile of x [N, C, H, W] in diffusers' order (rows, then columns), blends each
// result into its upper and left neighbours and keeps its first `limit` rows and columns.
template <class F>
Tensor run_tiled(const Tensor& x, const TileGrid& g, int64_t c_out, F&& run) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  Tensor out = Tensor::empty({n, c_out, g.out_h, g.out_w}, DType::F32);
  std::vector<Tensor> above(g.xs.size());  // bottom rows of the tiles of the previous row
  Tensor left;                             // right columns of the previous tile in this row
  for (size_t i = 0; i < g.ys.size(); ++i)
    for (size_t j = 0; j < g.xs.size(); ++j) {
      const int64_t y0 = g.ys[i], x0 = g.xs[j];
      const Tensor d =
          run(x.slice(2, y0, std::min(h, y0 + g.tile)).slice(3, x0, std::min(w, x0 + g.tile)));
      if (g.blend > 0) {
        if (i > 0) blend(above[j], d, 2, g.blend);
        if (j > 0) blend(left, d, 3, g.blend);
        above[j] = tail(d, 2, g.blend);
        left = tail(d, 3, g.blend);
      }
      const int64_t kh = std::min(g.limit, d.size(2)), kw = std::min(g.limit, d.size(3));
      copy_into(d.slice(2, 0, kh).slice(3, 0, kw).contiguous(),
                out.slice(2, g.out_y[i], g.out_y[i] + kh).slice(3, g.out_x[j], g.out_x[j] + kw));
    }
  return out;
}

void check_tiles(const Tiles& t) {
  check(t.tile >= 0 && t.overlap >= 0 && (t.tile == 0 || t.overlap < t.tile), "[vae] tiles of ",
        t.tile, " latent pixels overlapping by ", t.overlap, ": need 0 <= overlap < tile");
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const Config& Model::config() const {
  return impl_->config;
}
Device Model::device() const {
  return impl_->device;
}
int64_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}

// diffusers tiles when the latent exceeds tile_latent_min_size on either side; then tiles start
// every tile - overlap latent pixels, the last overlap * 8 output rows of a tile blend into the
// next, and each tile keeps (tile - overlap) * 8 rows and columns. diffusers' own setting is
// tile = tile_latent_min_size, overlap = tile - int(0.75 * tile) (equal to its blend of
// int(0.25 * tile_sample_min_size) output pixels when tile is a multiple of 4).
Tensor Model::decode(const Tensor& z, ThreadPool& pool, const Tiles& tiles) const {
  const Config& c = impl_->config;
  check(z.defined() && z.dim() == 4 && z.size(1) == c.latent_channels && z.dtype() == DType::F32,
        "[vae] decode: z must be f32 [N, ", c.latent_channels, ", h, w], got ",
        z.defined() ? z.str() : std::string("undefined"));
  check_tiles(tiles);
  const int64_t h = z.size(2), w = z.size(3), f = impl_->factor();
  if (tiles.tile == 0 || (h <= tiles.tile && w <= tiles.tile)) return run_decoder(*impl_, z, pool);
  const int64_t step = tiles.tile - tiles.overlap;
  const TileGrid g(h, w, tiles.tile, step, tiles.overlap * f, step * f, f, 1);
  return run_tiled(z, g, c.out_channels,
                   [&](const Tensor& t) { return run_decoder(*impl_, t, pool); });
}

Posterior Model::encode(const Tensor& images, ThreadPool& pool, const Tiles& tiles) const {
  const Config& c = impl_->config;
  const int64_t f = impl_->factor();
  check(images.defined() && images.dim() == 4 && images.size(1) == c.in_channels &&
            images.dtype() == DType::F32,
        "[vae] encode: images must be f32 [N, ", c.in_channels, ", H, W], got ",
        images.defined() ? images.str() : std::string("undefined"));
  const int64_t h = images.size(2), w = images.size(3);
  check(h % f == 0 && w % f == 0 && h > 0 && w > 0, "[vae] encode: image size ", h, "x", w,
        " is not a multiple of ", f);
  check_tiles(tiles);
  Tensor moments;  // [N, 2 * latent, h / f, w / f]: mean, then logvar
  if (tiles.tile == 0 || (h <= tiles.tile * f && w <= tiles.tile * f)) {
    moments = run_encoder(*impl_, images, pool);
  } else {
    // _tiled_encode: image tiles of tile * f pixels every (tile - overlap) * f pixels; latents
    // blend over `overlap` and keep tile - overlap.
    const int64_t step = tiles.tile - tiles.overlap;
    const TileGrid g(h, w, tiles.tile * f, step * f, tiles.overlap, step, 1, f);
    moments = run_tiled(images, g, 2 * c.latent_channels,
                        [&](const Tensor& t) { return run_encoder(*impl_, t, pool); });
  }
  // DiagonalGaussianDistribution: mean, logvar = chunk(2); std = exp(0.5 * clamp(logvar, -30, 20)).
  const int64_t l = c.latent_channels;
  Posterior p{moments.slice(1, 0, l).contiguous(), moments.slice(1, l, 2 * l).contiguous()};
  float* s = p.std.data<float>();
  for (int64_t i = 0; i < p.std.numel(); ++i) s[i] = std::exp(0.5f * std::clamp(s[i], -30.f, 20.f));
  return p;
}

int64_t Model::decode_bytes(int64_t n, int64_t h, int64_t w, const Tiles& tiles) const {
  check_tiles(tiles);
  const int64_t f = impl_->factor(), co = impl_->config.out_channels;
  if (tiles.tile == 0 || (h <= tiles.tile && w <= tiles.tile))
    return decoder_peak_bytes(*impl_, n, h, w);
  const int64_t step = tiles.tile - tiles.overlap;
  const TileGrid g(h, w, tiles.tile, step, tiles.overlap * f, step * f, f, 1);
  const int64_t t = tiles.tile * f, b = tiles.overlap * f;
  // The output, the strips kept for blending (one per column plus the left one, and the new
  // pair while the old are alive), one tile's decode with its result, and its cropped copy.
  const int64_t strips = (static_cast<int64_t>(g.xs.size()) + 3) * n * co * b * t * 4 + 1024;
  return n * co * g.out_h * g.out_w * 4 + 64 + strips +
         decoder_peak_bytes(*impl_, n, tiles.tile, tiles.tile) + n * co * t * t * 4 + 64;
}

int64_t Model::encode_bytes(int64_t n, int64_t height, int64_t width, const Tiles& tiles) const {
  check_tiles(tiles);
  const int64_t f = impl_->factor(), l = impl_->config.latent_channels;
  const int64_t h = height / f, w = width / f;
  // The posterior: mean and std, made from the moments (which stay alive until the end).
  const int64_t posterior = 2 * (n * l * h * w * 4 + 64);
  if (tiles.tile == 0 || (height <= tiles.tile * f && width <= tiles.tile * f))
    return encoder_peak_bytes(*impl_, n, height, width) + posterior;
  const int64_t step = tiles.tile - tiles.overlap;
  const TileGrid g(height, width, tiles.tile * f, step * f, tiles.overlap, step, 1, f);
  const int64_t t = tiles.tile, b = tiles.overlap;
  const int64_t strips = (static_cast<int64_t>(g.xs.size()) + 3) * n * 2 * l * b * t * 4 + 1024;
  return n * 2 * l * g.out_h * g.out_w * 4 + 64 + strips +
         encoder_peak_bytes(*impl_, n, tiles.tile * f, tiles.tile * f) + n * 2 * l * t * t * 4 +
         64 + posterior;
}

}  // namespace eight::vae
