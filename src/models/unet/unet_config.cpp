// The UNet's architecture: from diffusers' unet/config.json (UNet2DConditionModel's arguments,
// with its defaults for absent keys), or from the tensor shapes of a file that has no config.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "models/unet/unet.h"

namespace eight::unet {
namespace {

using json = nlohmann::json;

// SDXL's width of an attention head in the UNet: a file without config gives its head counts as
// channels / 64.
constexpr int64_t kHeadWidth = 64;
// SDXL embeds each of its six micro-conditioning values in 256 sinusoidal features.
constexpr int64_t kSdxlTimeEmbedDim = 256;
constexpr int64_t kTimeIds = 6;

// config[key] as T, `fallback` when absent or null; Error naming the key when mistyped.
template <class T>
T field(const json& config, const char* key, T fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception& e) {
    fail("[unet] config.json: '", key, "' has the wrong type (", e.what(), ")");
  }
}

// An int-or-list key (attention_head_dim, transformer_layers_per_block) as one value per level.
std::vector<int64_t> per_level(const json& config, const char* key, int64_t fallback,
                               size_t levels) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::vector<int64_t>(levels, fallback);
  if (it->is_number_integer()) return std::vector<int64_t>(levels, it->get<int64_t>());
  check(it->is_array() && it->size() == levels, "[unet] config.json: '", key,
        "' must be a number or a list of ", levels, " numbers (one per level), got ", it->dump());
  std::vector<int64_t> v;
  for (const json& e : *it) {
    check(e.is_number_integer(), "[unet] config.json: '", key, "' holds ", e.dump(),
          ", not an integer");
    v.push_back(e.get<int64_t>());
  }
  return v;
}

void expect(const json& config, const char* key, const json& fallback, const json& want) {
  const auto it = config.find(key);
  const json& got = it == config.end() ? fallback : *it;
  check(got == want, "[unet] config.json: '", key, "' is ", got.dump(), "; eight's UNet runs ",
        want.dump(), " (SDXL's UNet2DConditionModel)");
}

Config from_json(const std::string& text) {
  json c;
  try {
    c = json::parse(text);
  } catch (const json::exception& e) {
    fail("[unet] config.json is not valid JSON: ", e.what());
  }
  check(c.is_object(), "[unet] config.json is not a JSON object");
  // What SDXL's configuration fixes and this implementation assumes.
  expect(c, "addition_embed_type", nullptr, "text_time");
  expect(c, "flip_sin_to_cos", true, true);
  expect(c, "freq_shift", 0, 0);
  expect(c, "time_embedding_type", "positional", "positional");
  expect(c, "mid_block_type", "UNetMidBlock2DCrossAttn", "UNetMidBlock2DCrossAttn");
  expect(c, "class_embed_type", nullptr, nullptr);
  expect(c, "encoder_hid_dim_type", nullptr, nullptr);
  expect(c, "time_cond_proj_dim", nullptr, nullptr);
  expect(c, "resnet_time_scale_shift", "default", "default");
  expect(c, "act_fn", "silu", "silu");
  expect(c, "conv_in_kernel", 3, 3);
  expect(c, "conv_out_kernel", 3, 3);
  expect(c, "center_input_sample", false, false);
  expect(c, "reverse_transformer_layers_per_block", nullptr, nullptr);
  check(field<double>(c, "mid_block_scale_factor", 1.0) == 1.0 &&
            field<double>(c, "resnet_out_scale_factor", 1.0) == 1.0,
        "[unet] config.json: output scale factors other than 1 are not supported");

  Config cfg;
  cfg.in_channels = field<int64_t>(c, "in_channels", 4);
  cfg.out_channels = field<int64_t>(c, "out_channels", 4);
  cfg.channels = field<std::vector<int64_t>>(c, "block_out_channels", {320, 640, 1280, 1280});
  const size_t levels = cfg.channels.size();
  check(levels > 0, "[unet] config.json: block_out_channels is empty");
  const auto down = field<std::vector<std::string>>(c, "down_block_types", {});
  const auto up = field<std::vector<std::string>>(c, "up_block_types", {});
  check(down.size() == levels && up.size() == levels, "[unet] config.json: ", down.size(),
        " down_block_types and ", up.size(), " up_block_types for ", levels, " block_out_channels");
  cfg.layers_per_block = field<int64_t>(c, "layers_per_block", 2);
  const auto depth = per_level(c, "transformer_layers_per_block", 1, levels);
  // diffusers' naming slip: attention_head_dim holds the head counts when num_attention_heads is
  // absent (unet_2d_condition.py, "num_attention_heads = num_attention_heads or
  // attention_head_dim").
  const bool named_heads = c.contains("num_attention_heads") && !c["num_attention_heads"].is_null();
  cfg.heads = per_level(c, named_heads ? "num_attention_heads" : "attention_head_dim", 8, levels);
  cfg.depth.resize(levels);
  for (size_t i = 0; i < levels; ++i) {
    const bool cross = down[i] == "CrossAttnDownBlock2D";
    check(cross || down[i] == "DownBlock2D", "[unet] config.json: down block ", i, " is ", down[i],
          " (DownBlock2D or CrossAttnDownBlock2D expected)");
    const std::string& u = up[levels - 1 - i];
    check(u == (cross ? "CrossAttnUpBlock2D" : "UpBlock2D"), "[unet] config.json: up block ",
          levels - 1 - i, " is ", u, " but mirrors down block ", i, " (", down[i], ")");
    cfg.depth[i] = cross ? depth[i] : 0;
  }
  cfg.mid_depth = depth.back();
  cfg.mid_heads = cfg.heads.back();
  cfg.cross_attention_dim = field<int64_t>(c, "cross_attention_dim", 1280);
  cfg.time_embed_dim = field<int64_t>(c, "time_embedding_dim", 4 * cfg.channels[0]);
  cfg.addition_time_embed_dim = field<int64_t>(c, "addition_time_embed_dim", 0);
  const auto add_in = field<int64_t>(c, "projection_class_embeddings_input_dim", 0);
  cfg.pooled_dim = add_in - kTimeIds * cfg.addition_time_embed_dim;
  check(cfg.addition_time_embed_dim > 0 && cfg.pooled_dim > 0,
        "[unet] config.json: ", "projection_class_embeddings_input_dim ", add_in,
        " and addition_time_embed_dim ", cfg.addition_time_embed_dim,
        " leave no room for the pooled text embedding");
  cfg.groups = field<int64_t>(c, "norm_num_groups", 32);
  cfg.eps = field<float>(c, "norm_eps", 1e-5f);
  cfg.linear_projection = field<bool>(c, "use_linear_projection", false);
  return cfg;
}

