#include "runtime/plan/diffusion.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/safetensors.h"
#include "ops/conv.h"
#include "runtime/plan/clip.h"
#include "runtime/plan/scratch_peak.h"

namespace eight {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using plan_detail::ScratchPeak;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[planner] cannot open '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A component folder's headers, from the same files sdxl_load.cpp reads.
ImageComponent read_component(const fs::path& dir) {
  ImageComponent c;
  if (fs::exists(dir / "config.json")) c.config = read_text(dir / "config.json");
  for (const char* stem : {"diffusion_pytorch_model", "model"})
    for (const char* variant : {"", ".fp16"})
      for (const char* ext : {".safetensors", ".safetensors.index.json"}) {
        const fs::path f = dir / (std::string(stem) + variant + ext);
        if (!fs::exists(f)) continue;
        const auto ckpt = safetensors::Checkpoint::open(f.string());
        for (const auto& file : ckpt.files()) {
          c.file_bytes += static_cast<int64_t>(fs::file_size(file.path()));
          for (const auto& t : file.tensors())
            if (!t.name.ends_with("position_ids"))
              c.tensors[t.name] = {t.shape, safetensors::view_dtype(t)};
        }
        return c;
      }
  fail("[planner] '", dir.string(), "' holds no diffusion_pytorch_model.safetensors or ",
       "model.safetensors");
}

// "2.57 B", "83.7 M", "12.3 k".
std::string format_params(int64_t n) {
  char b[32];
  if (n >= 1000000000)
    std::snprintf(b, sizeof b, "%.2f B", static_cast<double>(n) / 1e9);
  else if (n >= 1000000)
    std::snprintf(b, sizeof b, "%.1f M", static_cast<double>(n) / 1e6);
  else
    std::snprintf(b, sizeof b, "%.1f k", static_cast<double>(n) / 1e3);
  return b;
}

int64_t f32_bytes(int64_t n) {
  return (n * 4 + 63) / 64 * 64;
}

// ---- The UNet: unet_memory.cpp's walk of unet_forward.cpp's allocations, from the headers ----

// On a device (gpu) a freed buffer is held until the work recorded before the next submit has
// run: unet_memory.cpp's Budget, which the UNet's device forward follows (it submits after every
// block).
struct Budget {
  bool gpu = false;
  int64_t live = 0, peak = 0;
  int64_t pending = 0, older = 0, due = 0;
  void alloc(int64_t floats) { hold(floats * 4); }
  void free(int64_t floats) { drop(floats * 4); }
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

// The Vulkan routes' scratch (ops/conv.cpp kDeviceTileBytes; backend/vulkan/attention_chunked.cpp
// kScoreBytes, taken from kChunkedAttentionMinKeys keys or heads wider than 256).
constexpr int64_t kDeviceConvTileBytes = int64_t{32} << 20;
constexpr int64_t kDeviceScoreBytes = int64_t{32} << 20;
constexpr int64_t kDeviceChunkedMinKeys = 64;

// One Vulkan convolution's unfolded tile and its product: kk = C_in * kh * kw, hw output pixels.
int64_t device_conv_bytes(int64_t kk, int64_t c_out, int64_t hw) {
  const int64_t tile = std::clamp<int64_t>(kDeviceConvTileBytes / (std::max(kk, c_out) * 4), 1, hw);
  return tile * (kk + c_out) * 4;
}

// One Vulkan attention call of tq queries over tk keys, d values per head: a chunk of scores and
// one head's V transposed (none on the direct route).
int64_t device_attention_bytes(int64_t tq, int64_t tk, int64_t d) {
  if (d <= 256 && tk < kDeviceChunkedMinKeys) return 0;
  const int64_t chunk = std::clamp<int64_t>(kDeviceScoreBytes / (tk * 4), 1, tq);
  return (chunk * tk + d * tk) * 4;
}

struct Image {
  int64_t N, C, H, W;
  int64_t floats() const { return N * C * H * W; }
};

// ops::conv2d's product per sample: tiles of im2col rows against the [C_out, kk] weight.
void conv_products(ScratchPeak* s, const TensorHeader& w, int64_t hw) {
  if (!s) return;
  const int64_t kk = w.shape[1] * w.shape[2] * w.shape[3];
  const int64_t tile = std::clamp<int64_t>((int64_t{8} << 20) / (kk * 4), 16, hw);
  s->add(w.type, tile, kk);
  if (hw % tile) s->add(w.type, hw % tile, kk);
}

struct UNetWalk {
  const ImageComponent& u;
  ScratchPeak* s;
  Budget b;

