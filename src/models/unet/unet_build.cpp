// Builds the UNet's weights by their diffusers names, checking each shape against the config
// (unet_2d_condition.py's channel bookkeeping), and the Model entry points.
#include <numeric>
#include <string>

#include "core/error.h"
#include "models/unet/unet_internal.h"
#include "ops/device.h"
#include "ops/get_rows.h"

namespace eight::unet {
namespace {

// Any float tensor as a new contiguous f32 copy (norm weights and biases, which the kernels read
// as f32 vectors).
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

// Looks tensors up by name, checks their shapes, and counts the bytes the model keeps. With
// `make`, it asks make() for each tensor instead and keeps them in made(). On a Vulkan device
// every tensor the model keeps is uploaded there (place()).
class Loader {
 public:
  explicit Loader(const Weights& w, MakeTensor make = {}, Device device = Device::cpu())
      : w_(w), make_(std::move(make)), device_(device) {}
  int64_t bytes() const { return bytes_; }
  int64_t device_bytes() const { return device_bytes_; }
  Device device() const { return device_; }
  const Weights& made() const { return made_; }
  bool synthesizing() const { return static_cast<bool>(make_); }

  Tensor get(const std::string& name, const Dims& shape) {
    if (make_) return made_[name] = make_(name, shape);
    const auto it = w_.find(name);
    check(it != w_.end(), "[unet] tensor '", name, "' is missing");
    check(it->second.shape() == shape, "[unet] tensor '", name, "' has shape ",
          it->second.shape().str(), ", expected ", shape.str());
    return it->second;
  }
  bool has(const std::string& name) const { return w_.count(name) != 0 || made_.count(name); }

  // A vector made f32 (norm weights, biases).
  Tensor vec(const std::string& name, int64_t n) {
    Tensor t = to_f32(get(name, {n}));
    bytes_ += static_cast<int64_t>(t.nbytes());
    return place(t);
  }
  Norm norm(const std::string& p, int64_t c) {
    return {vec(p + ".weight", c), vec(p + ".bias", c)};
  }

  Linear linear(const std::string& p, int64_t out, int64_t in, bool bias) {
    Linear l{.weight = get(p + ".weight", {out, in}), .bias = {}, .lora_down = {}, .lora_up = {}};
    bytes_ += static_cast<int64_t>(l.weight.nbytes());
    l.weight = place(l.weight);
    if (bias || has(p + ".bias")) l.bias = vec(p + ".bias", out);
    if (has(p + ".lora_down") || has(p + ".lora_up")) {
      const auto d = w_.find(p + ".lora_down"), u = w_.find(p + ".lora_up");
      check(d != w_.end() && u != w_.end(), "[unet] '", p,
            "' has only one of .lora_down and .lora_up");
      const int64_t r = d->second.dim() == 2 ? d->second.size(0) : 0;
      l.lora_down = get(p + ".lora_down", {r, in});
      l.lora_up = get(p + ".lora_up", {out, r});
      check(r > 0 && l.lora_down.dtype() == DType::F32 && l.lora_up.dtype() == DType::F32 &&
                l.lora_down.is_contiguous() && l.lora_up.is_contiguous(),
            "[unet] '", p, "': run-time LoRA factors must be contiguous f32 of rank > 0");
      bytes_ += static_cast<int64_t>(l.lora_down.nbytes() + l.lora_up.nbytes());
      l.lora_down = place(l.lora_down);
      l.lora_up = place(l.lora_up);
    }
    return l;
  }
  // A [C, C] projection stored as a linear weight or as a 1x1 convolution.
  Linear projection(const std::string& p, int64_t c, bool linear) {
    if (linear) return this->linear(p, c, c, true);
    Tensor w = get(p + ".weight", {c, c, 1, 1});
    bytes_ += static_cast<int64_t>(w.nbytes());
    return {.weight = place(w.reshape({c, c})),
            .bias = vec(p + ".bias", c),
            .lora_down = {},
            .lora_up = {}};
  }

  Conv conv(const std::string& p, int64_t out, int64_t in, int64_t k) {
    Tensor w = get(p + ".weight", {out, in, k, k});
    const DType t = w.dtype();
    check(t == DType::F32 || t == DType::F16 || t == DType::BF16, "[unet] tensor '", p,
          ".weight' is ", dtype_name(t), "; convolutions take f32, f16 or bf16");
    if (!w.is_contiguous()) w = w.contiguous();
    bytes_ += static_cast<int64_t>(w.nbytes());
    Conv c{.weight = {}, .bias = vec(p + ".bias", out)};
    // Only the names matter while synthesizing: the reorder would be wasted work.
    if (on_device())
      c.weight = {.w = place(w), .shape = w.shape()};
    else if (!synthesizing())
      c.weight = ops::conv2d_prepare_weight(w);
    return c;
  }

 private:
  bool on_device() const { return device_.kind != DeviceKind::CPU; }
  // t on the model's device (t itself on the CPU).
  Tensor place(const Tensor& t) {
    if (!on_device()) return t;
    Tensor d = ops::to_device(t, device_);
    device_bytes_ += static_cast<int64_t>((d.nbytes() + 3) / 4 * 4);  // whole words, as Buffer
    return d;
  }

