// FLUX transformer loading (flux.h): the config from diffusers' config.json or from the tensor
// shapes, and both key namings mapped onto one layout (flux_internal.h). BFL's names and fused
// tensors follow BFL's flux/model.py; the correspondence is the one diffusers' single-file
// converter (convert_flux_transformer_checkpoint_to_diffusers) documents.
#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "models/flux/flux_internal.h"

namespace eight::flux {

namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxDim = int64_t{1} << 20;  // far above any FLUX width, below overflow

bool bfl_names(const Weights& w) {
  return w.count("img_in.weight") != 0;
}

const Tensor& need(const Weights& w, const std::string& name, const Dims& shape) {
  const auto it = w.find(name);
  check(it != w.end(), "[flux] missing tensor '", name, "'");
  check(it->second.shape() == shape, "[flux] tensor '", name, "' has shape ",
        it->second.shape().str(), " but the config implies ", shape.str());
  return it->second;
}

// A bias or norm scale as contiguous f32 (these are small; the file may store BF16 or F8).
Tensor to_f32(const Tensor& t, const std::string& name) {
  if (t.dtype() == DType::F32 && t.is_contiguous()) return t;
  check(t.is_contiguous() && can_dequantize(t.dtype()), "[flux] tensor '", name, "' of type ",
        dtype_name(t.dtype()), " cannot be read as f32");
  Tensor out = Tensor::empty(t.shape(), DType::F32);
  dequantize_row(t.dtype(), t.raw(), out.data<float>(), t.numel());
  return out;
}

Tensor vec(const Weights& w, const std::string& name, int64_t n) {
  return to_f32(need(w, name, {n}), name);
}

// A linear layer `name`.weight [out, in] + `name`.bias [out]; with rows = {r0, r1} only those
// rows of a fused tensor of `total` rows (a view of the stored weight, never a copy).
nn::Linear linear(const Weights& w, const std::string& name, int64_t out, int64_t in,
                  int64_t total = 0, int64_t r0 = 0) {
  if (total == 0) total = out;
  const Tensor& wt = need(w, name + ".weight", {total, in});
  const Tensor b = vec(w, name + ".bias", total);
  return {.weight = wt.slice(0, r0, r0 + out), .bias = b.slice(0, r0, r0 + out)};
}

int64_t count_blocks(const Weights& w, const std::string& prefix) {
  int64_t n = 0;
  for (auto it = w.lower_bound(prefix); it != w.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    const char* s = it->first.c_str() + prefix.size();
    char* end = nullptr;
    const long long i = std::strtoll(s, &end, 10);
    if (end != s && *end == '.' && i >= 0 && i < kMaxDim) n = std::max<int64_t>(n, i + 1);
  }
  return n;
}

int64_t dim_of(const Weights& w, const std::string& name, int d) {
  const auto it = w.find(name);
  check(it != w.end(), "[flux] missing tensor '", name, "' (needed to infer the config)");
  check(it->second.dim() > d, "[flux] tensor '", name, "' has shape ", it->second.shape().str());
  return it->second.size(d);
}

Config config_from_shapes(const Weights& w) {
  Config c;
  const bool bfl = bfl_names(w);
  check(bfl || w.count("x_embedder.weight"), "[flux] not a FLUX transformer (neither ",
        "'img_in.weight' nor 'x_embedder.weight' present)");
  c.hidden = dim_of(w, bfl ? "img_in.weight" : "x_embedder.weight", 0);
  c.in_channels = dim_of(w, bfl ? "img_in.weight" : "x_embedder.weight", 1);
  c.context_dim = dim_of(w, bfl ? "txt_in.weight" : "context_embedder.weight", 1);
  c.pooled_dim = dim_of(
      w, bfl ? "vector_in.in_layer.weight" : "time_text_embed.text_embedder.linear_1.weight", 1);
  c.head_dim = dim_of(w,
                      bfl ? "double_blocks.0.img_attn.norm.query_norm.scale"
                          : "transformer_blocks.0.attn.norm_q.weight",
                      0);
  check(c.head_dim > 0 && c.hidden % c.head_dim == 0, "[flux] hidden size ", c.hidden,
        " is not a multiple of the head size ", c.head_dim);
  c.heads = c.hidden / c.head_dim;
  c.mlp_ratio =
      dim_of(w,
             bfl ? "double_blocks.0.img_mlp.0.weight" : "transformer_blocks.0.ff.net.0.proj.weight",
             0) /
      c.hidden;
  c.double_blocks = count_blocks(w, bfl ? "double_blocks." : "transformer_blocks.");
  c.single_blocks = count_blocks(w, bfl ? "single_blocks." : "single_transformer_blocks.");
  c.guidance_embed = w.count(bfl ? "guidance_in.in_layer.weight"
                                 : "time_text_embed.guidance_embedder.linear_1.weight") != 0;
  // FLUX.1 has head_dim 128 split 16/56/56; other splits are only known from a config.json.
  check(c.head_dim == 128, "[flux] head size ", c.head_dim, " is not FLUX.1's 128: the rotary ",
        "axes split cannot be inferred from the shapes; give the transformer's config.json");
  return c;
}

int64_t int_field(const Json& j, const char* key, int64_t fallback, int64_t min = 1) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_number_integer(), "[flux] config.json: ", key, " must be an integer, not ",
        j[key].dump());
  const int64_t v = j[key].get<int64_t>();
  check(v >= min && v <= kMaxDim, "[flux] config.json: ", key, " = ", v, " is out of range");
  return v;
}

