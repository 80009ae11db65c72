#include "models/deepbooru/deepbooru.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "ops/matmul.h"

namespace eight::deepbooru {
namespace {

// Where each convolution sits: n_Conv_0 is the stem, n_Conv_178 the head, and the blocks take the
// indices in between in the order deepbooru_model.py creates them. A stage's first block creates
// its projection first; the third stage's middle downsampling block creates it last.
struct BlockSpec {
  int proj = -1, reduce = 0, spatial = 0, expand = 0;
  int64_t stride = 1;
};

std::vector<BlockSpec> topology() {
  struct Stage {
    int blocks;
    int64_t first_stride;
    int mid_down;  // a later block that downsamples, or -1
  };
  constexpr Stage kStages[] = {{3, 1, -1}, {8, 2, -1}, {40, 2, 20}, {3, 2, -1}, {3, 2, -1}};
  std::vector<BlockSpec> out;
  int next = 1;
  for (const Stage& st : kStages) {
    for (int b = 0; b < st.blocks; ++b) {
      BlockSpec s;
      if (b == 0) {
        s.proj = next++;
        s.stride = st.first_stride;
      }
      s.reduce = next++;
      s.spatial = next++;
      s.expand = next++;
      if (b == st.mid_down) {
        s.proj = next++;
        s.stride = 2;
      }
      out.push_back(s);
    }
  }
  check(next == kConvCount - 1, "[deepbooru] internal: topology has ", next, " convolutions");
  return out;
}

Tensor to_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t.contiguous();
  const Tensor c = t.contiguous();
  Tensor out = Tensor::empty(t.shape(), DType::F32);
  const auto* src = c.data<const uint16_t>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    dst[i] = t.dtype() == DType::F16 ? fp16_to_fp32(src[i]) : bf16_to_fp32(src[i]);
  return out;
}

// Reads and checks the state dict's convolutions, remembering every name it takes.
struct Loader {
  const std::function<Tensor(const std::string&)>& lookup;
  const std::string& source;
  std::set<std::string> taken;
  int64_t bytes = 0, copied = 0;  // all weights; those copied out of the file

  Tensor get(int i, const char* part) {
    const std::string name = "n_Conv_" + std::to_string(i) + "." + part;
    taken.insert(name);
    Tensor t = lookup(name);
    check(t.defined(), "[deepbooru] ", source, ": missing tensor ", name,
          " (a DeepBooru resnet_custom_v3 state dict has n_Conv_0 .. n_Conv_178)");
    check(t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16,
          "[deepbooru] ", source, ": ", name, " is ", dtype_name(t.dtype()),
          ", expected F32, F16 or BF16");
    bytes += static_cast<int64_t>(t.nbytes());
    return t;
  }

  // Convolution i with c_in inputs and a k x k kernel; c_out from the tensor unless given.
  Conv conv(int i, int64_t c_in, int64_t k, bool bias, int64_t c_out = -1) {
    const Tensor w = get(i, "weight");
    const std::string name = "n_Conv_" + std::to_string(i) + ".weight";
    check(w.dim() == 4 && w.size(0) > 0, "[deepbooru] ", source, ": ", name, " is ",
          w.shape().str(), ", expected [C_out, ", c_in, ", ", k, ", ", k, "]");
    if (c_out < 0) c_out = w.size(0);
    const Dims want{c_out, c_in, k, k};
    check(w.shape() == want, "[deepbooru] ", source, ": ", name, " is ", w.shape().str(),
          ", expected ", want.str());
    Conv c{.w = ops::conv2d_prepare_weight(w), .bias = {}};
    if (k > 1) {  // the reordered copy
      bytes += static_cast<int64_t>(c.w.w.nbytes());
      copied += static_cast<int64_t>(c.w.w.nbytes());
    }
    if (bias) {
      const Tensor b = get(i, "bias");
      check(b.shape() == Dims{c_out}, "[deepbooru] ", source, ": n_Conv_", i, ".bias is ",
            b.shape().str(), ", expected [", c_out, "]");
      c.bias = to_f32(b);
      if (b.dtype() != DType::F32) copied += static_cast<int64_t>(c.bias.nbytes());
    }
    return c;
  }
};

void relu(const Tensor& t, ThreadPool& pool) {
  float* p = t.data<float>();
  pool.parallel_chunks(t.numel(), 1 << 14, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) p[i] = std::max(p[i], 0.f);
  });
}