  const Weights& w_;
  MakeTensor make_;
  Device device_;
  Weights made_;
  int64_t bytes_ = 0, device_bytes_ = 0;
};

ResBlock resblock(Loader& ld, const std::string& p, int64_t c_in, int64_t c_out, int64_t temb) {
  ResBlock r;
  r.c_in = c_in;
  r.c_out = c_out;
  r.norm1 = ld.norm(p + ".norm1", c_in);
  r.conv1 = ld.conv(p + ".conv1", c_out, c_in, 3);
  r.time_emb_proj = ld.linear(p + ".time_emb_proj", c_out, temb, true);
  r.norm2 = ld.norm(p + ".norm2", c_out);
  r.conv2 = ld.conv(p + ".conv2", c_out, c_out, 3);
  if (c_in != c_out) r.shortcut = ld.conv(p + ".conv_shortcut", c_out, c_in, 1);
  return r;
}

SpatialTransformer transformer(Loader& ld, const std::string& p, int64_t c, int64_t heads,
                               int64_t depth, const Config& cfg) {
  check(heads > 0 && c % heads == 0, "[unet] ", p, ": ", c, " channels do not split into ", heads,
        " heads");
  SpatialTransformer s;
  s.channels = c;
  s.heads = heads;
  s.norm = ld.norm(p + ".norm", c);
  s.proj_in = ld.projection(p + ".proj_in", c, cfg.linear_projection);
  s.proj_out = ld.projection(p + ".proj_out", c, cfg.linear_projection);
  for (int64_t i = 0; i < depth; ++i) {
    const std::string b = p + ".transformer_blocks." + std::to_string(i);
    const int64_t x = cfg.cross_attention_dim;
    TransformerBlock t;
    t.norm1 = ld.norm(b + ".norm1", c);
    t.q1 = ld.linear(b + ".attn1.to_q", c, c, false);
    t.k1 = ld.linear(b + ".attn1.to_k", c, c, false);
    t.v1 = ld.linear(b + ".attn1.to_v", c, c, false);
    t.out1 = ld.linear(b + ".attn1.to_out.0", c, c, true);
    t.norm2 = ld.norm(b + ".norm2", c);
    t.q2 = ld.linear(b + ".attn2.to_q", c, c, false);
    t.k2 = ld.linear(b + ".attn2.to_k", c, x, false);
    t.v2 = ld.linear(b + ".attn2.to_v", c, x, false);
    t.out2 = ld.linear(b + ".attn2.to_out.0", c, c, true);
    t.norm3 = ld.norm(b + ".norm3", c);
    t.ff_proj = ld.linear(b + ".ff.net.0.proj", 8 * c, c, true);  // GEGLU, inner = 4 C
    t.ff_out = ld.linear(b + ".ff.net.2", c, 4 * c, true);
    s.blocks.push_back(std::move(t));
  }
  return s;
}

void check_config(const Config& c) {
  const size_t levels = c.channels.size();
  check(levels > 0 && c.depth.size() == levels && c.heads.size() == levels, "[unet] config has ",
        levels, " levels of channels, ", c.depth.size(), " depths and ", c.heads.size(),
        " head counts");
  check(c.layers_per_block > 0 && c.mid_depth > 0 && c.mid_heads > 0 && c.groups > 0,
        "[unet] config: layers_per_block ", c.layers_per_block, ", mid_depth ", c.mid_depth,
        ", mid_heads ", c.mid_heads, " and groups ", c.groups, " must be positive");
  for (size_t i = 0; i < levels; ++i)
    check(c.channels[i] > 0 && c.channels[i] % c.groups == 0 && c.depth[i] >= 0,
          "[unet] config: level ", i, " has ", c.channels[i], " channels (not a multiple of ",
          c.groups, " groups) or depth ", c.depth[i]);
  check(c.addition_time_embed_dim >= 0 && c.pooled_dim >= 0 &&
            (c.addition_time_embed_dim == 0) == (c.pooled_dim == 0),
        "[unet] config: addition_time_embed_dim ", c.addition_time_embed_dim, " and pooled_dim ",
        c.pooled_dim, " must both be known (> 0) or both unknown (0)");
  check(c.addition_time_embed_dim % 2 == 0 && c.channels[0] % 2 == 0,
        "[unet] config: sinusoidal embeddings need even widths, got addition_time_embed_dim ",
        c.addition_time_embed_dim, " and channels[0] ", c.channels[0]);
}

// The builder's walk over every weight, reading them through `ld`.
std::unique_ptr<Model::Impl> build_with(Loader& ld, const Weights& weights, const Config& config) {
  check_config(config);
  auto m = std::make_unique<Model::Impl>();
  m->config = config;
  m->device = ld.device();
  const Config& c = m->config;
  const auto levels = static_cast<int64_t>(c.channels.size());
  const int64_t c0 = c.channels[0], ted = c.time_embed_dim;
  m->conv_in = ld.conv("conv_in", c0, c.in_channels, 3);
  m->time_1 = ld.linear("time_embedding.linear_1", ted, c0, true);
  m->time_2 = ld.linear("time_embedding.linear_2", ted, ted, true);
  // The pooled width may be unknown (a file without config); the in-features come from the file.
  if (!ld.synthesizing() || c.pooled_dim == 0) {
    const auto add = weights.find("add_embedding.linear_1.weight");
    check(add != weights.end() && add->second.dim() == 2,
          "[unet] tensor 'add_embedding.linear_1.weight' is missing or not 2-D");
    m->add_in = add->second.size(1);
  } else {
    m->add_in = c.pooled_dim + 6 * c.addition_time_embed_dim;
  }
  if (c.pooled_dim > 0)
    check(m->add_in == c.pooled_dim + 6 * c.addition_time_embed_dim,
          "[unet] tensor 'add_embedding.linear_1.weight' reads ", m->add_in,
          " features, but pooled_dim ", c.pooled_dim, " + 6 x addition_time_embed_dim ",
          c.addition_time_embed_dim, " = ", c.pooled_dim + 6 * c.addition_time_embed_dim);
  m->add_1 = ld.linear("add_embedding.linear_1", ted, m->add_in, true);
  m->add_2 = ld.linear("add_embedding.linear_2", ted, ted, true);

  for (int64_t i = 0; i < levels; ++i) {
    const std::string p = "down_blocks." + std::to_string(i);
    const int64_t out = c.channels[i];
    Level L;
    for (int64_t j = 0; j < c.layers_per_block; ++j) {
      const int64_t in = j > 0 ? out : i > 0 ? c.channels[i - 1] : c0;
      L.resnets.push_back(resblock(ld, p + ".resnets." + std::to_string(j), in, out, ted));
      if (c.depth[i] > 0)
        L.attentions.push_back(transformer(ld, p + ".attentions." + std::to_string(j), out,
                                           c.heads[i], c.depth[i], c));
    }
    if (i + 1 < levels) L.resample = ld.conv(p + ".downsamplers.0.conv", out, out, 3);
    m->down.push_back(std::move(L));
  }

  const int64_t cl = c.channels.back();
  m->mid_res0 = resblock(ld, "mid_block.resnets.0", cl, cl, ted);
  m->mid_attn = transformer(ld, "mid_block.attentions.0", cl, c.mid_heads, c.mid_depth, c);
  m->mid_res1 = resblock(ld, "mid_block.resnets.1", cl, cl, ted);

  // up_blocks.i mirrors level l = levels - 1 - i; each resnet reads the running channels plus
  // one skip, the last one the skip from the level above (CrossAttnUpBlock2D's
  // res_skip_channels).
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t l = levels - 1 - i, out = c.channels[l];
    const int64_t prev = i == 0 ? cl : c.channels[l + 1];
    const int64_t skip_last = c.channels[l > 0 ? l - 1 : 0];
    const std::string p = "up_blocks." + std::to_string(i);
    Level L;
    for (int64_t j = 0; j <= c.layers_per_block; ++j) {
      const int64_t in = (j == 0 ? prev : out) + (j == c.layers_per_block ? skip_last : out);
      L.resnets.push_back(resblock(ld, p + ".resnets." + std::to_string(j), in, out, ted));
      if (c.depth[l] > 0)
        L.attentions.push_back(transformer(ld, p + ".attentions." + std::to_string(j), out,
                                           c.heads[l], c.depth[l], c));
    }
    if (i + 1 < levels) L.resample = ld.conv(p + ".upsamplers.0.conv", out, out, 3);
    m->up.push_back(std::move(L));
  }
  m->norm_out = ld.norm("conv_norm_out", c0);
  m->conv_out = ld.conv("conv_out", c.out_channels, c0, 3);
  m->weight_bytes = ld.bytes();
  m->device_bytes = ld.device_bytes();
  return m;
}

}  // namespace