Config config_from_json(const std::string& text) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail("[flux] config.json is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[flux] config.json is not a JSON object");
  Config c;
  check(int_field(j, "patch_size", 1) == 1, "[flux] config.json: only patch_size 1 is supported");
  c.in_channels = int_field(j, "in_channels", c.in_channels);
  check(int_field(j, "out_channels", c.in_channels) == c.in_channels,
        "[flux] config.json: out_channels different from in_channels is not supported");
  c.double_blocks = int_field(j, "num_layers", c.double_blocks, 0);
  c.single_blocks = int_field(j, "num_single_layers", c.single_blocks, 0);
  c.head_dim = int_field(j, "attention_head_dim", c.head_dim);
  c.heads = int_field(j, "num_attention_heads", c.heads);
  check(c.head_dim * c.heads <= kMaxDim, "[flux] config.json: ", c.heads, " heads of ", c.head_dim,
        " is too wide");
  c.hidden = c.head_dim * c.heads;
  c.context_dim = int_field(j, "joint_attention_dim", c.context_dim);
  c.pooled_dim = int_field(j, "pooled_projection_dim", c.pooled_dim);
  if (j.contains("guidance_embeds")) {
    check(j["guidance_embeds"].is_boolean(), "[flux] config.json: guidance_embeds must be a bool");
    c.guidance_embed = j["guidance_embeds"].get<bool>();
  }
  if (j.contains("axes_dims_rope") && !j["axes_dims_rope"].is_null()) {
    const Json& a = j["axes_dims_rope"];
    check(a.is_array() && a.size() == 3, "[flux] config.json: axes_dims_rope must be 3 integers");
    for (size_t i = 0; i < 3; ++i) {
      check(a[i].is_number_integer(), "[flux] config.json: axes_dims_rope[", i, "] ", a[i].dump());
      const int64_t v = a[i].get<int64_t>();
      check(v >= 0 && v <= kMaxDim && v % 2 == 0, "[flux] config.json: axes_dims_rope[", i,
            "] = ", v, " must be even and non-negative");
      c.axes_dim[i] = v;
    }
  }
  check(c.axes_dim[0] + c.axes_dim[1] + c.axes_dim[2] == c.head_dim,
        "[flux] config.json: axes_dims_rope sum to ", c.axes_dim[0] + c.axes_dim[1] + c.axes_dim[2],
        ", not the head size ", c.head_dim);
  if (j.contains("theta")) {  // not a diffusers key (fixed 10000 there); accepted for variants
    check(j["theta"].is_number() && j["theta"].get<double>() > 1, "[flux] config.json: theta");
    c.theta = j["theta"].get<double>();
  }
  return c;
}

Stream bfl_stream(const Weights& w, const std::string& b, const char* s, const Config& c) {
  const int64_t D = c.hidden, M = c.hidden * c.mlp_ratio, d = c.head_dim;
  const std::string p = b + s;
  return {.mod = linear(w, p + "_mod.lin", 6 * D, D),
          .q = linear(w, p + "_attn.qkv", D, D, 3 * D, 0),
          .k = linear(w, p + "_attn.qkv", D, D, 3 * D, D),
          .v = linear(w, p + "_attn.qkv", D, D, 3 * D, 2 * D),
          .q_norm = vec(w, p + "_attn.norm.query_norm.scale", d),
          .k_norm = vec(w, p + "_attn.norm.key_norm.scale", d),
          .out = linear(w, p + "_attn.proj", D, D),
          .mlp_in = linear(w, p + "_mlp.0", M, D),
          .mlp_out = linear(w, p + "_mlp.2", D, M)};
}

