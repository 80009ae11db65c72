// MAGNeT LM loading (see magnet.h): xp.cfg (YAML text or plain dict) and the best_state weights.
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "formats/yaml.h"
#include "models/magnet/magnet_internal.h"
#include "models/registry.h"
#include "ops/get_rows.h"

namespace eight::magnet {

namespace {

const bool registered = (register_architecture({.name = "magnet",
                                                .family = "text-to-music",
                                                .summary = "MAGNeT masked music LM over "
                                                           "EnCodec codes (audiocraft "
                                                           "state_dict.bin)"}),
                         true);

using Json = nlohmann::json;

// A config value for a message; bytes that are not UTF-8 (the text is untrusted) are replaced
// rather than making the message itself throw.
std::string show(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// cfg at a dotted path, or nullptr when any part is absent or null.
const Json* at(const Json& cfg, std::initializer_list<const char*> path) {
  const Json* j = &cfg;
  for (const char* k : path) {
    if (!j->is_object() || !j->contains(k) || (*j)[k].is_null()) return nullptr;
    j = &(*j)[k];
  }
  return j;
}

int64_t int_at(const Json& cfg, std::initializer_list<const char*> path, int64_t fallback,
               int64_t lo, int64_t hi, const std::string& where) {
  const Json* j = at(cfg, path);
  if (j == nullptr) return fallback;
  check(j->is_number_integer(), "[magnet] ", where, ": xp.cfg ", *(path.end() - 1),
        " must be an integer, not ", show(*j));
  const auto v = j->get<int64_t>();
  check(v >= lo && v <= hi, "[magnet] ", where, ": xp.cfg ", *(path.end() - 1), " = ", v,
        " (expected ", lo, "..", hi, ")");
  return v;
}

double num_at(const Json& cfg, std::initializer_list<const char*> path, double fallback,
              const std::string& where) {
  const Json* j = at(cfg, path);
  if (j == nullptr) return fallback;
  check(j->is_number() && std::isfinite(j->get<double>()), "[magnet] ", where, ": xp.cfg ",
        *(path.end() - 1), " must be a finite number, not ", show(*j));
  return j->get<double>();
}

std::string str_at(const Json& cfg, std::initializer_list<const char*> path,
                   const std::string& fallback) {
  const Json* j = at(cfg, path);
  return j != nullptr && j->is_string() ? j->get<std::string>() : fallback;
}

// A setting eight does not implement must have its default value.
void require(const Json& cfg, const char* key, const Json& expected, const std::string& where) {
  const Json* j = at(cfg, {"transformer_lm", key});
  check(j == nullptr || *j == expected, "[magnet] ", where, ": transformer_lm.", key, " = ",
        j ? show(*j) : "", " is not supported (only ", show(expected), ")");
}

// A pickled plain-container config (dict / list / scalars) as JSON.
Json to_json(const pickle::Value& v, int depth) {
  check(depth < 64, "[magnet] xp.cfg is nested too deeply");
  switch (v.kind) {
    case pickle::Kind::None:
      return nullptr;
    case pickle::Kind::Bool:
      return v.b;
    case pickle::Kind::Int:
      return v.i;
    case pickle::Kind::Float:
      return v.f;
    case pickle::Kind::Str:
      return v.s;
    case pickle::Kind::List:
    case pickle::Kind::Tuple: {
      Json a = Json::array();
      for (const auto* x : v.items) a.push_back(to_json(*x, depth + 1));
      return a;
    }
    case pickle::Kind::Dict: {
      Json o = Json::object();
      for (const auto& [k, x] : v.dict)
        if (k->is(pickle::Kind::Str)) o[k->s] = to_json(*x, depth + 1);
      return o;
    }
    default:
      return nullptr;  // tensors and objects carry no hyperparameters
  }
}

Tensor to_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t;
  const int64_t n = t.numel();
  Tensor out = Tensor::empty({1, n}, DType::F32);
  Tensor ids = Tensor::zeros({1}, DType::I32);
  ops::get_rows(t.reshape({1, n}), ids, out);
  return out.reshape(t.shape());
}

}  // namespace

Config parse_config(const Json& cfg, const std::string& where) {
  Config c;
  if (cfg.is_null()) return c;
  check(cfg.is_object(), "[magnet] ", where, ": xp.cfg is not a mapping");
  const std::string model = str_at(cfg, {"lm_model"}, "transformer_lm_magnet");
  check(model == "transformer_lm_magnet", "[magnet] ", where, ": lm_model '", model,
        "' is not MAGNeT's transformer_lm_magnet");
  constexpr int64_t big = int64_t{1} << 20;
  c.dim = int_at(cfg, {"transformer_lm", "dim"}, 0, 2, 1 << 16, where);
  c.num_heads = int_at(cfg, {"transformer_lm", "num_heads"}, 0, 1, 1024, where);
  c.num_layers = int_at(cfg, {"transformer_lm", "num_layers"}, 0, 1, 1024, where);
  const double hidden_scale = num_at(cfg, {"transformer_lm", "hidden_scale"}, 4, where);
  check(hidden_scale > 0 && hidden_scale <= 64, "[magnet] ", where, ": hidden_scale ",
        hidden_scale);
  c.ffn = static_cast<int64_t>(hidden_scale * static_cast<double>(c.dim));
  c.n_q = int_at(cfg, {"transformer_lm", "n_q"}, 4, 1, 64, where);
  c.card = int_at(cfg, {"transformer_lm", "card"}, 2048, 2, big, where);
  c.subcodes_context = int_at(cfg, {"transformer_lm", "subcodes_context"}, 5, -1, big, where);
  c.span_len = int_at(cfg, {"masking", "span_len"}, 3, 1, 1024, where);
  c.frame_rate =
      int_at(cfg, {"transformer_lm", "compression_model_framerate"}, 50, 1, 100000, where);
  c.segment_duration = num_at(cfg, {"dataset", "segment_duration"}, 10, where);
  c.max_period = num_at(cfg, {"transformer_lm", "max_period"}, 10000, where);
  c.positional_scale = num_at(cfg, {"transformer_lm", "positional_scale"}, 1, where);
  c.cross_pos_emb = at(cfg, {"fuser", "cross_attention_pos_emb"}) != nullptr &&
                    *at(cfg, {"fuser", "cross_attention_pos_emb"}) == true;
  c.cross_pos_emb_scale = num_at(cfg, {"fuser", "cross_attention_pos_emb_scale"}, 1, where);
  c.sample_rate = int_at(cfg, {"sample_rate"}, 32000, 1, 1 << 22, where);
  c.text_encoder = str_at(cfg, {"conditioners", "description", "t5", "name"}, "t5-base");
  const std::string cond = str_at(cfg, {"conditioners", "description", "model"}, "t5");
  check(cond == "t5", "[magnet] ", where, ": the description conditioner is '", cond,
        "'; only T5 is supported");
  for (const char* op : {"sum", "prepend", "input_interpolate"}) {
    const Json* j = at(cfg, {"fuser", op});
    check(j == nullptr || (j->is_array() && j->empty()), "[magnet] ", where, ": fuser.", op, " = ",
          j ? show(*j) : "", " is not supported (conditions go through cross-attention)");
  }
  check(c.max_period > 1, "[magnet] ", where, ": max_period ", c.max_period);
  require(cfg, "norm_first", true, where);
  require(cfg, "activation", "gelu", where);
  require(cfg, "norm", "layer_norm", where);
  require(cfg, "positional_embedding", "sin", where);
  require(cfg, "layer_scale", nullptr, where);
  require(cfg, "kv_repeat", 1, where);
  require(cfg, "qk_layer_norm", false, where);
  require(cfg, "qk_layer_norm_cross", false, where);
  require(cfg, "causal", false, where);
  return c;
}

void sin_embedding(int64_t t, int64_t dim, double max_period, float* out) {
  // audiocraft computes this in float32: phase = t / max_period ** (i / (half - 1)).
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float e = half > 1 ? static_cast<float>(i) / static_cast<float>(half - 1) : 0.f;
    const float phase = static_cast<float>(t) / std::pow(static_cast<float>(max_period), e);
    out[i] = std::cos(phase);
    out[half + i] = std::sin(phase);
  }
}