// y = relu(y + r)
void add_relu(const Tensor& y, const Tensor& r, ThreadPool& pool) {
  float* p = y.data<float>();
  const float* q = r.data<const float>();
  pool.parallel_chunks(y.numel(), 1 << 14, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) p[i] = std::max(p[i] + q[i], 0.f);
  });
}

// x [H, W, C] → [H_out, W_out, C_out] with `pad` zeros before and `pad_end` after each axis.
Tensor conv(const Tensor& x, const Conv& c, int64_t stride, int64_t pad, int64_t pad_end,
            ThreadPool& pool) {
  const int64_t k = c.w.shape[2];
  const int64_t h = (x.size(0) + pad + pad_end - k) / stride + 1;
  const int64_t w = (x.size(1) + pad + pad_end - k) / stride + 1;
  Tensor y = Tensor::empty({h, w, c.w.shape[0]}, DType::F32);
  ops::conv2d_nhwc(x, c.w, y, pool,
                   {.stride = {stride, stride},
                    .padding = {pad, pad},
                    .padding_end = {pad_end, pad_end},
                    .bias = c.bias.defined() ? &c.bias : nullptr});
  return y;
}

// 3x3/2 max pool after one -inf row and column at the end (the padding never wins).
Tensor max_pool(const Tensor& x, ThreadPool& pool) {
  const int64_t H = x.size(0), W = x.size(1), C = x.size(2);
  const int64_t ho = (H + 1 - 3) / 2 + 1, wo = (W + 1 - 3) / 2 + 1;
  Tensor y = Tensor::empty({ho, wo, C}, DType::F32);
  const float* src = x.data<const float>();
  float* dst = y.data<float>();
  pool.parallel_chunks(ho, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t oy = b; oy < e; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        float* out = dst + (oy * wo + ox) * C;
        std::fill_n(out, C, -std::numeric_limits<float>::infinity());
        for (int64_t iy = 2 * oy; iy < std::min(2 * oy + 3, H); ++iy)
          for (int64_t ix = 2 * ox; ix < std::min(2 * ox + 3, W); ++ix) {
            const float* in = src + (iy * W + ix) * C;
            for (int64_t c = 0; c < C; ++c) out[c] = std::max(out[c], in[c]);
          }
      }
  });
  return y;
}

}  // namespace

Network Network::load(const std::vector<std::string>& names,
                      const std::function<Tensor(const std::string&)>& lookup, int64_t n_tags,
                      const std::string& source) {
  Loader ld{lookup, source, {}, 0, 0};
  Network net;
  net.stem_ = ld.conv(0, 3, 7, true);
  int64_t c = net.stem_.w.shape[0];
  for (const BlockSpec& s : topology()) {
    Block b;
    b.stride = s.stride;
    // Created (and so checked) in index order, so the first bad tensor is the one reported.
    if (s.proj >= 0 && s.proj < s.reduce) b.proj = ld.conv(s.proj, c, 1, true);
    b.reduce = ld.conv(s.reduce, c, 1, true);
    const int64_t mid = b.reduce.w.shape[0];
    b.spatial = ld.conv(s.spatial, mid, 3, true, mid);
    // The residual add needs the expand's outputs to match the shortcut's.
    const bool proj_first = s.proj >= 0 && s.proj < s.reduce;
    b.expand = ld.conv(s.expand, mid, 1, true,
                       proj_first   ? b.proj.w.shape[0]
                       : s.proj < 0 ? c
                                    : -1);
    const int64_t out = b.expand.w.shape[0];
    if (s.proj > s.expand) b.proj = ld.conv(s.proj, c, 1, true, out);
    c = out;
    net.blocks_.push_back(std::move(b));
  }
  net.head_ = ld.conv(kConvCount - 1, c, 1, false);
  for (const std::string& name : names)
    check(ld.taken.count(name) != 0, "[deepbooru] ", source, ": unexpected tensor ", name,
          " (not part of DeepBooru's resnet_custom_v3)");
  net.n_tags_ = net.head_.w.shape[0];
  check(n_tags == net.n_tags_, "[deepbooru] ", source, ": the tag list has ", n_tags,
        " names but n_Conv_178 has ", net.n_tags_, " outputs");
  net.weight_bytes_ = ld.bytes;
  net.copied_bytes_ = ld.copied;
  return net;
}

