// Model::activation_bytes: the forward pass's allocations (unet_forward.cpp) replayed in order on
// a counter, without running anything. Each function here mirrors the one of the same name there.
// On a Vulkan device the count is of device memory: the convolutions' scratch is the Vulkan
// route's (ops/conv.cpp), and the inputs' uploads are held there too.
#include <algorithm>

#include "models/unet/unet_internal.h"
#include "ops/conv.h"

namespace eight::unet {
namespace {

// The Vulkan convolution's tile limit (kDeviceTileBytes in ops/conv.cpp): its unfolded columns
// and its product, each at most this size, live while it runs.
constexpr int64_t kDeviceConvTileBytes = int64_t{32} << 20;
// The Vulkan attention's score chunk limit (kScoreBytes in backend/vulkan/attention_chunked.cpp)
// and the key count from which it takes that route (kChunkedAttentionMinKeys in kernels.cpp).
constexpr int64_t kDeviceScoreBytes = int64_t{32} << 20;
constexpr int64_t kDeviceChunkedMinKeys = 64;

// Bytes held now and the most held at once. On a device, a freed buffer is held until the work
// recorded before the next submit() has run (backend/vulkan/memory.cpp): frees go to `pending`,
// and those of one interval between submits are released once the interval after the next one
// records its first kernel, which waits for that frame: after its first allocation here.
struct Budget {
  bool gpu = false;  // counting a Vulkan forward
  int64_t live = 0, peak = 0;
  // gpu: bytes freed since the last submit, in the interval before, and due at the next alloc
  int64_t pending = 0, older = 0, due = 0;
  void alloc(int64_t floats) { hold(floats * 4); }
  void free(int64_t floats) { drop(floats * 4); }
  // Scratch held only while an op runs.
  void transient(int64_t bytes) {
    if (!gpu) {
      peak = std::max(peak, live + bytes);
      return;
    }
    hold(bytes);
    drop(bytes);
  }
  void submit() {
    due += older;
    older = pending;
    pending = 0;
  }

 private:
  void hold(int64_t bytes) {
    live += bytes;
    peak = std::max(peak, live);
    live -= due;
    due = 0;
  }
  void drop(int64_t bytes) {
    if (gpu)
      pending += bytes;
    else
      live -= bytes;
  }
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
  if (b.gpu) {
    const int64_t kk = x.C * k * k, hw = y.H * y.W;
    const int64_t tile = std::clamp<int64_t>(kDeviceConvTileBytes / (std::max(kk, y.C) * 4), 1, hw);
    b.transient(tile * (kk + y.C) * 4);
    return y;
  }
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

// The Vulkan attention's scratch for tq queries over tk keys of d values per head: a chunk of
// scores and one head's V transposed (none on the direct route).
int64_t device_attention_bytes(int64_t tq, int64_t tk, int64_t d) {
  if (d <= 256 && tk < kDeviceChunkedMinKeys) return 0;
  const int64_t chunk = std::clamp<int64_t>(kDeviceScoreBytes / (tk * 4), 1, tq);
  return (chunk * tk + d * tk) * 4;
}

// transformer(): all of its scratch at once; on a device also image_rows' [R, C] transpose back
// and each attention call's scratch (per sample, self- then cross-attention, in every block).
void transformer(Budget& b, const SpatialTransformer& s, const Image& x, int64_t L) {
  const int64_t R = x.N * x.H * x.W, C = x.C, F = std::min(R, kFeedForwardRows);
  const int64_t bytes = 4 * (5 * R * C + 2 * x.N * L * C + F * 12 * C);
  if (!b.gpu) return b.transient(bytes);
  b.alloc(bytes / 4);
  const int64_t T = x.H * x.W, d = C / s.heads;
  for (size_t i = 0; i < s.blocks.size(); ++i)
    for (int64_t n = 0; n < x.N; ++n) {
      b.transient(device_attention_bytes(T, T, d));
      b.transient(device_attention_bytes(T, L, d));
    }
  b.transient(4 * R * C);  // image_rows' transpose back
  b.free(bytes / 4);
}

}  // namespace

int64_t Model::activation_bytes(int64_t N, int64_t h, int64_t w, int64_t context_len) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  const int64_t ted = c.time_embed_dim;
  Budget b;
  b.gpu = m.device.kind != DeviceKind::CPU;
  b.alloc(N * ted);                                             // emb
  b.transient(4 * N * (c.channels[0] + 2 * ted + m.add_in));    // tproj, t1, aproj, aug
  if (b.gpu) b.alloc(N * context_len * c.cross_attention_dim);  // the context's upload
  std::vector<Image> skips;
  const Image in{N, c.in_channels, h, w};
  if (b.gpu) b.alloc(in.floats());  // x's upload
  Image x = conv(b, m.conv_in, in);
  if (b.gpu) b.free(in.floats());
  skips.push_back(x);
  for (const Level& L : m.down) {
    for (size_t j = 0; j < L.resnets.size(); ++j) {
      x = resblock(b, L.resnets[j], x);  // the input stays held: it is a skip
      b.submit();
      if (!L.attentions.empty()) {
        transformer(b, L.attentions[j], x, context_len);
        b.submit();
      }
      skips.push_back(x);
    }
    if (L.resample.defined()) {
      x = conv(b, L.resample, x, 2);
      skips.push_back(x);
    }
  }
  x = resblock(b, m.mid_res0, x);
  b.submit();
  transformer(b, m.mid_attn, x, context_len);
  b.submit();
  const Image mid = x;
  x = resblock(b, m.mid_res1, x);
  b.free(mid.floats());
  b.submit();
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
      b.submit();
      if (!L.attentions.empty()) {
        transformer(b, L.attentions[j], x, context_len);
        b.submit();
      }
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
