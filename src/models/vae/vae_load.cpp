// AutoencoderKL's config (vae/config.json or the tensor shapes) and the binding of diffusers-named
// weights to the encoder and decoder, shape-checked.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "models/vae/vae_internal.h"
#include "ops/device.h"

namespace eight::vae {
namespace {

using json = nlohmann::json;

template <class T>
T field(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("[vae] config.json: '", key, "' has the wrong type: ", it->dump());
  }
}

const Tensor& need(const Weights& w, const std::string& name, const Dims& shape) {
  auto it = w.find(name);
  check(it != w.end(), "[vae] missing tensor '", name, "'");
  check(it->second.shape() == shape, "[vae] tensor '", name, "' has shape ",
        it->second.shape().str(), ", expected ", shape.str());
  return it->second;
}

// A norm weight or bias as a new f32 tensor.
Tensor to_f32(const Tensor& t, const std::string& name) {
  const DType d = t.dtype();
  check(d == DType::F32 || d == DType::F16 || d == DType::BF16, "[vae] tensor '", name,
        "' has type ", dtype_name(d), " (f32, f16 or bf16)");
  const Tensor c = t.contiguous();
  Tensor out = Tensor::empty(c.shape(), DType::F32);
  float* dst = out.data<float>();
  for (int64_t i = 0; i < c.numel(); ++i)
    dst[i] = d == DType::F32   ? c.data<float>()[i]
             : d == DType::F16 ? fp16_to_fp32(c.data<uint16_t>()[i])
                               : bf16_to_fp32(c.data<uint16_t>()[i]);
  return out;
}

Tensor vec(const Weights& w, const std::string& name, int64_t n) {
  return to_f32(need(w, name, {n}), name);
}

// A matrix or convolution weight used as the file stores it.
Tensor matrix(const Weights& w, const std::string& name, const Dims& shape) {
  const Tensor& t = need(w, name, shape);
  const DType d = t.dtype();
  check(d == DType::F32 || d == DType::F16 || d == DType::BF16, "[vae] tensor '", name,
        "' has type ", dtype_name(d), " (f32, f16 or bf16)");
  check(t.device() == Device::cpu(), "[vae] tensor '", name, "' is not in host memory");
  return t.contiguous();
}

Conv conv(const Weights& w, const std::string& p, int64_t out, int64_t in, int64_t k) {
  return {matrix(w, p + ".weight", {out, in, k, k}), vec(w, p + ".bias", out)};
}

GroupNorm norm(const Weights& w, const std::string& p, int64_t c) {
  return {vec(w, p + ".weight", c), vec(w, p + ".bias", c)};
}

Linear linear(const Weights& w, const std::string& p, int64_t c) {
  // Old checkpoints store the attention projections as 1x1 convolutions [C, C, 1, 1].
  auto it = w.find(p + ".weight");
  if (it != w.end() && it->second.dim() == 4 && it->second.shape() == Dims{c, c, 1, 1})
    return {matrix(w, p + ".weight", {c, c, 1, 1}).reshape({c, c}), vec(w, p + ".bias", c)};
  return {matrix(w, p + ".weight", {c, c}), vec(w, p + ".bias", c)};
}

Resnet resnet(const Weights& w, const std::string& p, int64_t in, int64_t out) {
  Resnet r;
  r.norm1 = norm(w, p + ".norm1", in);
  r.conv1 = conv(w, p + ".conv1", out, in, 3);
  r.norm2 = norm(w, p + ".norm2", out);
  r.conv2 = conv(w, p + ".conv2", out, out, 3);
  if (in != out) r.shortcut = conv(w, p + ".conv_shortcut", out, in, 1);
  return r;
}

MidBlock mid(const Weights& w, const std::string& p, int64_t c, bool attention) {
  MidBlock m;
  m.first = resnet(w, p + ".resnets.0", c, c);
  m.second = resnet(w, p + ".resnets.1", c, c);
  m.has_attention = attention;
  if (attention) {
    const std::string a = p + ".attentions.0";
    m.attention = {norm(w, a + ".group_norm", c), linear(w, a + ".to_q", c),
                   linear(w, a + ".to_k", c), linear(w, a + ".to_v", c),
                   linear(w, a + ".to_out.0", c)};
  }
  return m;
}

int64_t shape_at(const Weights& w, const std::string& name, int d) {
  auto it = w.find(name);
  check(it != w.end(), "[vae] missing tensor '", name, "' (needed to infer the config)");
  check(it->second.dim() > d, "[vae] tensor '", name, "' has shape ", it->second.shape().str());
  return it->second.size(d);
}

}  // namespace