Network Network::from_checkpoint(const torch::Checkpoint& ck, const std::string& source,
                                 std::vector<std::string>* tags) {
  const pickle::Value* list = ck.root().get("tags");
  check(list != nullptr && list->is(pickle::Kind::List), "[deepbooru] ", source,
        " has no 'tags' list (A1111's model-resnet_custom_v3.pt holds its tag names there beside "
        "the n_Conv_* tensors)",
        list ? ", got " + list->describe() : std::string());
  tags->clear();
  for (size_t i = 0; i < list->items.size(); ++i) {
    const pickle::Value* t = list->items[i];
    check(t->is(pickle::Kind::Str) && !t->s.empty(), "[deepbooru] ", source, ": tags[", i, "] is ",
          t->describe(), ", expected a tag name");
    tags->push_back(t->s);
  }
  check(!tags->empty(), "[deepbooru] ", source, ": the 'tags' list is empty");
  const std::string prefix = ck.state_dict_prefix();
  std::vector<std::string> names;
  for (const torch::TensorInfo& t : ck.tensors())
    names.push_back(t.name.rfind(prefix, 0) == 0 ? t.name.substr(prefix.size()) : t.name);
  return load(
      names,
      [&](const std::string& n) {
        return ck.find_tensor(prefix + n) ? ck.tensor(prefix + n) : Tensor();
      },
      static_cast<int64_t>(tags->size()), source);
}

namespace {

// conv()'s shapes and what conv2d_nhwc holds beside its input and output: one tile of unfolded
// pixels, unless the convolution is a 1x1 stride-1 product on the input itself.
struct ConvCost {
  int64_t hw_out, tile_rows, kk;
  int64_t cols_bytes() const { return 4 * tile_rows * kk; }
};

ConvCost conv_cost(const Conv& c, int64_t h, int64_t w, int64_t stride, int64_t pad,
                   int64_t pad_end) {
  const int64_t k = c.w.shape[2], c_in = c.w.shape[1];
  const int64_t ho = (h + pad + pad_end - k) / stride + 1,
                wo = (w + pad + pad_end - k) / stride + 1;
  const int64_t kk = c_in * k * k;
  if (k == 1 && stride == 1 && pad == 0 && pad_end == 0) return {ho * wo, 0, kk};
  return {ho * wo, ops::conv2d_tile_rows(kk, ho * wo), kk};
}

}  // namespace

