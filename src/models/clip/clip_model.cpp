// CLIP's public entry points and the pre-norm transformer both towers share
// (transformers' CLIPEncoderLayer: x = x + attn(ln1(x)); x = x + mlp(ln2(x))).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>

#include "core/error.h"
#include "models/clip/clip_internal.h"
#include "models/registry.h"
#include "ops/attention.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/get_rows.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/softmax.h"

namespace eight::clip {
namespace {

const Tensor* opt(const Tensor& t) {
  return t.defined() ? &t : nullptr;
}

const bool registered = [] {
  register_architecture({.name = "clip",
                         .family = "vision",
                         .summary = "CLIP image-text embeddings (ViT + text transformer)"});
  return true;
}();

}  // namespace

Tensor to_f32(const Tensor& t) {
  if (t.dtype() == DType::F32 && t.is_contiguous()) return t;
  const int64_t n = t.dim() == 0 ? 1 : t.size(-1);
  const Tensor table = t.contiguous().reshape({-1, n});
  const int64_t rows = table.size(0);
  Tensor ids = Tensor::empty({rows}, DType::I32);
  std::iota(ids.data<int32_t>(), ids.data<int32_t>() + rows, 0);
  Tensor out = Tensor::empty(t.dim() == 0 ? Dims{1} : t.shape(), DType::F32);
  ops::get_rows(table, ids, out.reshape({rows, n}));
  return out;
}

void normalize_rows(const Tensor& x) {
  check(x.dim() == 2 && x.dtype() == DType::F32 && x.is_contiguous(),
        "[clip] normalize_rows needs a contiguous f32 matrix, got ", x.str());
  const int64_t d = x.size(1);
  for (int64_t i = 0; i < x.size(0); ++i) {
    float* r = x.data<float>() + i * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(r[j]) * r[j];
    const double inv = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
    for (int64_t j = 0; j < d; ++j) r[j] = static_cast<float>(r[j] * inv);
  }
}

namespace {

// Runs fn(r0, r1) over row ranges of at most 16 rows on the pool: the element-wise ops take no
// pool, and a layer norm or activation left on one thread idles the other cores.
void parallel_rows(ThreadPool& pool, int64_t rows,
                   const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kChunk = 16;
  pool.parallel_for((rows + kChunk - 1) / kChunk, [&](int64_t task, int) {
    const int64_t r0 = task * kChunk;
    fn(r0, std::min(rows, r0 + kChunk));
  });
}

// Attention through the matmul kernels: per (sequence, head) scores = q k^T [T, T] (k read in
// place as a strided weight; with `causal` the upper triangle masked), softmax, out = scores v. All
// pairs of the batch run in one parallel region, each task on its own thread with a one-thread pool
// for its products, so a layer costs one barrier instead of three per head and image (which matters
// on a busy machine). qkv: [rows, 3D]; out: [rows, D]; scratch: per thread scores [T, T] and vt [d,
// T].
void full_attention(const Tensor& qkv, const Tensor& out, const std::vector<int64_t>& seq_lens,
                    int64_t H, bool causal, ThreadPool& pool) {
  const int64_t D = out.size(1), d = D / H;
  const int64_t T_max = *std::max_element(seq_lens.begin(), seq_lens.end());
  const auto n_threads = static_cast<size_t>(pool.size());
  Tensor scores = Tensor::empty({pool.size(), T_max * T_max}, DType::F32);
  Tensor vt_all = Tensor::empty({pool.size(), d * T_max}, DType::F32);
  std::vector<std::unique_ptr<ThreadPool>> solo(n_threads);
  for (auto& p : solo) p = std::make_unique<ThreadPool>(1);
  std::vector<int64_t> starts(seq_lens.size());
  for (size_t i = 1; i < seq_lens.size(); ++i) starts[i] = starts[i - 1] + seq_lens[i - 1];
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const auto n_seq = static_cast<int64_t>(seq_lens.size());
  pool.parallel_for(n_seq * H, [&](int64_t task, int thread) {
    const auto b = static_cast<size_t>(task / H);
    const int64_t h = task % H, T = seq_lens[b], r0 = starts[b];
    ThreadPool& one = *solo[static_cast<size_t>(thread)];
    const Tensor seq = qkv.slice(0, r0, r0 + T);
    const Tensor sc = scores.select(0, thread).slice(0, 0, T * T).reshape({T, T});
    const Tensor vt = vt_all.select(0, thread).slice(0, 0, d * T).reshape({d, T});
    // vt[c, t] = v[t, c]: the head's v as a contiguous [d, T] weight.
    for (int64_t t = 0; t < T; ++t) {
      const float* v = seq.data<float>() + t * 3 * D + 2 * D + h * d;
      for (int64_t c = 0; c < d; ++c) vt.data<float>()[c * T + t] = v[c];
    }
    ops::matmul(seq.slice(1, h * d, (h + 1) * d), seq.slice(1, D + h * d, D + (h + 1) * d), sc,
                one);
    if (causal)  // query i sees keys 0..i
      for (int64_t i = 0; i + 1 < T; ++i)
        std::fill_n(sc.data<float>() + i * T + i + 1, T - i - 1,
                    -std::numeric_limits<float>::infinity());
    ops::softmax(sc, sc, {.scale = scale});
    ops::matmul(sc, vt, out.slice(0, r0, r0 + T).slice(1, h * d, (h + 1) * d), one);
  });
}

}  // namespace

namespace {

Linear upload(const Linear& l, Device d) {
  return {.weight = ops::to_device(l.weight, d),
          .bias = l.bias.defined() ? ops::to_device(l.bias, d) : Tensor()};
}
LayerNorm upload(const LayerNorm& n, Device d) {
  return {.weight = ops::to_device(n.weight, d), .bias = ops::to_device(n.bias, d)};
}

// The tower on a GPU: x is copied up once, every layer is recorded, x comes back once. q, k and v
// have buffers of their own there (packed rows, so the biases are one broadcast add each).
void run_tower_on_device(const Tower& tower, const Tensor& x_host,
                         const std::vector<int64_t>& seq_lens, bool causal, ThreadPool& pool) {
  const TowerConfig& c = tower.config;
  const Device dev = tower.layers[0].q.weight.device();
  const int64_t rows = x_host.size(0), D = c.hidden, H = c.heads, d = D / H;
  const Tensor x = ops::to_device(x_host, dev);
  const Tensor h = ops::empty({rows, D}, DType::F32, dev),
               h2 = ops::empty({rows, D}, DType::F32, dev);
  const Tensor q = ops::empty({rows, D}, DType::F32, dev),
               k = ops::empty({rows, D}, DType::F32, dev);
  const Tensor v = ops::empty({rows, D}, DType::F32, dev),
               attn = ops::empty({rows, D}, DType::F32, dev);
  const Tensor ff = ops::empty({rows, c.intermediate}, DType::F32, dev);
  const auto eps = static_cast<float>(c.eps);
  auto heads = [&](const Tensor& t, int64_t r0, int64_t r1) {
    return t.slice(0, r0, r1).reshape({r1 - r0, H, d});
  };
  for (const EncoderLayer& L : tower.layers) {
    ops::layer_norm(x, h, {.weight = &L.ln1.weight, .bias = &L.ln1.bias, .eps = eps});
    ops::matmul(h, L.q.weight, q, pool, {.bias = opt(L.q.bias)});
    ops::matmul(h, L.k.weight, k, pool, {.bias = opt(L.k.bias)});
    ops::matmul(h, L.v.weight, v, pool, {.bias = opt(L.v.bias)});
    for (int64_t r0 = 0; const int64_t T : seq_lens) {  // attention stays within a sequence
      ops::attention(heads(q, r0, r0 + T), heads(k, r0, r0 + T), heads(v, r0, r0 + T),
                     heads(attn, r0, r0 + T), pool, {.causal = causal});
      r0 += T;
    }
    ops::matmul(attn, L.out.weight, h2, pool, {.bias = opt(L.out.bias)});
    ops::add(x, h2, x);  // x = x + attn
    ops::layer_norm(x, h, {.weight = &L.ln2.weight, .bias = &L.ln2.bias, .eps = eps});
    ops::matmul(h, L.fc1.weight, ff, pool, {.bias = opt(L.fc1.bias)});
    ops::activation(tower.act, ff, ff);
    ops::matmul(ff, L.fc2.weight, h2, pool, {.bias = opt(L.fc2.bias)});
    ops::add(x, h2, x);  // x = x + mlp
  }
  ops::copy(x, x_host);
}

}  // namespace

void place_tower(Tower& tower, Device device) {
  for (EncoderLayer& L : tower.layers)
    L = {.ln1 = upload(L.ln1, device),
         .q = upload(L.q, device),
         .k = upload(L.k, device),
         .v = upload(L.v, device),
         .out = upload(L.out, device),
         .ln2 = upload(L.ln2, device),
         .fc1 = upload(L.fc1, device),
         .fc2 = upload(L.fc2, device)};
}

void run_tower(const Tower& tower, const Tensor& x, const std::vector<int64_t>& seq_lens,
               bool causal, ThreadPool& pool) {
  if (!tower.layers.empty() && tower.layers[0].q.weight.device().kind != DeviceKind::CPU)
    return run_tower_on_device(tower, x, seq_lens, causal, pool);
  const TowerConfig& c = tower.config;
  const int64_t rows = x.size(0), D = c.hidden, H = c.heads;
  // Scratch for one layer, reused by every layer: h [rows, D], qkv [rows, 3D], attn [rows, D],
  // ff [rows, intermediate].
  Tensor h = Tensor::empty({rows, D}, DType::F32);
  Tensor qkv = Tensor::empty({rows, 3 * D}, DType::F32);
  Tensor attn = Tensor::empty({rows, D}, DType::F32);
  Tensor ff = Tensor::empty({rows, c.intermediate}, DType::F32);
  const auto eps = static_cast<float>(c.eps);
  // x += y (when y is given), then out = norm(x), in one parallel region: the residual of one
  // sub-layer and the norm that opens the next touch the same rows.
  auto add_norm = [&](const Tensor* y, const LayerNorm* n) {
    parallel_rows(pool, rows, [&](int64_t r0, int64_t r1) {
      const Tensor xr = x.slice(0, r0, r1);
      if (y) ops::add(xr, y->slice(0, r0, r1), xr);
      if (n)
        ops::layer_norm(xr, h.slice(0, r0, r1),
                        {.weight = &n->weight, .bias = &n->bias, .eps = eps});
    });
  };
  const size_t n_layers = tower.layers.size();
  if (n_layers > 0) add_norm(nullptr, &tower.layers[0].ln1);
  for (size_t il = 0; il < n_layers; ++il) {
    const EncoderLayer& L = tower.layers[il];
    // h = ln1(x) here. q, k and v side by side in qkv [rows, 3D] (y with a row stride: no
    // stacked weight copy).
    ops::matmul(h, L.q.weight, qkv.slice(1, 0, D), pool, {.bias = opt(L.q.bias)});
    ops::matmul(h, L.k.weight, qkv.slice(1, D, 2 * D), pool, {.bias = opt(L.k.bias)});
    ops::matmul(h, L.v.weight, qkv.slice(1, 2 * D, 3 * D), pool, {.bias = opt(L.v.bias)});
    full_attention(qkv, attn, seq_lens, H, causal, pool);
    ops::matmul(attn, L.out.weight, h, pool, {.bias = opt(L.out.bias)});
    add_norm(&h, &L.ln2);  // x = x + attn; h = ln2(x)
    ops::matmul(h, L.fc1.weight, ff, pool, {.bias = opt(L.fc1.bias)});
    parallel_rows(pool, rows, [&](int64_t a, int64_t b) {
      ops::activation(tower.act, ff.slice(0, a, b), ff.slice(0, a, b));
    });
    ops::matmul(ff, L.fc2.weight, h, pool, {.bias = opt(L.fc2.bias)});
    // x = x + mlp; h = the next layer's ln1(x).
    add_norm(&h, il + 1 < n_layers ? &tower.layers[il + 1].ln1 : nullptr);
  }
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path, Device device) {
  namespace fs = std::filesystem;
  check(fs::exists(path), "[clip] '", path, "' does not exist");
  std::unique_ptr<Impl> impl = fs::is_directory(path) ? load_hf_directory(path) : load_gguf(path);
  if (device.kind != DeviceKind::CPU) {
    place_tower(impl->text.tower, device);
    place_tower(impl->vision.tower, device);
  }
  // A local class may use Model's private constructor, which make_shared cannot.
  struct Built : Model {
    explicit Built(std::unique_ptr<Impl> i) : Model(std::move(i)) {}
  };
  return std::make_shared<Built>(std::move(impl));
}

const Config& Model::config() const {
  return impl_->config;
}
std::string Model::name() const {
  return impl_->name;
}
int64_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}