Stream diffusers_stream(const Weights& w, const std::string& b, bool txt, const Config& c) {
  const int64_t D = c.hidden, M = c.hidden * c.mlp_ratio, d = c.head_dim;
  const std::string a = b + "attn.";
  return {.mod = linear(w, b + (txt ? "norm1_context.linear" : "norm1.linear"), 6 * D, D),
          .q = linear(w, a + (txt ? "add_q_proj" : "to_q"), D, D),
          .k = linear(w, a + (txt ? "add_k_proj" : "to_k"), D, D),
          .v = linear(w, a + (txt ? "add_v_proj" : "to_v"), D, D),
          .q_norm = vec(w, a + (txt ? "norm_added_q.weight" : "norm_q.weight"), d),
          .k_norm = vec(w, a + (txt ? "norm_added_k.weight" : "norm_k.weight"), d),
          .out = linear(w, a + (txt ? "to_add_out" : "to_out.0"), D, D),
          .mlp_in = linear(w, b + (txt ? "ff_context" : "ff") + ".net.0.proj", M, D),
          .mlp_out = linear(w, b + (txt ? "ff_context" : "ff") + ".net.2", D, M)};
}

void load_bfl(const Weights& w, Transformer::Impl& m) {
  const Config& c = m.c;
  const int64_t D = c.hidden, M = c.hidden * c.mlp_ratio, d = c.head_dim;
  m.img_in = linear(w, "img_in", D, c.in_channels);
  m.txt_in = linear(w, "txt_in", D, c.context_dim);
  m.time_in = linear(w, "time_in.in_layer", D, 256);
  m.time_out = linear(w, "time_in.out_layer", D, D);
  m.vec_in = linear(w, "vector_in.in_layer", D, c.pooled_dim);
  m.vec_out = linear(w, "vector_in.out_layer", D, D);
  if (c.guidance_embed) {
    m.guidance_in = linear(w, "guidance_in.in_layer", D, 256);
    m.guidance_out = linear(w, "guidance_in.out_layer", D, D);
  }
  for (int64_t i = 0; i < c.double_blocks; ++i) {
    const std::string b = cat("double_blocks.", i, ".");
    m.doubles.push_back({.img = bfl_stream(w, b, "img", c), .txt = bfl_stream(w, b, "txt", c)});
  }
  for (int64_t i = 0; i < c.single_blocks; ++i) {
    const std::string b = cat("single_blocks.", i, ".");
    const int64_t rows = 3 * D + M;
    m.singles.push_back({.mod = linear(w, b + "modulation.lin", 3 * D, D),
                         .q = linear(w, b + "linear1", D, D, rows, 0),
                         .k = linear(w, b + "linear1", D, D, rows, D),
                         .v = linear(w, b + "linear1", D, D, rows, 2 * D),
                         .mlp = linear(w, b + "linear1", M, D, rows, 3 * D),
                         .q_norm = vec(w, b + "norm.query_norm.scale", d),
                         .k_norm = vec(w, b + "norm.key_norm.scale", d),
                         .out = linear(w, b + "linear2", D, D + M)});
  }
  // BFL's final modulation rows are (shift, scale); diffusers' norm_out.linear is (scale, shift).
  m.final_shift = linear(w, "final_layer.adaLN_modulation.1", D, D, 2 * D, 0);
  m.final_scale = linear(w, "final_layer.adaLN_modulation.1", D, D, 2 * D, D);
  m.final_out = linear(w, "final_layer.linear", c.in_channels, D);
}