Config read_config(const Weights& weights, const std::string& config_json) {
  Config c;
  if (!config_json.empty()) {
    json j;
    try {
      j = json::parse(config_json);
    } catch (const json::exception& e) {
      fail("[vae] config.json is not valid JSON: ", e.what());
    }
    check(j.is_object(), "[vae] config.json is not an object");
    // diffusers' AutoencoderKL defaults for what a config leaves out.
    c.in_channels = field<int64_t>(j, "in_channels", 3);
    c.out_channels = field<int64_t>(j, "out_channels", 3);
    c.latent_channels = field<int64_t>(j, "latent_channels", 4);
    c.channels = field<std::vector<int64_t>>(j, "block_out_channels", {64});
    c.layers_per_block = field<int64_t>(j, "layers_per_block", 1);
    c.groups = field<int64_t>(j, "norm_num_groups", 32);
    c.scaling_factor = field<float>(j, "scaling_factor", 0.18215f);
    c.shift_factor = field<float>(j, "shift_factor", 0.f);
    const bool quant = field<bool>(j, "use_quant_conv", true);
    const bool post_quant = field<bool>(j, "use_post_quant_conv", true);
    check(quant == post_quant, "[vae] config.json: use_quant_conv ", quant,
          " and use_post_quant_conv ", post_quant, " differ (not supported)");
    c.quant_conv = quant;
    c.mid_attention = field<bool>(j, "mid_block_add_attention", true);
  } else {
    c.in_channels = shape_at(weights, "encoder.conv_in.weight", 1);
    c.out_channels = shape_at(weights, "decoder.conv_out.weight", 0);
    c.latent_channels = shape_at(weights, "decoder.conv_in.weight", 1);
    for (int i = 0; weights.count(cat("encoder.down_blocks.", i, ".resnets.0.conv2.weight")); ++i)
      c.channels.push_back(
          shape_at(weights, cat("encoder.down_blocks.", i, ".resnets.0.conv2.weight"), 0));
    c.layers_per_block = 0;
    while (
        weights.count(cat("encoder.down_blocks.0.resnets.", c.layers_per_block, ".conv1.weight")))
      ++c.layers_per_block;
    c.quant_conv = weights.count("quant_conv.weight") != 0;
    c.mid_attention = weights.count("decoder.mid_block.attentions.0.to_q.weight") != 0;
  }
  check(!c.channels.empty() && c.channels.size() <= 8, "[vae] ", c.channels.size(),
        " levels (block_out_channels) is not 1 to 8");
  check(c.in_channels > 0 && c.out_channels > 0 && c.latent_channels > 0 &&
            c.layers_per_block > 0 && c.groups > 0,
        "[vae] in_channels ", c.in_channels, ", out_channels ", c.out_channels,
        ", latent_channels ", c.latent_channels, ", layers_per_block ", c.layers_per_block,
        " and norm_num_groups ", c.groups, " must be positive");
  for (int64_t ch : c.channels)
    check(ch > 0 && ch <= (1 << 14) && ch % c.groups == 0, "[vae] block_out_channels entry ", ch,
          " is not a positive multiple of norm_num_groups ", c.groups);
  return c;
}

namespace {

void place(Conv& c, Device d) {
  if (!c.weight.defined()) return;
  c = {ops::to_device(c.weight, d), ops::to_device(c.bias, d)};
}
void place(GroupNorm& g, Device d) {
  g = {ops::to_device(g.weight, d), ops::to_device(g.bias, d)};
}
void place(Linear& l, Device d) {
  l = {ops::to_device(l.weight, d), ops::to_device(l.bias, d)};
}
void place(Resnet& r, Device d) {
  place(r.norm1, d);
  place(r.conv1, d);
  place(r.norm2, d);
  place(r.conv2, d);
  place(r.shortcut, d);
}
void place(MidBlock& m, Device d) {
  place(m.first, d);
  place(m.second, d);
  if (!m.has_attention) return;
  for (Linear* l : {&m.attention.q, &m.attention.k, &m.attention.v, &m.attention.out}) place(*l, d);
  place(m.attention.norm, d);
}

}  // namespace