std::unique_ptr<Model::Impl> build_impl(const Weights& weights, const Config& config,
                                        Device device) {
  check(device.kind == DeviceKind::CPU || device.kind == DeviceKind::Vulkan,
        "[unet] no backend for device ", device.name());
  Loader ld(weights, {}, device);
  return build_with(ld, weights, config);
}

Weights synthesize_weights(const Config& config, const MakeTensor& make) {
  const Weights none;
  Loader ld(none, make);
  build_with(ld, none, config);
  return ld.made();
}

Config sdxl_base_config() {
  Config c;
  c.channels = {320, 640, 1280};
  c.depth = {0, 2, 10};
  c.heads = {5, 10, 20};  // attention heads of width 64
  c.mid_depth = 10;
  c.mid_heads = 20;
  return c;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::build(const Weights& weights, const Config& config,
                                          Device device) {
  return std::make_shared<const Model>(build_impl(weights, config, device));
}

std::shared_ptr<const Model> Model::build(const Weights& weights, const std::string& config_json,
                                          Device device) {
  return build(weights, read_config(weights, config_json), device);
}

const Config& Model::config() const {
  return impl_->config;
}
int64_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}
Device Model::device() const {
  return impl_->device;
}
int64_t Model::device_bytes() const {
  return impl_->device_bytes;
}

}  // namespace eight::unet