void load_diffusers(const Weights& w, Transformer::Impl& m) {
  const Config& c = m.c;
  const int64_t D = c.hidden, M = c.hidden * c.mlp_ratio, d = c.head_dim;
  const std::string te = "time_text_embed.";
  m.img_in = linear(w, "x_embedder", D, c.in_channels);
  m.txt_in = linear(w, "context_embedder", D, c.context_dim);
  m.time_in = linear(w, te + "timestep_embedder.linear_1", D, 256);
  m.time_out = linear(w, te + "timestep_embedder.linear_2", D, D);
  m.vec_in = linear(w, te + "text_embedder.linear_1", D, c.pooled_dim);
  m.vec_out = linear(w, te + "text_embedder.linear_2", D, D);
  if (c.guidance_embed) {
    m.guidance_in = linear(w, te + "guidance_embedder.linear_1", D, 256);
    m.guidance_out = linear(w, te + "guidance_embedder.linear_2", D, D);
  }
  for (int64_t i = 0; i < c.double_blocks; ++i) {
    const std::string b = cat("transformer_blocks.", i, ".");
    m.doubles.push_back(
        {.img = diffusers_stream(w, b, false, c), .txt = diffusers_stream(w, b, true, c)});
  }
  for (int64_t i = 0; i < c.single_blocks; ++i) {
    const std::string b = cat("single_transformer_blocks.", i, ".");
    m.singles.push_back({.mod = linear(w, b + "norm.linear", 3 * D, D),
                         .q = linear(w, b + "attn.to_q", D, D),
                         .k = linear(w, b + "attn.to_k", D, D),
                         .v = linear(w, b + "attn.to_v", D, D),
                         .mlp = linear(w, b + "proj_mlp", M, D),
                         .q_norm = vec(w, b + "attn.norm_q.weight", d),
                         .k_norm = vec(w, b + "attn.norm_k.weight", d),
                         .out = linear(w, b + "proj_out", D, D + M)});
  }
  m.final_scale = linear(w, "norm_out.linear", D, D, 2 * D, 0);
  m.final_shift = linear(w, "norm_out.linear", D, D, 2 * D, D);
  m.final_out = linear(w, "proj_out", c.in_channels, D);
}

int64_t bytes_of(const nn::Linear& l) {
  return l.defined() ? static_cast<int64_t>(l.weight.nbytes()) : 0;
}

int64_t weight_bytes_of(const Transformer::Impl& m) {
  int64_t n = 0;
  for (const nn::Linear* l :
       {&m.img_in, &m.txt_in, &m.time_in, &m.time_out, &m.vec_in, &m.vec_out, &m.guidance_in,
        &m.guidance_out, &m.final_scale, &m.final_shift, &m.final_out})
    n += bytes_of(*l);
  for (const DoubleBlock& b : m.doubles)
    for (const Stream* s : {&b.img, &b.txt})
      for (const nn::Linear* l : {&s->mod, &s->q, &s->k, &s->v, &s->out, &s->mlp_in, &s->mlp_out})
        n += bytes_of(*l);
  for (const SingleBlock& b : m.singles)
    for (const nn::Linear* l : {&b.mod, &b.q, &b.k, &b.v, &b.mlp, &b.out}) n += bytes_of(*l);
  return n;
}

}  // namespace

Config read_config(const Weights& weights, const std::string& config_json) {
  if (config_json.empty()) return config_from_shapes(weights);
  return config_from_json(config_json);
}

bool is_flux_transformer(const Weights& weights) {
  const bool bfl =
      weights.count("img_in.weight") && weights.count("double_blocks.0.img_mod.lin.weight");
  const bool diffusers = weights.count("x_embedder.weight") &&
                         weights.count("transformer_blocks.0.norm1_context.linear.weight");
  return bfl || diffusers;
}

std::shared_ptr<const Transformer> Transformer::build(const Weights& weights,
                                                      const std::string& config_json) {
  check(is_flux_transformer(weights), "[flux] the weights are not a FLUX transformer (no ",
        "'img_in.weight' + 'double_blocks.0.img_mod.lin.weight' nor 'x_embedder.weight' + ",
        "'transformer_blocks.0.norm1_context.linear.weight')");
  auto impl = std::make_unique<Impl>();
  impl->c = read_config(weights, config_json);
  if (bfl_names(weights))
    load_bfl(weights, *impl);
  else
    load_diffusers(weights, *impl);
  impl->bytes = weight_bytes_of(*impl);
  return std::make_shared<const Transformer>(std::move(impl));
}

Transformer::Transformer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transformer::~Transformer() = default;

const Config& Transformer::config() const {
  return impl_->c;
}

int64_t Transformer::weight_bytes() const {
  return impl_->bytes;
}

}  // namespace eight::flux
