// timm's VisionTransformer as the WD ViT tagger configures it (vit_base_patch16_224 with
// img_size 448, class_token false, global_pool "avg", fc_norm false, act_layer "gelu_tanh"), and
// timm's defaults otherwise (class token pooled, exact GELU). timm vision_transformer.py:
//   x = patch_embed(x)                      stride-p conv, [n, np, D]
//   x = _pos_embed(x)                       [cls;] x + pos_embed
//   x = norm_pre(x)                         when pre_norm
//   x = blocks(x)                           x + attn(norm1(x)); x + mlp(norm2(x)) (clip::run_tower)
//   x = norm(x)                             unless fc_norm
//   x = pool(x)                             mean of the patch tokens ("avg") or the class token
//   x = fc_norm(x)                          when fc_norm
// LayerNorms use eps 1e-6 (timm's ViT). The head is applied by WdTagger.
#include <cstring>

#include "core/error.h"
#include "models/tagger/wd_internal.h"
#include "ops/conv.h"

namespace eight::tagger::wd {
namespace {

constexpr float kEps = 1e-6f;

class ViT final : public Backbone {
 public:
  ViT(const Config& c, const Weights& w) {
    const nlohmann::json& a = c.model_args;
    const std::string& src = w.source();
    for (const char* unsupported : {"reg_token", "blocks.0.ls1.gamma", "attn_pool.latent"})
      check(!w.has(unsupported), "[wd] ", src, ": '", unsupported,
            "' (registers, layer scale or attention pooling) is not supported");
    const Tensor& pw = w.need("patch_embed.proj.weight");
    check(pw.dim() == 4 && pw.size(1) == 3 && pw.size(2) == pw.size(3), "[wd] ", src,
          ": patch_embed.proj.weight ", pw.shape().str(), " is not [D, 3, p, p]");
    D_ = pw.size(0);
    p_ = pw.size(2);
    grid_ = c.input_size / p_;
    check(grid_ * p_ == c.input_size, "[wd] ", src, ": input size ", c.input_size,
          " is not a multiple of the ", p_, " px patch");
    patch_w_ = ops::conv2d_prepare_weight(pw);
    weight_type_ = w.need("blocks.0.mlp.fc1.weight").dtype();
    if (w.has("patch_embed.proj.bias")) patch_b_ = w.vector_f32("patch_embed.proj.bias", D_);
    if (w.has("cls_token")) cls_ = clip::to_f32(w.need("cls_token", {1, 1, D_})).reshape({D_});
    const int64_t np = grid_ * grid_, prefix = cls_.defined() ? 1 : 0;
    const Tensor& pos = w.need("pos_embed");
    check(pos.dim() == 3 && pos.size(2) == D_ && (pos.size(1) == np + prefix || pos.size(1) == np),
          "[wd] ", src, ": pos_embed ", pos.shape().str(), " does not fit ", np, " patches (",
          c.input_size, " px input, ", p_, " px patches)");
    pos_ = clip::to_f32(pos).reshape({pos.size(1), D_});
    pos_has_prefix_ = pos.size(1) != np;  // timm's no_embed_class=False
    if (w.has("norm_pre.weight")) norm_pre_ = w.norm("norm_pre", D_);
    if (w.has("norm.weight")) norm_ = w.norm("norm", D_);
    if (w.has("fc_norm.weight")) fc_norm_ = w.norm("fc_norm", D_);
    const std::string pool = a.value("global_pool", std::string(cls_.defined() ? "token" : "avg"));
    check(pool == "avg" || (pool == "token" && cls_.defined()), "[wd] ", src, ": global_pool '",
          pool, "' is not supported (avg, or token with a class token)");
    avg_pool_ = pool == "avg";

    int64_t depth = 0;
    while (w.has(cat("blocks.", depth, ".norm1.weight"))) ++depth;
    check(depth > 0, "[wd] ", src, " has no blocks.0");
    const int64_t I = w.need("blocks.0.mlp.fc1.weight").size(0);
    int64_t heads = a.value("num_heads", int64_t{0});
    if (heads == 0) heads = D_ == 1280 ? 16 : D_ / 64;  // timm's ViT sizes: 64-wide heads but huge
    check(heads > 0 && D_ % heads == 0, "[wd] ", src, ": ", heads, " heads do not divide ", D_);
    tower_.config = {.hidden = static_cast<int>(D_),
                     .intermediate = static_cast<int>(I),
                     .layers = static_cast<int>(depth),
                     .heads = static_cast<int>(heads),
                     .eps = kEps,
                     .act = a.value("act_layer", std::string("gelu"))};
    tower_.act = activation_of(a, src);
    for (int64_t i = 0; i < depth; ++i) {
      const std::string b = cat("blocks.", i, ".");
      // attn.qkv [3D, D] is q, k and v stacked: three row views, no copies.
      const clip::Linear qkv = w.linear(b + "attn.qkv", 3 * D_, D_);
      auto part = [&](int64_t k) {
        return clip::Linear{
            qkv.weight.slice(0, k * D_, (k + 1) * D_),
            qkv.bias.defined() ? qkv.bias.slice(0, k * D_, (k + 1) * D_) : Tensor()};
      };
      tower_.layers.push_back({.ln1 = w.norm(b + "norm1", D_),
                               .q = part(0),
                               .k = part(1),
                               .v = part(2),
                               .out = w.linear(b + "attn.proj", D_, D_),
                               .ln2 = w.norm(b + "norm2", D_),
                               .fc1 = w.linear(b + "mlp.fc1", I, D_),
                               .fc2 = w.linear(b + "mlp.fc2", D_, I)});
    }
  }