int64_t Network::activation_bytes(int64_t size) const {
  // forward() for one image (a batch runs its images one after another), in floats beside the
  // input: the stem's output and its tile, the max pool's output beside it; per block the
  // input h, then reduce a, spatial a2 (with its tile), expand y and the projection's shortcut
  // (with its tile), each alive as forward() holds them; last the pooled row.
  const ConvCost stem = conv_cost(stem_, size, size, 2, 2, 3);
  int64_t side = (size + 2 + 3 - 7) / 2 + 1, c = stem_.w.shape[0];
  int64_t peak = 4 * stem.hw_out * c + stem.cols_bytes();
  const int64_t pooled = (side + 1 - 3) / 2 + 1;
  peak = std::max(peak, 4 * (side * side + pooled * pooled) * c);
  side = pooled;
  for (const Block& b : blocks_) {
    const int64_t hw = side * side, mid = b.reduce.w.shape[0], out = b.expand.w.shape[0];
    const ConvCost sp = conv_cost(b.spatial, side, side, b.stride, b.stride == 1 ? 1 : 0, 1);
    const int64_t ohw = sp.hw_out;
    peak = std::max(peak, 4 * (hw * c + hw * mid + ohw * mid) + sp.cols_bytes());
    int64_t tail = 4 * (hw * c + ohw * mid + ohw * out);  // h, a2, y
    if (b.proj.w.defined())
      tail += 4 * ohw * out + conv_cost(b.proj, side, side, b.stride, 0, 0).cols_bytes();
    peak = std::max(peak, tail);
    side = (side + (b.stride == 1 ? 1 : 0) + 1 - 3) / b.stride + 1;
    c = out;
  }
  return std::max(peak, 4 * (side * side * c + c));
}

void Network::add_scratch(cpu::ScratchPeak& s, int64_t size) const {
  auto add = [&](const Conv& c, int64_t h, int64_t w, int64_t stride, int64_t pad, int64_t end) {
    const ConvCost k = conv_cost(c, h, w, stride, pad, end);
    s.add(c.w.w.dtype(), k.tile_rows > 0 ? k.tile_rows : k.hw_out, k.kk);
  };
  add(stem_, size, size, 2, 2, 3);
  int64_t side = (size + 2 + 3 - 7) / 2 + 1;
  side = (side + 1 - 3) / 2 + 1;
  for (const Block& b : blocks_) {
    const int64_t o = (side + (b.stride == 1 ? 1 : 0) + 1 - 3) / b.stride + 1;
    add(b.reduce, side, side, 1, 0, 0);
    add(b.spatial, side, side, b.stride, b.stride == 1 ? 1 : 0, 1);
    add(b.expand, o, o, 1, 0, 0);
    if (b.proj.w.defined()) add(b.proj, side, side, b.stride, 0, 0);
    side = o;
  }
  s.add(head_.w.w.dtype(), 1, head_.w.shape[1]);
}

Tensor Network::forward(const Tensor& x, ThreadPool& pool) const {
  check(x.defined() && x.dim() == 4 && x.size(3) == 3 && x.dtype() == DType::F32,
        "[deepbooru] input must be F32 [n, H, W, 3], got ",
        x.defined() ? x.str() : std::string("undefined"));
  check(x.size(1) >= 128 && x.size(1) % 128 == 0 && x.size(2) >= 128 && x.size(2) % 128 == 0,
        "[deepbooru] input height and width must be multiples of 128, got ", x.shape().str());
  const int64_t n = x.size(0);
  Tensor out = Tensor::empty({n, n_tags_}, DType::F32);
  const Tensor xc = x.contiguous();
  for (int64_t s = 0; s < n; ++s) {
    Tensor h = conv(xc.select(0, s), stem_, 2, 2, 3, pool);
    relu(h, pool);
    h = max_pool(h, pool);
    for (const Block& b : blocks_) {
      Tensor a = conv(h, b.reduce, 1, 0, 0, pool);
      relu(a, pool);
      // Stride 2: TensorFlow's "same" padding of a 3x3/2 on an even size is 0 before, 1 after.
      a = conv(a, b.spatial, b.stride, b.stride == 1 ? 1 : 0, 1, pool);
      relu(a, pool);
      Tensor y = conv(a, b.expand, 1, 0, 0, pool);
      add_relu(y, b.proj.w.defined() ? conv(h, b.proj, b.stride, 0, 0, pool) : h, pool);
      h = std::move(y);
    }
    // The head is a bias-free 1x1 convolution, a linear map per pixel: averaging the pixels first
    // gives the same mean of its outputs with 1/(H*W) of the work.
    const int64_t hw = h.size(0) * h.size(1), c = h.size(2);
    Tensor mean = Tensor::empty({1, c}, DType::F32);
    const float* src = h.data<const float>();
    for (int64_t ch = 0; ch < c; ++ch) {
      double acc = 0;
      for (int64_t i = 0; i < hw; ++i) acc += src[i * c + ch];
      mean.data<float>()[ch] = static_cast<float>(acc / static_cast<double>(hw));
    }
    const Tensor row = out.slice(0, s, s + 1);
    ops::matmul(mean, head_.w.w, row, pool);
    float* p = row.data<float>();
    for (int64_t t = 0; t < n_tags_; ++t) p[t] = 1.f / (1.f + std::exp(-p[t]));
  }
  return out;
}