void place(Model::Impl& m, Device device) {
  Encoder& e = m.encoder;
  place(e.conv_in, device);
  for (DownBlock& b : e.down) {
    for (Resnet& r : b.resnets) place(r, device);
    place(b.downsample, device);
  }
  place(e.mid, device);
  place(e.norm_out, device);
  place(e.conv_out, device);
  place(e.quant_conv, device);
  Decoder& d = m.decoder;
  place(d.post_quant_conv, device);
  place(d.conv_in, device);
  place(d.mid, device);
  for (UpBlock& b : d.up) {
    for (Resnet& r : b.resnets) place(r, device);
    place(b.upsample, device);
  }
  place(d.norm_out, device);
  place(d.conv_out, device);
  m.device = device;
}

std::shared_ptr<const Model> Model::build(const Weights& weights, const std::string& config_json,
                                          Device device) {
  auto m = std::make_unique<Impl>();
  m->config = read_config(weights, config_json);
  const Config& c = m->config;
  const auto& ch = c.channels;
  const int64_t levels = static_cast<int64_t>(ch.size()), lat = c.latent_channels;

  Encoder& e = m->encoder;
  e.conv_in = conv(weights, "encoder.conv_in", ch[0], c.in_channels, 3);
  for (int64_t i = 0; i < levels; ++i) {
    DownBlock b;
    const std::string p = cat("encoder.down_blocks.", i);
    for (int64_t j = 0; j < c.layers_per_block; ++j)
      b.resnets.push_back(resnet(weights, cat(p, ".resnets.", j),
                                 j == 0 ? ch[std::max<int64_t>(i - 1, 0)] : ch[i], ch[i]));
    if (i + 1 < levels) b.downsample = conv(weights, p + ".downsamplers.0.conv", ch[i], ch[i], 3);
    e.down.push_back(std::move(b));
  }
  e.mid = mid(weights, "encoder.mid_block", ch.back(), c.mid_attention);
  e.norm_out = norm(weights, "encoder.conv_norm_out", ch.back());
  e.conv_out = conv(weights, "encoder.conv_out", 2 * lat, ch.back(), 3);
  if (c.quant_conv) e.quant_conv = conv(weights, "quant_conv", 2 * lat, 2 * lat, 1);

  Decoder& d = m->decoder;
  if (c.quant_conv) d.post_quant_conv = conv(weights, "post_quant_conv", lat, lat, 1);
  d.conv_in = conv(weights, "decoder.conv_in", ch.back(), lat, 3);
  d.mid = mid(weights, "decoder.mid_block", ch.back(), c.mid_attention);
  for (int64_t i = 0; i < levels; ++i) {
    UpBlock b;
    const std::string p = cat("decoder.up_blocks.", i);
    const int64_t out = ch[levels - 1 - i], in = ch[std::min(levels - 1, levels - i)];
    for (int64_t j = 0; j <= c.layers_per_block; ++j)
      b.resnets.push_back(resnet(weights, cat(p, ".resnets.", j), j == 0 ? in : out, out));
    if (i + 1 < levels) b.upsample = conv(weights, p + ".upsamplers.0.conv", out, out, 3);
    d.up.push_back(std::move(b));
  }
  d.norm_out = norm(weights, "decoder.conv_norm_out", ch[0]);
  d.conv_out = conv(weights, "decoder.conv_out", c.out_channels, ch[0], 3);

  // Every tensor bound above, counted once (each name is used by exactly one field).
  for (const auto& [name, t] : weights)
    if (name.starts_with("encoder.") || name.starts_with("decoder.") ||
        name.starts_with("quant_conv.") || name.starts_with("post_quant_conv."))
      m->weight_bytes += static_cast<int64_t>(t.nbytes());
  if (device.kind != DeviceKind::CPU) place(*m, device);
  return std::make_shared<const Model>(std::move(m));
}

}  // namespace eight::vae