const Tensor& need(const Weights& w, const std::string& name, int dims) {
  const auto it = w.find(name);
  check(it != w.end(), "[unet] tensor '", name, "' is missing");
  check(it->second.dim() == dims, "[unet] tensor '", name, "' has shape ", it->second.shape().str(),
        ", expected ", dims, " dimensions");
  return it->second;
}

bool has_prefix(const Weights& w, const std::string& prefix) {
  const auto it = w.lower_bound(prefix);
  return it != w.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

// How many of prefix0., prefix1., ... are present (the first missing index ends the count).
int64_t count(const Weights& w, const std::string& prefix) {
  int64_t n = 0;
  while (has_prefix(w, prefix + std::to_string(n) + ".")) ++n;
  return n;
}

Config from_shapes(const Weights& w) {
  Config cfg;
  const Tensor& conv_in = need(w, "conv_in.weight", 4);
  cfg.in_channels = conv_in.size(1);
  cfg.out_channels = need(w, "conv_out.weight", 4).size(0);
  const int64_t levels = count(w, "down_blocks.");
  check(levels > 0, "[unet] no 'down_blocks.0.*' tensors: not a diffusers UNet");
  const std::string b0 = "down_blocks.0.resnets.";
  cfg.layers_per_block = count(w, b0);
  check(cfg.layers_per_block > 0, "[unet] no '", b0, "0.*' tensors");
  for (int64_t i = 0; i < levels; ++i) {
    const std::string p = "down_blocks." + std::to_string(i) + ".";
    const int64_t c = need(w, p + "resnets.0.conv1.weight", 4).size(0);
    cfg.channels.push_back(c);
    cfg.depth.push_back(count(w, p + "attentions.0.transformer_blocks."));
    cfg.heads.push_back(std::max<int64_t>(1, c / kHeadWidth));
  }
  cfg.mid_depth = count(w, "mid_block.attentions.0.transformer_blocks.");
  check(cfg.mid_depth > 0, "[unet] no 'mid_block.attentions.0.transformer_blocks.0.*' tensors");
  cfg.mid_heads = std::max<int64_t>(1, cfg.channels.back() / kHeadWidth);
  cfg.cross_attention_dim =
      need(w, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", 2).size(1);
  cfg.time_embed_dim = need(w, "time_embedding.linear_1.weight", 2).size(0);
  // add_embedding.linear_1 reads [text_embeds, 6 sinusoids of addition_time_embed_dim], and the
  // shapes cannot tell the two widths apart: SDXL's 256 when the input is wide enough, else
  // unknown (0), and forward() then takes pooled_dim from the width of text_embeds.
  const int64_t add_in = need(w, "add_embedding.linear_1.weight", 2).size(1);
  if (add_in > kTimeIds * kSdxlTimeEmbedDim) {
    cfg.addition_time_embed_dim = kSdxlTimeEmbedDim;
    cfg.pooled_dim = add_in - kTimeIds * kSdxlTimeEmbedDim;
  } else {
    cfg.addition_time_embed_dim = 0;
    cfg.pooled_dim = 0;
  }
  // proj_in is [C, C] when linear, [C, C, 1, 1] when a 1x1 convolution.
  const auto proj_in = w.find("mid_block.attentions.0.proj_in.weight");
  check(proj_in != w.end(), "[unet] tensor 'mid_block.attentions.0.proj_in.weight' is missing");
  cfg.linear_projection = proj_in->second.dim() == 2;
  return cfg;
}

}  // namespace

Config read_config(const Weights& weights, const std::string& config_json) {
  return config_json.empty() ? from_shapes(weights) : from_json(config_json);
}

}  // namespace eight::unet