image::Image resize_and_fill(const image::Image& img, int width, int height) {
  check(img.width > 0 && img.height > 0, "[deepbooru] empty image");
  const double ratio = static_cast<double>(width) / height;
  const double src_ratio = static_cast<double>(img.width) / img.height;
  // As A1111: the side that fits takes the full size, the other int(side * size / other side).
  const int src_w =
      ratio < src_ratio ? width : static_cast<int>(int64_t{img.width} * height / img.height);
  const int src_h =
      ratio >= src_ratio ? height : static_cast<int>(int64_t{img.height} * width / img.width);
  check(src_w > 0 && src_h > 0, "[deepbooru] a ", img.width, "x", img.height,
        " image is too thin to fit ", width, "x", height, " (it would be ", src_w, "x", src_h, ")");
  const image::Image resized =
      image::resize(img, src_w, src_h, {.filter = image::Filter::Lanczos, .box = std::nullopt});
  image::Image res{width, height, Tensor::zeros({height, width, 3}, DType::I8)};
  // Pastes `part` with its top-left corner at (x0, y0), clipped to the canvas as PIL's paste.
  auto paste = [&](const image::Image& part, int x0, int y0) {
    const auto* src = part.rgb.data<const uint8_t>();
    auto* dst = res.rgb.data<uint8_t>();
    for (int y = std::max(0, y0); y < std::min(height, y0 + part.height); ++y)
      for (int x = std::max(0, x0); x < std::min(width, x0 + part.width); ++x)
        std::copy_n(src + (static_cast<int64_t>(y - y0) * part.width + (x - x0)) * 3, 3,
                    dst + (static_cast<int64_t>(y) * width + x) * 3);
  };
  paste(resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
  const double rw = resized.width, rh = resized.height;
  auto stretch = [&](int w, int h, std::array<double, 4> box) {
    // A1111 calls resize() here without a filter: PIL's default, BICUBIC.
    return image::resize(resized, w, h, {.filter = image::Filter::Bicubic, .box = box});
  };
  if (ratio < src_ratio) {  // bands above and below, from the first and last rows
    const int fill = height / 2 - src_h / 2;
    if (fill > 0) {
      paste(stretch(width, fill, {0, 0, rw, 0}), 0, 0);
      paste(stretch(width, fill, {0, rh, rw, rh}), 0, fill + src_h);
    }
  } else if (ratio > src_ratio) {  // bands left and right, from the first and last columns
    const int fill = width / 2 - src_w / 2;
    if (fill > 0) {
      paste(stretch(fill, height, {0, 0, 0, rh}), 0, 0);
      paste(stretch(fill, height, {rw, 0, rw, rh}), fill + src_w, 0);
    }
  }
  return res;
}

Tensor preprocess(const image::Image& img) {
  const image::Image im = resize_and_fill(img, kInputSize, kInputSize);
  Tensor out = Tensor::empty({kInputSize, kInputSize, 3}, DType::F32);
  const auto* src = im.rgb.data<const uint8_t>();
  float* dst = out.data<float>();
  // numpy divides the float32 array by the int 255 in float32.
  for (int64_t i = 0; i < out.numel(); ++i) dst[i] = static_cast<float>(src[i]) / 255.f;
  return out;
}

}  // namespace eight::deepbooru
