// Model::activation_bytes: the forward pass's allocations (unet_forward.cpp) replayed in order on
// a counter, without running anything. Each function here mirrors the one of the same name there.
#include <algorithm>

#include "models/unet/unet_internal.h"
#include "ops/conv.h"

namespace eight::unet {
namespace {

// Bytes held now and the most held at once.
struct Budget {
  int64_t live = 0, peak = 0;
  void alloc(int64_t floats) {
    live += floats * 4;
    peak = std::max(peak, live);
  }
  void free(int64_t floats) { live -= floats * 4; }
  // Scratch held only while an op runs.
  void transient(int64_t bytes) { peak = std::max(peak, live + bytes); }
};

struct Image {
  int64_t N, C, H, W;
  int64_t floats() const { return N * C * H * W; }
};

// conv(): y, then conv2d's scratch. Returns y's shape.
Image conv(Budget& b, const Conv& c, const Image& x, int64_t stride = 1) {
  const int64_t k = c.weight.shape[2], pad = k / 2;
  const Image y{x.N, c.weight.shape[0], (x.H + 2 * pad - k) / stride + 1,
                (x.W + 2 * pad - k) / stride + 1};
  b.alloc(y.floats());
  b.transient(ops::conv2d_scratch_bytes({x.N, x.C, x.H, x.W}, c.weight.shape, c.weight.w.dtype(),
                                        {.stride = {stride, stride}, .padding = {pad, pad}},
                                        /*prepared=*/true));
  return y;
}

// resblock(): h, conv1's y, t, conv2's out, the shortcut's s; returns with out held.
Image resblock(Budget& b, const ResBlock& r, const Image& x) {
  b.alloc(x.floats());  // h
  const Image y = conv(b, r.conv1, x);
  b.free(x.floats());
  b.alloc(x.N * r.c_out);  // t
  b.free(x.N * r.c_out);
  const Image out = conv(b, r.conv2, y);
  b.free(y.floats());
  if (r.shortcut.defined()) b.free(conv(b, r.shortcut, x).floats());
  return out;
}

// transformer(): all of its scratch at once.
void transformer(Budget& b, const Image& x, int64_t L) {
  const int64_t R = x.N * x.H * x.W, C = x.C, F = std::min(R, kFeedForwardRows);
  b.transient(4 * (5 * R * C + 2 * x.N * L * C + F * 12 * C));
}

}  // namespace

int64_t Model::activation_bytes(int64_t N, int64_t h, int64_t w, int64_t context_len) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  const int64_t ted = c.time_embed_dim;
  Budget b;
  b.alloc(N * ted);                                           // emb
  b.transient(4 * N * (c.channels[0] + 2 * ted + m.add_in));  // tproj, t1, aproj, aug
  std::vector<Image> skips;
  Image x = conv(b, m.conv_in, {N, c.in_channels, h, w});
  skips.push_back(x);
  for (const Level& L : m.down) {
    for (size_t j = 0; j < L.resnets.size(); ++j) {
      x = resblock(b, L.resnets[j], x);  // the input stays held: it is a skip
      if (!L.attentions.empty()) transformer(b, x, context_len);
      skips.push_back(x);
    }
    if (L.resample.defined()) {
      x = conv(b, L.resample, x, 2);
      skips.push_back(x);
    }
  }
  x = resblock(b, m.mid_res0, x);
  transformer(b, x, context_len);
  const Image mid = x;
  x = resblock(b, m.mid_res1, x);
  b.free(mid.floats());
  for (const Level& L : m.up) {
    for (size_t j = 0; j < L.resnets.size(); ++j) {
      const Image s = skips.back();
      const Image cat{N, x.C + s.C, x.H, x.W};
      b.alloc(cat.floats());
      skips.pop_back();
      b.free(s.floats());
      b.free(x.floats());
      x = resblock(b, L.resnets[j], cat);
      b.free(cat.floats());
      if (!L.attentions.empty()) transformer(b, x, context_len);
    }
    if (L.resample.defined()) {
      const Image u{N, x.C, skips.back().H, skips.back().W};
      b.alloc(u.floats());
      b.free(x.floats());
      x = conv(b, L.resample, u);
      b.free(u.floats());
    }
  }
  b.alloc(x.floats());  // t = silu(conv_norm_out(h))
  b.free(x.floats());
  conv(b, m.conv_out, x);
  return b.peak;
}

}  // namespace eight::unet