std::shared_ptr<const LM> LM::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string file =
      fs::is_directory(path, ec) ? (fs::path(path) / "state_dict.bin").string() : path;
  auto impl = std::make_unique<Impl>(torch::Checkpoint::open(file));
  impl->path = file;
  const torch::Checkpoint& ck = impl->ckpt;
  Json cfg;
  if (const auto* x = ck.root().get("xp.cfg")) {
    if (x->is(pickle::Kind::Str))
      cfg = yaml::parse(x->s, file + " xp.cfg");
    else if (x->is(pickle::Kind::Dict))
      cfg = to_json(*x, 0);
  }
  Config c = parse_config(cfg, file);
  auto info = [&](const std::string& key) { return ck.find_tensor(ck.state_dict_prefix() + key); };
  const auto* e0 = info("emb.0.weight");
  check(e0 != nullptr && e0->shape.size() == 2, "[magnet] ", file,
        ": no 2-D 'emb.0.weight' (is this a MAGNeT / MusicGen LM state_dict.bin?)");
  if (c.dim == 0) c.dim = e0->shape[1];
  if (c.ffn == 0) c.ffn = 4 * c.dim;
  if (cfg.is_null()) {  // no config: the shapes tell what they can
    c.card = e0->shape[0] - 1;
    for (c.n_q = 0; info(cat("emb.", c.n_q, ".weight")); ++c.n_q) {
    }
    if (const auto* l1 = info("transformer.layers.0.linear1.weight")) c.ffn = l1->shape[0];
  }
  if (c.num_layers == 0)
    while (info(cat("transformer.layers.", c.num_layers, ".norm1.weight"))) ++c.num_layers;
  if (c.num_heads == 0) c.num_heads = std::max<int64_t>(1, c.dim / 64);
  check(c.num_layers > 0 && c.dim % c.num_heads == 0 && c.dim % 2 == 0, "[magnet] ", file, ": dim ",
        c.dim, " with ", c.num_heads, " heads and ", c.num_layers, " layers");
  const int64_t D = c.dim;
  auto need = [&](const std::string& key, const Dims& shape) {
    const Tensor t = ck.state_tensor(key);
    check(t.shape() == shape, "[magnet] ", file, ": '", key, "' has shape ", t.shape().str(),
          " but the config implies ", shape.str());
    return t;
  };
  auto optional = [&](const std::string& key, const Dims& shape) {
    return info(key) ? to_f32(need(key, shape)) : Tensor();
  };
  auto linear = [&](const std::string& key, const Dims& shape) {
    return nn::Linear{need(key + ".weight", shape), optional(key + ".bias", {shape[0]})};
  };
  auto norm = [&](const std::string& key) {
    return Norm{to_f32(need(key + ".weight", {D})), to_f32(need(key + ".bias", {D}))};
  };
  for (int64_t k = 0; k < c.n_q; ++k) {
    impl->emb.push_back(need(cat("emb.", k, ".weight"), {c.card + 1, D}));
    impl->linears.push_back(linear(cat("linears.", k), {c.card, D}));
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = cat("transformer.layers.", i, ".");
    Layer L;
    L.norm1 = norm(p + "norm1");
    L.norm2 = norm(p + "norm2");
    L.norm_cross = norm(p + "norm_cross");
    // audiocraft's custom attention names them in_proj_weight / in_proj_bias.
    const Tensor w = need(p + "self_attn.in_proj_weight", {3 * D, D});
    L.in_proj = {w, optional(p + "self_attn.in_proj_bias", {3 * D})};
    L.out_proj = linear(p + "self_attn.out_proj", {D, D});
    const Tensor cw = need(p + "cross_attention.in_proj_weight", {3 * D, D});
    const Tensor cb = optional(p + "cross_attention.in_proj_bias", {3 * D});
    nn::Linear* parts[] = {&L.cross_q, &L.cross_k, &L.cross_v};
    for (int64_t j = 0; j < 3; ++j)
      *parts[j] = {cw.slice(0, j * D, (j + 1) * D),
                   cb.defined() ? cb.slice(0, j * D, (j + 1) * D) : Tensor()};
    L.cross_o = linear(p + "cross_attention.out_proj", {D, D});
    L.linear1 = linear(p + "linear1", {c.ffn, D});
    L.linear2 = linear(p + "linear2", {D, c.ffn});
    impl->layers.push_back(std::move(L));
  }
  if (info("out_norm.weight")) impl->out_norm = norm("out_norm");
  const std::string proj = "condition_provider.conditioners.description.output_proj";
  const auto* pw = info(proj + ".weight");
  check(pw != nullptr && pw->shape.size() == 2, "[magnet] ", file, ": no 2-D '", proj,
        ".weight' (the T5 conditioner's projection)");
  c.text_dim = pw->shape[1];
  impl->output_proj = linear(proj, {D, c.text_dim});
  impl->c = c;
  return std::make_shared<const LM>(std::move(impl));
}

LM::LM(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LM::~LM() = default;
const Config& LM::config() const {
  return impl_->c;
}
const std::string& LM::path() const {
  return impl_->path;
}

}  // namespace eight::magnet