  Image conv(const std::string& name, const Image& x, int64_t stride = 1) {
    const TensorHeader& w = u.at(name + ".weight");
    const int64_t k = w.shape[2], pad = k / 2;
    const Image y{x.N, w.shape[0], (x.H + 2 * pad - k) / stride + 1,
                  (x.W + 2 * pad - k) / stride + 1};
    b.alloc(y.floats());
    if (b.gpu) {
      b.transient(device_conv_bytes(x.C * k * k, y.C, y.H * y.W));
      return y;
    }
    // The UNet prepares its convolution weights once at load (ops::Conv2dWeight).
    b.transient(ops::conv2d_scratch_bytes({x.N, x.C, x.H, x.W}, w.shape, w.type,
                                          {.stride = {stride, stride}, .padding = {pad, pad}},
                                          /*prepared=*/true));
    conv_products(s, w, y.H * y.W);
    return y;
  }
  void linear(const std::string& name, int64_t rows) {
    if (!s) return;
    const TensorHeader& w = u.at(name + ".weight");
    s->add(w.type, rows, w.numel() / w.shape[0]);
  }
  Image resblock(const std::string& p, const Image& x) {
    const int64_t c_out = u.at(p + ".conv1.weight").shape[0];
    b.alloc(x.floats());  // h
    const Image y = conv(p + ".conv1", x);
    b.free(x.floats());
    b.alloc(x.N * c_out);  // t
    linear(p + ".time_emb_proj", x.N);
    b.free(x.N * c_out);
    const Image out = conv(p + ".conv2", y);
    b.free(y.floats());
    if (u.has(p + ".conv_shortcut.weight")) b.free(conv(p + ".conv_shortcut", x).floats());
    return out;
  }
  void transformer(const std::string& p, const Image& x, int64_t L, int64_t heads) {
    const int64_t R = x.N * x.H * x.W, C = x.C, F = std::min<int64_t>(R, 512);
    const int64_t bytes = 4 * (5 * R * C + 2 * x.N * L * C + F * 12 * C);
    if (b.gpu) {
      // All of it held through the block, each attention call's scratch, the transpose back.
      b.alloc(bytes / 4);
      const int64_t T = x.H * x.W, d = C / heads;
      for (int i = 0; u.has(cat(p, ".transformer_blocks.", i, ".attn1.to_q.weight")); ++i)
        for (int64_t n = 0; n < x.N; ++n) {
          b.transient(device_attention_bytes(T, T, d));
          b.transient(device_attention_bytes(T, L, d));
        }
      b.transient(4 * R * C);
      b.free(bytes / 4);
      return;
    }
    b.transient(bytes);
    if (!s) return;
    linear(p + ".proj_in", R);
    linear(p + ".proj_out", R);
    for (int d = 0; u.has(cat(p, ".transformer_blocks.", d, ".attn1.to_q.weight")); ++d) {
      const std::string t = cat(p, ".transformer_blocks.", d, ".");
      for (const char* n : {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                            "attn2.to_q", "attn2.to_out.0"})
        linear(t + n, R);
      linear(t + "attn2.to_k", x.N * L);
      linear(t + "attn2.to_v", x.N * L);
      for (const char* n : {"ff.net.0.proj", "ff.net.2"}) {
        linear(t + n, F);
        if (R % F) linear(t + n, R % F);
      }
      s->add_attention(C);  // heads of C / heads values: bounded by one head of C
    }
  }
};

int64_t count_of(const ImageComponent& c, const std::string& prefix, const std::string& suffix) {
  int n = 0;
  while (c.has(cat(prefix, n, suffix))) ++n;
  return n;
}

// Attention heads per level (diffusers' num_attention_heads, or attention_head_dim which holds
// the counts when it is absent; unet_config.cpp), else heads of 64 values.
std::vector<int64_t> unet_heads(const ImageComponent& u, int64_t levels) {
  std::vector<int64_t> heads(static_cast<size_t>(levels), 0);
  const json j = u.config.empty() ? json() : json::parse(u.config, nullptr, false);
  if (j.is_object()) {
    const char* key = j.contains("num_attention_heads") && !j["num_attention_heads"].is_null()
                          ? "num_attention_heads"
                          : "attention_head_dim";
    if (j.contains(key)) {
      const json& v = j[key];
      for (int64_t i = 0; i < levels; ++i) {
        const json& e =
            v.is_array() && static_cast<int64_t>(v.size()) > i ? v[static_cast<size_t>(i)] : v;
        if (e.is_number_integer()) heads[static_cast<size_t>(i)] = e.get<int64_t>();
      }
    }
  }
  for (int64_t i = 0; i < levels; ++i)
    if (heads[static_cast<size_t>(i)] <= 0)
      heads[static_cast<size_t>(i)] = std::max<int64_t>(
          1, u.at(cat("down_blocks.", i, ".resnets.0.conv1.weight")).shape[0] / 64);
  return heads;
}

int64_t unet_walk(const ImageComponent& u, int64_t N, int64_t h, int64_t w, int64_t L,
                  ScratchPeak* s, bool gpu = false) {
  UNetWalk k{u, s, {}};
  Budget& b = k.b;
  b.gpu = gpu;
  const TensorHeader& conv_in = u.at("conv_in.weight");
  const int64_t c0 = conv_in.shape[0], ted = u.at("time_embedding.linear_1.weight").shape[0];
  const TensorHeader& add1 = u.at("add_embedding.linear_1.weight");
  const int64_t add_in = add1.shape[1];
  b.alloc(N * ted);
  b.transient(4 * N * (c0 + 2 * ted + add_in));
  const int64_t cross =
      u.at("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight").shape[1];
  if (gpu) b.alloc(N * L * cross);  // the context's upload
  k.linear("time_embedding.linear_1", N);
  k.linear("time_embedding.linear_2", N);
  k.linear("add_embedding.linear_1", N);
  k.linear("add_embedding.linear_2", N);
  std::vector<Image> skips;
  const Image in{N, conv_in.shape[1], h, w};
  if (gpu) b.alloc(in.floats());  // x's upload
  Image x = k.conv("conv_in", in);
  if (gpu) b.free(in.floats());
  skips.push_back(x);
  const int64_t levels = count_of(u, "down_blocks.", ".resnets.0.conv1.weight");
  const std::vector<int64_t> heads = unet_heads(u, levels);
  for (int64_t i = 0; i < levels; ++i) {
    const std::string p = cat("down_blocks.", i);
    for (int64_t j = 0; u.has(cat(p, ".resnets.", j, ".conv1.weight")); ++j) {
      x = k.resblock(cat(p, ".resnets.", j), x);
      b.submit();
      if (u.has(cat(p, ".attentions.", j, ".proj_in.weight"))) {
        k.transformer(cat(p, ".attentions.", j), x, L, heads[static_cast<size_t>(i)]);
        b.submit();
      }
      skips.push_back(x);
    }
    if (u.has(p + ".downsamplers.0.conv.weight")) {
      x = k.conv(p + ".downsamplers.0.conv", x, 2);
      skips.push_back(x);
    }
  }
  x = k.resblock("mid_block.resnets.0", x);
  b.submit();
  k.transformer("mid_block.attentions.0", x, L, heads.back());
  b.submit();
  const Image mid = x;
  x = k.resblock("mid_block.resnets.1", x);
  b.free(mid.floats());
  b.submit();
  for (int64_t i = 0; i < levels; ++i) {
    const std::string p = cat("up_blocks.", i);
    for (int64_t j = 0; u.has(cat(p, ".resnets.", j, ".conv1.weight")); ++j) {
      const Image sk = skips.back();
      const Image c{N, x.C + sk.C, x.H, x.W};
      b.alloc(c.floats());
      skips.pop_back();
      b.free(sk.floats());
      b.free(x.floats());
      x = k.resblock(cat(p, ".resnets.", j), c);
      b.free(c.floats());
      b.submit();
      if (u.has(cat(p, ".attentions.", j, ".proj_in.weight"))) {
        k.transformer(cat(p, ".attentions.", j), x, L, heads[static_cast<size_t>(levels - 1 - i)]);
        b.submit();
      }
    }
    if (u.has(p + ".upsamplers.0.conv.weight")) {
      const Image up{N, x.C, skips.back().H, skips.back().W};
      b.alloc(up.floats());
      b.free(x.floats());
      x = k.conv(p + ".upsamplers.0.conv", up);
      b.free(up.floats());
    }
  }
  b.alloc(x.floats());
  b.free(x.floats());
  k.conv("conv_out", x);
  return b.peak;
}

// ---- The VAE decoder: vae_blocks.cpp's decoder_peak_bytes, from the headers ----

struct Bill {
  int64_t live = 0, peak = 0;
  void add(int64_t v) {
    live += v;
    peak = std::max(peak, live);
  }
  void sub(int64_t v) { live -= v; }
  void spike(int64_t v) { peak = std::max(peak, live + v); }
};

struct Shape {
  int64_t n, c, h, w;
  int64_t bytes() const { return f32_bytes(n * c * h * w); }
};

struct VAEWalk {
  const ImageComponent& v;
  ScratchPeak* s;
  Bill b;