std::vector<int32_t> Model::tokenize(const std::string& text) const {
  check(impl_->tokenizer.has_value(), "[clip] ", impl_->name,
        " has no text tower (an image-only file) and cannot tokenize");
  return impl_->tokenizer->encode(text, impl_->config.max_positions);
}

Tensor Model::embed_images(const Tensor& pixels, ThreadPool& pool) const {
  check(impl_->vision.patch_embedding.defined(), "[clip] ", impl_->name, " has no vision tower");
  return forward_vision(*impl_, pixels, pool);
}

Tensor Model::embed_texts(const std::vector<std::string>& texts, ThreadPool& pool) const {
  check(impl_->config.has_text, "[clip] ", impl_->name,
        " has no text tower (an image-only file such as an mmproj GGUF)");
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(texts.size());
  for (const auto& t : texts) ids.push_back(tokenize(t));
  return forward_text(*impl_, ids, pool);
}

Tensor Model::embed_image_file(const std::string& path, ThreadPool& pool) const {
  const image::Image img = image::load(path);
  const Tensor pixels = image::preprocess(img, impl_->config.preprocess);  // [3, H, W]
  return embed_images(pixels.unsqueeze(0), pool);
}

std::vector<float> zero_shot_probabilities(const Model& model, const Tensor& image_embedding,
                                           const Tensor& label_embeddings) {
  const int64_t d = model.config().projection_dim;
  const Tensor img = image_embedding.contiguous();
  const Tensor labels = label_embeddings.contiguous();
  check(img.dtype() == DType::F32 && img.numel() == d, "[clip] image embedding ", img.str(),
        " is not one f32 vector of ", d);
  check(labels.dtype() == DType::F32 && labels.dim() == 2 && labels.size(1) == d &&
            labels.size(0) > 0,
        "[clip] label embeddings ", labels.str(), " are not f32 [n > 0, ", d, "]");
  auto norm = [d](const float* v) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
    return std::sqrt(s);
  };
  const float* a = img.data<float>();
  const double na = norm(a), scale = std::exp(static_cast<double>(model.config().logit_scale));
  std::vector<double> logits(static_cast<size_t>(labels.size(0)));
  for (int64_t i = 0; i < labels.size(0); ++i) {
    const float* b = labels.data<float>() + i * d;
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(a[j]) * b[j];
    const double nn = na * norm(b);
    logits[i] = scale * (nn > 0 ? dot / nn : 0.0);
  }
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (auto& l : logits) sum += (l = std::exp(l - mx));
  std::vector<float> p(logits.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(logits[i] / sum);
  return p;
}

}  // namespace eight::clip