  int64_t num_features() const override { return D_; }

  Tensor features(const Tensor& pixels, ThreadPool& pool) const override {
    const int64_t n = pixels.size(0), np = grid_ * grid_, prefix = cls_.defined() ? 1 : 0;
    const int64_t T = np + prefix;
    Tensor emb = Tensor::empty({n, D_, grid_, grid_}, DType::F32);  // patch_embed (NCHW)
    ops::conv2d(pixels, patch_w_, emb, pool,
                {.stride = {p_, p_}, .bias = patch_b_.defined() ? &patch_b_ : nullptr});
    // x [n * T, D]: each image's [cls;] patches (flatten(2).transpose(1, 2)) plus positions.
    Tensor x = Tensor::empty({n * T, D_}, DType::F32);
    const float* pos = pos_.data<float>();
    const float* pos_patch = pos + (pos_has_prefix_ ? prefix * D_ : 0);
    pool.parallel_for(n, [&](int64_t b, int) {
      float* row = x.data<float>() + b * T * D_;
      if (prefix) {  // with no_embed_class the class token gets no position
        for (int64_t j = 0; j < D_; ++j)
          row[j] = cls_.data<float>()[j] + (pos_has_prefix_ ? pos[j] : 0.0f);
      }
      const float* e = emb.data<float>() + b * D_ * np;
      for (int64_t t = 0; t < np; ++t) {
        float* r = row + (prefix + t) * D_;
        for (int64_t j = 0; j < D_; ++j) r[j] = e[j * np + t] + pos_patch[t * D_ + j];
      }
    });
    if (norm_pre_.weight.defined()) layer_norm_rows(x, norm_pre_, kEps, pool);
    clip::run_tower(tower_, x, std::vector<int64_t>(static_cast<size_t>(n), T), false, pool);
    if (norm_.weight.defined()) layer_norm_rows(x, norm_, kEps, pool);
    Tensor out = Tensor::empty({n, D_}, DType::F32);
    for (int64_t b = 0; b < n; ++b) {
      float* o = out.data<float>() + b * D_;
      const float* xb = x.data<float>() + b * T * D_;
      if (!avg_pool_) {
        std::memcpy(o, xb, static_cast<size_t>(D_) * sizeof(float));
        continue;
      }
      for (int64_t j = 0; j < D_; ++j) {  // the mean over the patch tokens, in double
        double s = 0;
        for (int64_t t = prefix; t < T; ++t) s += xb[t * D_ + j];
        o[j] = static_cast<float>(s / static_cast<double>(np));
      }
    }
    if (fc_norm_.weight.defined()) layer_norm_rows(out, fc_norm_, kEps, pool);
    return out;
  }

  int64_t activation_bytes(int64_t n, int n_threads) const override {
    // features(): emb [n, D, grid, grid] lives to the end; first the convolution's working set
    // (one image at a time), then x [R, D] with run_tower's buffers (h, q‖k‖v, attention out,
    // MLP hidden: R·(5D + I)) and each thread's head scores and Vᵀ (as plan/clip.cpp counts
    // CLIP's tower), then the pooled rows.
    const int64_t np = grid_ * grid_, T = np + (cls_.defined() ? 1 : 0), R = n * T;
    const int64_t I = tower_.config.intermediate, d = D_ / tower_.config.heads, S = grid_ * p_;
    const int64_t conv = ops::conv2d_scratch_bytes({n, 3, S, S}, patch_w_.shape, patch_w_.w.dtype(),
                                                   {.stride = {p_, p_}}, true);
    const int64_t tower =
        4 * (R * D_ + std::max(R * (5 * D_ + I) + n_threads * (T * T + d * T), n * D_));
    return 4 * n * np * D_ + std::max(conv, tower);
  }

  void add_scratch(cpu::ScratchPeak& s, int64_t n) const override {
    const int64_t np = grid_ * grid_, T = np + (cls_.defined() ? 1 : 0), R = n * T;
    const int64_t d = D_ / tower_.config.heads, K = 3 * p_ * p_;
    s.add(patch_w_.w.dtype(), ops::conv2d_tile_rows(K, np), K);
    s.add(weight_type_, R, D_);
    s.add(weight_type_, R, tower_.config.intermediate);
    s.add_per_thread(DType::F32, T, d);  // q·kᵀ per (image, head), one per thread
    s.add_per_thread(DType::F32, T, T);  // P·V
  }

  int64_t copied_bytes() const override {
    int64_t b = owned_bytes(patch_w_.w) + owned_bytes(patch_b_) + owned_bytes(cls_) +
                owned_bytes(pos_) + owned_bytes(norm_pre_) + owned_bytes(norm_) +
                owned_bytes(fc_norm_);
    for (const clip::EncoderLayer& L : tower_.layers)
      for (const clip::Linear* l : {&L.q, &L.k, &L.v, &L.out, &L.fc1, &L.fc2}) b += owned_bytes(*l);
    for (const clip::EncoderLayer& L : tower_.layers) b += owned_bytes(L.ln1) + owned_bytes(L.ln2);
    return b;
  }

 private:
  int64_t D_ = 0, p_ = 0, grid_ = 0;
  DType weight_type_ = DType::F32;
  ops::Conv2dWeight patch_w_;
  Tensor patch_b_, cls_, pos_;
  bool pos_has_prefix_ = true, avg_pool_ = true;
  clip::LayerNorm norm_pre_, norm_, fc_norm_;
  clip::Tower tower_;
};

}  // namespace

std::unique_ptr<Backbone> load_vit(const Config& c, const Weights& w) {
  return std::make_unique<ViT>(c, w);
}

}  // namespace eight::tagger::wd