  Shape conv(const std::string& name, const Shape& in) {
    const TensorHeader& w = v.at(name + ".weight");
    const Shape out{in.n, w.shape[0], in.h, in.w};
    b.add(out.bytes());
    const int64_t co = w.shape[0], kk = w.shape[1] * w.shape[2] * w.shape[3];
    const int64_t tile = std::clamp<int64_t>((int64_t{8} << 20) / (kk * 4), 16, out.h * out.w);
    const int64_t wbytes = (static_cast<int64_t>(dtype_row_bytes(w.type, co * kk)) + 63) / 64 * 64;
    b.spike(wbytes + f32_bytes(in.c * in.h * in.w) + f32_bytes(tile * kk) + f32_bytes(tile * co));
    conv_products(s, w, out.h * out.w);
    return out;
  }
  Shape resnet(const std::string& p, const Shape& in) {
    b.add(in.bytes());
    const Shape h2 = conv(p + ".conv1", in);
    b.sub(in.bytes());
    const Shape y = conv(p + ".conv2", h2);
    b.sub(h2.bytes());
    if (v.has(p + ".conv_shortcut.weight")) {
      conv(p + ".conv_shortcut", in);
      b.sub(y.bytes());
    }
    return y;
  }
  template <class F>
  Shape step(const Shape& x, F&& f) {
    const Shape y = f();
    b.sub(x.bytes());
    return y;
  }
};

int64_t decoder_walk(const ImageComponent& v, int64_t n, int64_t h, int64_t w, ScratchPeak* s) {
  VAEWalk k{v, s, {}};
  Shape x{n, v.at("decoder.conv_in.weight").shape[1], h, w};
  k.b.add(x.bytes());
  if (v.has("post_quant_conv.weight")) x = k.step(x, [&] { return k.conv("post_quant_conv", x); });
  x = k.step(x, [&] { return k.conv("decoder.conv_in", x); });
  x = k.step(x, [&] {
    const Shape y = k.resnet("decoder.mid_block.resnets.0", x);
    if (v.has("decoder.mid_block.attentions.0.to_q.weight")) {
      const int64_t one = f32_bytes(y.c * y.h * y.w);
      k.b.spike(4 * one);
      k.b.spike(3 * one + one);
      if (s) {
        for (const char* p : {"to_q", "to_k", "to_v", "to_out.0"}) {
          const TensorHeader& t = v.at(cat("decoder.mid_block.attentions.0.", p, ".weight"));
          s->add(t.type, y.h * y.w, t.numel() / t.shape[0]);
        }
        s->add_attention(y.c);
      }
    }
    const Shape z = k.resnet("decoder.mid_block.resnets.1", y);
    k.b.sub(y.bytes());
    return z;
  });
  for (int i = 0; v.has(cat("decoder.up_blocks.", i, ".resnets.0.conv1.weight")); ++i) {
    const std::string p = cat("decoder.up_blocks.", i);
    for (int j = 0; v.has(cat(p, ".resnets.", j, ".conv1.weight")); ++j)
      x = k.step(x, [&] { return k.resnet(cat(p, ".resnets.", j), x); });
    if (v.has(p + ".upsamplers.0.conv.weight")) {
      x = k.step(x, [&] {
        const Shape up{x.n, x.c, 2 * x.h, 2 * x.w};
        k.b.add(up.bytes());
        return up;
      });
      x = k.step(x, [&] { return k.conv(p + ".upsamplers.0.conv", x); });
    }
  }
  k.conv("decoder.conv_out", x);
  return k.b.peak;
}

int64_t vae_factor(const ImageComponent& v) {
  int64_t f = 1;
  for (int i = 0; v.has(cat("decoder.up_blocks.", i, ".resnets.0.conv1.weight")); ++i)
    if (v.has(cat("decoder.up_blocks.", i, ".upsamplers.0.conv.weight"))) f *= 2;
  return f;
}

int64_t decode_walk(const ImageComponent& v, int64_t n, int64_t h, int64_t w, int64_t tile,
                    int64_t overlap, ScratchPeak* s) {
  check(tile >= 0 && overlap >= 0 && (tile == 0 || overlap < tile), "[planner] VAE tiles of ", tile,
        " latent pixels overlapping by ", overlap, ": need 0 <= overlap < tile");
  if (tile == 0 || (h <= tile && w <= tile)) return decoder_walk(v, n, h, w, s);
  // vae_model.cpp decode_bytes: the output, the blend strips, one tile's decode and its crop.
  const int64_t f = vae_factor(v), co = v.at("decoder.conv_out.weight").shape[0];
  const int64_t step = tile - overlap, t = tile * f, bl = overlap * f;
  auto out_len = [&](int64_t size) {
    int64_t len = 0, starts = 0;
    for (int64_t i = 0; i < size; i += step, ++starts)
      len += std::min(step * f, std::min(tile, size - i) * f);
    return std::pair{len, starts};
  };
  const auto [out_h, rows] = out_len(h);
  const auto [out_w, cols] = out_len(w);
  (void)rows;
  const int64_t strips = (cols + 3) * n * co * bl * t * 4 + 1024;
  return n * co * out_h * out_w * 4 + 64 + strips + decoder_walk(v, n, tile, tile, s) +
         n * co * t * t * 4 + 64;
}

// The VAE decoder on a device (vae_blocks.cpp run_decoder), in its allocation order: the latents'
// upload, each conv's output and Vulkan tiles, each resnet's h, h2 and shortcut, the mid
// attention's [C, T] / [T, C] buffers and score chunk per sample, the upsampled images; freed
// buffers are held as the device holds them (run_decoder submits after every block; Budget).
// Per tile when tiled: each tile downloads its output, which releases everything.
int64_t device_decoder_walk(const ImageComponent& v, int64_t n, int64_t h, int64_t w) {
  Budget b;
  b.gpu = true;
  auto floats = [](const Shape& s) { return s.n * s.c * s.h * s.w; };
  auto conv = [&](const std::string& name, const Shape& in) {
    const TensorHeader& wt = v.at(name + ".weight");
    const Shape out{in.n, wt.shape[0], in.h, in.w};
    b.alloc(floats(out));
    b.transient(device_conv_bytes(wt.shape[1] * wt.shape[2] * wt.shape[3], out.c, out.h * out.w));
    return out;
  };
  auto resnet = [&](const std::string& p, const Shape& in) {
    b.alloc(floats(in));  // h
    const Shape h2 = conv(p + ".conv1", in);
    b.free(floats(in));
    const Shape y = conv(p + ".conv2", h2);
    b.free(floats(h2));
    if (v.has(p + ".conv_shortcut.weight")) b.free(floats(conv(p + ".conv_shortcut", in)));
    return y;
  };
  // x = f(x): the new x, then the old one freed.
  auto step = [&](Shape& x, const Shape& y) {
    b.free(floats(x));
    x = y;
  };
  Shape x{n, v.at("decoder.conv_in.weight").shape[1], h, w};
  if (v.has("post_quant_conv.weight")) x.c = v.at("post_quant_conv.weight").shape[1];
  b.alloc(floats(x));  // z's upload
  if (v.has("post_quant_conv.weight")) step(x, conv("post_quant_conv", x));
  step(x, conv("decoder.conv_in", x));
  b.submit();
  {
    const Shape mid = resnet("decoder.mid_block.resnets.0", x);
    if (v.has("decoder.mid_block.attentions.0.to_q.weight")) {
      const int64_t c = mid.c, t = mid.h * mid.w;
      for (int64_t i = 0; i < mid.n; ++i) {
        b.alloc(c * t);  // g
        b.alloc(c * t);  // gt
        b.free(c * t);
        b.alloc(3 * c * t);  // q, k, v
        b.free(c * t);       // gt
        b.alloc(c * t);      // o
        b.transient(device_attention_bytes(t, t, c));
        b.free(3 * c * t);
        b.alloc(c * t);  // out
        b.free(c * t);   // o
        b.alloc(c * t);  // back
        b.free(c * t);   // out
        b.free(c * t);   // back
      }
    }
    const Shape y = resnet("decoder.mid_block.resnets.1", mid);
    b.free(floats(mid));
    step(x, y);
  }
  b.submit();
  for (int i = 0; v.has(cat("decoder.up_blocks.", i, ".resnets.0.conv1.weight")); ++i) {
    const std::string p = cat("decoder.up_blocks.", i);
    for (int j = 0; v.has(cat(p, ".resnets.", j, ".conv1.weight")); ++j) {
      step(x, resnet(cat(p, ".resnets.", j), x));
      b.submit();
    }
    if (v.has(p + ".upsamplers.0.conv.weight")) {
      const Shape u{x.n, x.c, 2 * x.h, 2 * x.w};
      b.alloc(floats(u));
      step(x, u);
      step(x, conv(p + ".upsamplers.0.conv", x));
      b.submit();
    }
  }
  conv("decoder.conv_out", x);
  return b.peak;
}

int64_t device_decode_bytes(const ImageComponent& v, int64_t n, int64_t h, int64_t w,
                            int64_t tile) {
  if (tile == 0 || (h <= tile && w <= tile)) return device_decoder_walk(v, n, h, w);
  return device_decoder_walk(v, n, std::min(h, tile), std::min(w, tile));
}

// ---- Text encoders ----

struct TextShape {
  int64_t D = 0, I = 0, heads = 0, P = 0;
  DType type = DType::F32;
};

TextShape text_shape(const ImageComponent& c) {
  TextShape t;
  const TensorHeader& emb = c.at("text_model.embeddings.token_embedding.weight");
  t.D = emb.shape[1];
  const TensorHeader& fc1 = c.at("text_model.encoder.layers.0.mlp.fc1.weight");
  t.I = fc1.shape[0];
  t.type = fc1.type;
  if (const TensorHeader* p = c.find("text_projection.weight")) t.P = p->shape[0];
  t.heads = std::max<int64_t>(1, t.D / 64);
  if (!c.config.empty()) {
    const json j = json::parse(c.config, nullptr, false);
    if (j.is_object() && j.contains("num_attention_heads") &&
        j["num_attention_heads"].is_number_integer())
      t.heads = j["num_attention_heads"].get<int64_t>();
  }
  return t;
}

// One encode(): the tower's activations, then the hidden states and pooled rows it returns.
int64_t text_work(const TextShape& t, int64_t n, int threads) {
  constexpr int64_t L = 77;
  return clip_text_activation_bytes(t.D, t.I, t.heads, L, n, t.P, threads);
}
int64_t text_output(const TextShape& t, int64_t n) {
  return f32_bytes(n * 77 * t.D) + f32_bytes(n * t.D) + (t.P ? f32_bytes(n * t.P) : 0);
}
void text_products(ScratchPeak& s, const TextShape& t, int64_t n) {
  const int64_t rows = n * 77, d = t.D / t.heads;
  s.add(t.type, rows, t.D);
  s.add(t.type, rows, t.I);
  s.add(t.type, n, t.D);
  s.add_per_thread(DType::F32, 77, d);
  s.add_per_thread(DType::F32, 77, 77);
}

// One text encoder's tower on a device (clip_model.cpp run_tower_on_device): the input's upload,
// h, h2, q, k, v, attn [rows, D], ff [rows, I], and each attention call's scratch (one per window
// per layer), all held until the output's download.
int64_t device_text_bytes(const ImageComponent& c, const TextShape& t, int64_t n) {
  const int64_t rows = 77 * n,
                layers = count_of(c, "text_model.encoder.layers.", ".mlp.fc1.weight");
  return 4 * rows * (7 * t.D + t.I) + layers * n * device_attention_bytes(77, 77, t.D / t.heads);
}

// The weights a device holds: every tensor in its own type (quantized blocks stay quantized),
// vectors as f32, each buffer in whole 32-bit words. `prefix`: only the tensors under it.
int64_t device_weight_bytes(const ImageComponent& c, const std::string& prefix = "") {
  int64_t b = 0;
  for (const auto& [name, t] : c.tensors) {
    if (!name.starts_with(prefix)) continue;
    const int64_t bytes = t.shape.size() == 1
                              ? t.numel() * 4
                              : static_cast<int64_t>(dtype_row_bytes(t.type, t.numel()));
    b += (bytes + 3) / 4 * 4;
  }
  return b;
}

// The f32 copies the loaders make: norms and biases (and the text encoders' position embeddings)
// of other types; the VAE copies its vectors whatever their type.
int64_t copies(const ImageComponent& c, bool always) {
  int64_t b = 0;
  for (const auto& [name, t] : c.tensors) {
    const bool vector = t.shape.size() == 1 || name.ends_with("position_embedding.weight");
    if (vector && (always || t.type != DType::F32)) b += f32_bytes(t.numel());
  }
  return b;
}

// The UNet's convolution weights reordered once at load (ops::conv2d_prepare_weight): a copy of
// each kernel larger than 1x1, in its own type (1x1 weights are used as views).
int64_t prepared_conv_bytes(const ImageComponent& unet) {
  int64_t b = 0;
  for (const auto& [name, t] : unet.tensors)
    if (t.shape.size() == 4 && t.shape[2] * t.shape[3] > 1)
      b += (t.numel() * (t.type == DType::F32 ? 4 : 2) + 63) / 64 * 64;
  return b;
}

}  // namespace

const TensorHeader* ImageComponent::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const TensorHeader& ImageComponent::at(const std::string& name) const {
  const TensorHeader* t = find(name);
  check(t != nullptr, "[planner] the checkpoint has no tensor '", name, "'");
  return *t;
}

int64_t ImageModelDesc::file_bytes() const {
  return unet.file_bytes + vae.file_bytes + text_encoder.file_bytes + text_encoder_2.file_bytes;
}

int64_t ImageModelDesc::heap_bytes() const {
  return unet.heap_bytes + vae.heap_bytes + text_encoder.heap_bytes + text_encoder_2.heap_bytes;
}

ImageModelDesc describe_image_model(const std::string& path) {
  const fs::path root(path);
  check(fs::is_directory(root) && fs::exists(root / "model_index.json"), "[planner] '", path,
        "' is not a diffusers folder (model_index.json); single-file image checkpoints are not "
        "planned yet");
  ImageModelDesc d;
  d.path = path;
  d.name =
      root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  d.unet = read_component(root / "unet");
  d.vae = read_component(root / "vae");
  d.text_encoder = read_component(root / "text_encoder");
  d.text_encoder_2 = read_component(root / "text_encoder_2");
  return d;
}

int64_t unet_activation_bytes(const ImageComponent& unet, int64_t N, int64_t h, int64_t w,
                              int64_t context_len, bool on_device) {
  return unet_walk(unet, N, h, w, context_len, nullptr, on_device);
}

int64_t vae_decode_bytes(const ImageComponent& vae, int64_t n, int64_t h, int64_t w, int64_t tile,
                         int64_t overlap) {
  return decode_walk(vae, n, h, w, tile, overlap, nullptr);
}

int64_t vae_decode_scratch_bytes(const ImageComponent& vae, int64_t h, int64_t w, int64_t tile,
                                 int64_t overlap, int threads) {
  ScratchPeak s;
  decode_walk(vae, 1, h, w, tile, overlap, &s);
  return s.bytes(threads);
}

ImagePlan plan_image(const ImageModelDesc& m, const ImagePlanRequest& r) {
  check(r.width > 0 && r.height > 0 && r.width % 8 == 0 && r.height % 8 == 0, "[planner] ",
        "image size ", r.width, "x", r.height, " is not a positive multiple of 8");
  check(r.windows >= 1, "[planner] at least one prompt window");
  ImagePlan plan;
  plan.model = m.name;
  plan.request = r;
  const int threads = r.n_threads > 0 ? r.n_threads : default_thread_count();
  plan.request.n_threads = threads;
  const int64_t ram = r.ram > 0 ? r.ram : system_ram_budget();
  plan.request.ram = ram;

  const int64_t N = r.guided ? 2 : 1, h = r.height / 8, w = r.width / 8, Lc = 77 * r.windows;
  const int64_t C = m.unet.at("conv_in.weight").shape[1];
  const TextShape t1 = text_shape(m.text_encoder), t2 = text_shape(m.text_encoder_2);
  const int64_t Dc = t1.D + t2.D, P = t2.P ? t2.P : t2.D;

  for (const auto& [id, c] : {std::pair{"unet", &m.unet},
                              {"vae", &m.vae},
                              {"text_encoder", &m.text_encoder},
                              {"text_encoder_2", &m.text_encoder_2}}) {
    int64_t params = 0;
    std::map<DType, int64_t> by_type;
    for (const auto& [name, t] : c->tensors) {
      params += t.numel();
      by_type[t.type] += t.numel();
    }
    const auto main = std::max_element(by_type.begin(), by_type.end(),
                                       [](auto& a, auto& b) { return a.second < b.second; });
    plan.components.push_back({.what = id,
                               .bytes = c->file_bytes,
                               .why = cat(main == by_type.end() ? "-" : dtype_name(main->first),
                                          ", ", format_params(params), " parameters"),
                               .mapped = true});
  }
  plan.mapped_bytes = m.file_bytes();
  plan.copied_bytes = copies(m.unet, false) + copies(m.text_encoder, false) +
                      copies(m.text_encoder_2, false) + copies(m.vae, true) +
                      prepared_conv_bytes(m.unet) + m.heap_bytes();

  ScratchPeak scratch;
  // Text: one prompt's encode (and the negative prompt's when guided) while the noise and the
  // first embedding are held.
  const int64_t latent = f32_bytes(C * h * w);
  const int64_t embed = f32_bytes(Lc * Dc) + f32_bytes(P);
  const int64_t out1 = text_output(t1, r.windows), out2 = text_output(t2, r.windows);
  const int64_t text = latent + (r.guided ? embed : 0) +
                       std::max({text_work(t1, r.windows, threads),
                                 out1 + text_work(t2, r.windows, threads), out1 + out2 + embed});
  text_products(scratch, t1, r.windows);
  text_products(scratch, t2, r.windows);

  // What generate() holds from the loop on: noise, latents x, the UNet input [N, C, h, w], the
  // guided output, both embeddings, context [N, Lc, Dc], text_embeds, time_ids, and the
  // scheduler's step buffers (two latents).
  const int64_t held = 4 * latent + f32_bytes(N * C * h * w) + (r.guided ? 2 : 1) * embed +
                       f32_bytes(N * Lc * Dc) + f32_bytes(N * P) + f32_bytes(N * 6);
  plan.unet_bytes = unet_walk(m.unet, N, h, w, Lc, &scratch);
  const int64_t denoise = held + plan.unet_bytes;

  // Decode: the latents / scaling_factor [1, C, h, w], then the decoder, whole or in tiles: the
  // largest tile (a multiple of 8 latent pixels, overlap a quarter of it) that fits.
  const int64_t base = plan.mapped_bytes + plan.copied_bytes;
  auto decode_stage = [&](int64_t tile, ScratchPeak* s) {
    return held + latent + decode_walk(m.vae, 1, h, w, tile, tile / 4, s);
  };
  // The device bill's weights and its text and denoise stages (the decode's depends on the tile).
  const int64_t dev_weights = device_weight_bytes(m.unet) + device_weight_bytes(m.vae) +
                              device_weight_bytes(m.text_encoder, "text_model.encoder.layers.") +
                              device_weight_bytes(m.text_encoder_2, "text_model.encoder.layers.");
  const int64_t dev_text = std::max(device_text_bytes(m.text_encoder, t1, r.windows),
                                    device_text_bytes(m.text_encoder_2, t2, r.windows));
  const int64_t dev_denoise = unet_walk(m.unet, N, h, w, Lc, nullptr, /*gpu=*/true);
  int64_t tile = r.vae_tile;
  if (tile < 0) {
    tile = 0;
    auto total = [&](int64_t t) {
      ScratchPeak s = scratch;
      const int64_t d = decode_stage(t, &s);
      return base + s.bytes(threads) + std::max({text, denoise, d});
    };
    // Else the tile that needs least, when tiles need less than the whole image (the plan then
    // says by how much the run misses the budget).
    // On a GPU the device bill decides: the decoder's buffers are held to its end.
    auto dev_total = [&](int64_t t) { return device_decode_bytes(m.vae, 1, h, w, t); };
    // The stages run one at a time: the decode has what the weights and reserve leave.
    const int64_t dev_room = r.vram - r.gpu_reserve - dev_weights;
    if (r.vram > 0 && dev_total(0) > dev_room) {
      for (int64_t t = (std::max(h, w) + 7) / 8 * 8 - 8; t >= 16; t -= 8) {
        tile = t;
        if (dev_total(t) <= dev_room) break;
      }
    }
    int64_t least = total(tile);
    if (least > ram)
      for (int64_t t = (std::max(h, w) + 7) / 8 * 8 - 8; t >= 16; t -= 8) {
        const int64_t need = total(t);
        if (need < least) {
          least = need;
          tile = t;
        }
        if (need <= ram) break;
      }
  }
  plan.request.vae_tile = tile;
  plan.vae_overlap = tile / 4;
  plan.decode_bytes = decode_walk(m.vae, 1, h, w, tile, tile / 4, &scratch);
  const int64_t decode = held + latent + plan.decode_bytes;
  plan.scratch_bytes = scratch.bytes(threads);

  const std::string size = cat(r.width, "x", r.height);
  plan.stages = {
      {"text", text,
       cat("2 CLIP text encoders on ", r.windows, " window(s) of 77 tokens",
           r.guided ? ", prompt and negative prompt" : "")},
      {"denoise", denoise,
       cat("UNet on ", N, " sample(s) of ", h, "x", w, " latents (", size,
           r.guided ? ", guided" : ", unguided", ") per step")},
      {"decode", decode,
       tile ? cat("VAE decode in tiles of ", tile * 8, " px (overlap ", tile / 4 * 8, " px)")
            : cat("VAE decode of the whole ", size, " image")}};
  const auto largest =
      std::max_element(plan.stages.begin(), plan.stages.end(),
                       [](const auto& a, const auto& b) { return a.bytes < b.bytes; });

  plan.cpu.device = "cpu";
  plan.cpu.budget = ram;
  plan.cpu.items.push_back({.what = "weights",
                            .bytes = plan.mapped_bytes,
                            .why = "UNet, VAE and both text encoders, used in place from the files",
                            .mapped = true});
  plan.cpu.items.push_back({.what = "weight copies",
                            .bytes = plan.copied_bytes,
                            .why = m.heap_bytes() > 0
                                       ? "f32 norms, biases and position embeddings, the UNet's "
                                         "reordered 3x3 kernels, and tensors copied at load "
                                         "(transposed, LoRA-merged or decoded from a GGUF)"
                                       : "f32 norms, biases and position embeddings, the UNet's "
                                         "reordered 3x3 kernels"});
  plan.cpu.items.push_back(
      {.what = "kernel scratch", .bytes = plan.scratch_bytes, .why = cat(threads, " threads")});
  plan.cpu.items.push_back(
      {.what = largest->name + " (largest stage)", .bytes = largest->bytes, .why = largest->why});
  if (r.vram > 0) {
    plan.device_weight_bytes = dev_weights;
    plan.device_stages = {
        {"text", dev_text, "the larger text tower's buffers"},
        {"denoise", dev_denoise, "one UNet forward (deferred frees of the device included)"},
        {"decode", device_decode_bytes(m.vae, 1, h, w, tile),
         tile ? cat("the VAE decoder on one tile of ", tile * 8, " px (deferred frees included)")
              : "the VAE decoder on the whole image (deferred frees included)"}};
    const auto dl =
        std::max_element(plan.device_stages.begin(), plan.device_stages.end(),
                         [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
    plan.device.device = r.device;
    plan.device.budget = r.vram;
    plan.device.items.push_back({.what = "runtime reserve",
                                 .bytes = std::min(r.gpu_reserve, r.vram),
                                 .why = "the Vulkan driver's context and staging buffers"});
    plan.device.items.push_back(
        {.what = "weights",
         .bytes = dev_weights,
         .why = "UNet, VAE and both text encoders' layers, resident in their own types"});
    plan.device.items.push_back(
        {.what = dl->name + " (largest stage)", .bytes = dl->bytes, .why = dl->why});
    plan.gpu = cat(plan.device.fits() ? "fits: " : "does not fit: ", r.device, " needs ",
                   format_bytes(plan.device.total()), " of ", format_bytes(r.vram), " (weights ",
                   format_bytes(dev_weights), ", ", dl->name, " ", format_bytes(dl->bytes),
                   ", reserve ", format_bytes(std::min(r.gpu_reserve, r.vram)), ")");
    if (!plan.device.fits()) {
      if (dev_weights + r.gpu_reserve > r.vram)
        plan.suggestions.push_back(cat("the weights alone need ", format_bytes(dev_weights),
                                       " of VRAM: a smaller quantization (Q4_K_M), or the CPU "
                                       "(--device cpu); streaming is not implemented"));
      if (dl->name == "denoise" && r.guided)
        plan.suggestions.push_back("no guidance (--cfg-scale 1): one UNet sample per step");
      plan.suggestions.push_back(cat("a smaller image than ", size, ", or the CPU (--device cpu)"));
    }
  } else {
    plan.gpu = "not planned: the run is on the CPU (plan a GPU with a VRAM budget, --vram)";
  }
  if (!plan.cpu.fits() && base > ram)
    plan.suggestions.push_back(cat("the weights alone need ", format_bytes(base),
                                   ": a smaller (quantized) checkpoint, or more RAM"));
  if (!plan.cpu.fits()) {
    if (tile == 0 && decode >= std::max(text, denoise))
      plan.suggestions.push_back("decode the VAE in tiles (--vae-tile)");
    plan.suggestions.push_back(cat("a smaller image than ", size));
    if (r.guided && denoise >= std::max(text, decode))
      plan.suggestions.push_back("no guidance (--cfg-scale 1): one UNet sample per step");
    if (m.unet.at("conv_in.weight").type == DType::F32)
      plan.suggestions.push_back("an f16 checkpoint (half the weights)");
  }
  return plan;
}

int64_t ImagePlan::device_peak() const {
  int64_t b = device.total();
  for (const auto& item : device.items)
    if (item.what == "runtime reserve") b -= item.bytes;
  return b;
}

void ImagePlan::check_device_budget() const {
  if (!on_gpu() || device.fits()) return;
  std::string options;
  for (const auto& s : suggestions) options += cat(options.empty() ? "" : "; ", s);
  fail("[planner] ", model, " at ", request.width, "x", request.height, " on ", device.device, ": ",
       gpu, ". Options: ", options);
}

void ImagePlan::check_host_budget() const {
  if (cpu.fits()) return;
  std::string stages_text;
  for (const auto& s : stages)
    stages_text += cat(stages_text.empty() ? "" : ", ", s.name, " ", format_bytes(s.bytes));
  std::string options;
  for (const auto& s : suggestions) options += cat(options.empty() ? "" : "; ", s);
  fail("[planner] ", model, " at ", request.width, "x", request.height, " needs ",
       format_bytes(host_peak()), " of RAM (weights ", format_bytes(mapped_bytes + copied_bytes),
       ", kernel scratch ", format_bytes(scratch_bytes), ", stages: ", stages_text,
       ") but the budget is ", format_bytes(cpu.budget), ". Options: ", options);
}

}  // namespace eight
