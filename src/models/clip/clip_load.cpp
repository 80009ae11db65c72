// Loading CLIP from a Hugging Face checkpoint directory, and binding named weights (by their
// Hugging Face names) to the towers.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "formats/safetensors.h"
#include "models/clip/clip_internal.h"

namespace eight::clip {
namespace {

using json = nlohmann::json;

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[clip] cannot open '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class T>
T field(const json& obj, const char* key, T fallback, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("[clip] config.json: ", where, ".", key, " has the wrong type: ", it->dump());
  }
}

// transformers' CLIPTextConfig / CLIPVisionConfig defaults for fields a config leaves out.
TowerConfig parse_tower(const json& j, const char* where, bool vision) {
  TowerConfig t;
  t.hidden = field<int>(j, "hidden_size", vision ? 768 : 512, where);
  t.intermediate = field<int>(j, "intermediate_size", vision ? 3072 : 2048, where);
  t.layers = field<int>(j, "num_hidden_layers", 12, where);
  t.heads = field<int>(j, "num_attention_heads", vision ? 12 : 8, where);
  t.eps = field<double>(j, "layer_norm_eps", 1e-5, where);
  t.act = field<std::string>(j, "hidden_act", "quick_gelu", where);
  check(t.hidden > 0 && t.intermediate > 0 && t.layers >= 0 && t.heads > 0 &&
            t.hidden % t.heads == 0 && t.hidden <= (1 << 16) && t.intermediate <= (1 << 18) &&
            t.layers <= 1024,
        "[clip] config.json: ", where, " has hidden_size ", t.hidden, ", intermediate_size ",
        t.intermediate, ", ", t.layers, " layers and ", t.heads, " heads");
  check(t.eps > 0 && t.eps < 1, "[clip] config.json: ", where, ".layer_norm_eps ", t.eps);
  return t;
}

ops::Activation activation_of(const std::string& act) {
  if (act == "quick_gelu") return ops::Activation::QuickGELU;
  if (act == "gelu") return ops::Activation::GELU;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return ops::Activation::GELUTanh;
  fail("[clip] unsupported hidden_act '", act, "' (quick_gelu, gelu, gelu_new)");
}

}  // namespace

Tensor need_tensor(const NamedTensors& w, const std::string& name, const Dims& shape) {
  auto it = w.find(name);
  check(it != w.end(), "[clip] missing tensor '", name, "'");
  check(it->second.shape() == shape, "[clip] tensor '", name, "' has shape ",
        it->second.shape().str(), ", expected ", shape.str());
  return it->second;
}

// A matrix as the matmul reads it: contiguous rows of a computable type.
Tensor weight_matrix(const NamedTensors& w, const std::string& name, const Dims& shape) {
  Tensor t = need_tensor(w, name, shape);
  check(dtype_info(t.dtype()).computable && t.dtype() != DType::I32 && t.dtype() != DType::I64,
        "[clip] tensor '", name, "' has type ", dtype_name(t.dtype()), ", not a weight type");
  return t.contiguous();
}

LayerNorm load_norm(const NamedTensors& w, const std::string& prefix, int64_t n) {
  return {to_f32(need_tensor(w, prefix + ".weight", {n})),
          to_f32(need_tensor(w, prefix + ".bias", {n}))};
}

Linear load_linear(const NamedTensors& w, const std::string& prefix, int64_t out, int64_t in) {
  Linear l{weight_matrix(w, prefix + ".weight", {out, in}), {}};
  if (w.count(prefix + ".bias")) l.bias = to_f32(need_tensor(w, prefix + ".bias", {out}));
  return l;
}

Tower load_tower(const NamedTensors& w, const std::string& prefix, const TowerConfig& c) {
  Tower t;
  t.config = c;
  t.act = activation_of(c.act);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = cat(prefix, ".encoder.layers.", i, ".");
    EncoderLayer L;
    L.ln1 = load_norm(w, p + "layer_norm1", c.hidden);
    L.q = load_linear(w, p + "self_attn.q_proj", c.hidden, c.hidden);
    L.k = load_linear(w, p + "self_attn.k_proj", c.hidden, c.hidden);
    L.v = load_linear(w, p + "self_attn.v_proj", c.hidden, c.hidden);
    L.out = load_linear(w, p + "self_attn.out_proj", c.hidden, c.hidden);
    L.ln2 = load_norm(w, p + "layer_norm2", c.hidden);
    L.fc1 = load_linear(w, p + "mlp.fc1", c.intermediate, c.hidden);
    L.fc2 = load_linear(w, p + "mlp.fc2", c.hidden, c.intermediate);
    t.layers.push_back(std::move(L));
  }
  return t;
}

int64_t tower_bytes(const Tower& t) {
  int64_t b = 0;
  for (const auto& L : t.layers)
    for (const Tensor* x :
         {&L.ln1.weight, &L.ln1.bias, &L.q.weight, &L.q.bias, &L.k.weight, &L.k.bias, &L.v.weight,
          &L.v.bias, &L.out.weight, &L.out.bias, &L.ln2.weight, &L.ln2.bias, &L.fc1.weight,
          &L.fc1.bias, &L.fc2.weight, &L.fc2.bias})
      if (x->defined()) b += static_cast<int64_t>(x->nbytes());
  return b;
}

TowerConfig parse_text_config(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail("[clip] text config.json is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[clip] text config.json is not an object");
  return parse_tower(j, "text_config", false);
}

Config parse_hf_config(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail("[clip] config.json is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[clip] config.json is not an object");
  // Early converted checkpoints also carry text_config_dict / vision_config_dict, whose fields
  // take precedence, as in transformers' CLIPConfig.
  auto section = [&j](const char* name) {
    json out = json::object();
    for (const std::string& key : {std::string(name), std::string(name) + "_dict"})
      if (j.contains(key) && j[key].is_object())
        for (auto it = j[key].begin(); it != j[key].end(); ++it) out[it.key()] = it.value();
    return out;
  };
  const json tj = section("text_config"), vj = section("vision_config");
  Config c;
  c.text = parse_tower(tj, "text_config", false);
  c.vision = parse_tower(vj, "vision_config", true);
  c.projection_dim = field<int>(j, "projection_dim", 512, "config");
  c.vocab_size = field<int>(tj, "vocab_size", 49408, "text_config");
  c.max_positions = field<int>(tj, "max_position_embeddings", 77, "text_config");
  c.eos_token_id = field<int>(tj, "eos_token_id", 49407, "text_config");
  c.bos_token_id = field<int>(tj, "bos_token_id", 49406, "text_config");
  c.image_size = field<int>(vj, "image_size", 224, "vision_config");
  c.patch_size = field<int>(vj, "patch_size", 32, "vision_config");
  c.logit_scale = field<float>(j, "logit_scale_init_value", 2.6592f, "config");
  check(c.projection_dim > 0 && c.projection_dim <= (1 << 16),
        "[clip] config.json: projection_dim ", c.projection_dim);
  check(c.vocab_size > 0 && c.vocab_size <= (1 << 24) && c.max_positions >= 2 &&
            c.max_positions <= 4096,
        "[clip] config.json: vocab_size ", c.vocab_size, ", max_position_embeddings ",
        c.max_positions);
  check(c.patch_size > 0 && c.image_size >= c.patch_size && c.image_size <= 8192,
        "[clip] config.json: image_size ", c.image_size, ", patch_size ", c.patch_size);
  c.preprocess.shortest_edge = c.image_size;
  c.preprocess.crop_height = c.preprocess.crop_width = c.image_size;
  return c;
}

std::unique_ptr<Model::Impl> build_model(Config config, const NamedTensors& w,
                                         std::optional<text::CLIPTokenizer> tokenizer,
                                         std::string name) {
  auto m = std::make_unique<Model::Impl>();
  const Config& c = config;
  m->name = std::move(name);
  const bool has_vision = w.count("vision_model.embeddings.patch_embedding.weight") != 0;
  config.has_text = config.has_text && w.count("text_model.embeddings.token_embedding.weight");
  check(has_vision || config.has_text, "[clip] ", m->name, " holds neither tower");
  if (config.has_text) {
    const TowerConfig& t = c.text;
    check(tokenizer.has_value(), "[clip] ", m->name, " has a text tower but no tokenizer");
    TextWeights& tw = m->text;
    tw.token_embedding =
        weight_matrix(w, "text_model.embeddings.token_embedding.weight", {c.vocab_size, t.hidden});
    tw.position_embedding = to_f32(need_tensor(w, "text_model.embeddings.position_embedding.weight",
                                               {c.max_positions, t.hidden}));
    tw.tower = load_tower(w, "text_model", t);
    tw.final_norm = load_norm(w, "text_model.final_layer_norm", t.hidden);
    tw.projection = weight_matrix(w, "text_projection.weight", {c.projection_dim, t.hidden});
    check(static_cast<int64_t>(tokenizer->vocab_size()) <= c.vocab_size, "[clip] ", m->name,
          ": the tokenizer has ", tokenizer->vocab_size(), " tokens, the model ", c.vocab_size);
    m->tokenizer = std::move(tokenizer);
    m->pool_at_argmax = c.eos_token_id == 2;
    m->weight_bytes +=
        static_cast<int64_t>(tw.token_embedding.nbytes() + tw.position_embedding.nbytes() +
                             tw.projection.nbytes()) +
        tower_bytes(tw.tower) + 2 * t.hidden * static_cast<int64_t>(sizeof(float));
  }
  if (has_vision) {
    const TowerConfig& v = c.vision;
    const int64_t p = c.patch_size, grid = c.image_size / p;
    VisionWeights& vw = m->vision;
    vw.class_embedding =
        to_f32(need_tensor(w, "vision_model.embeddings.class_embedding", {v.hidden}));
    const Tensor conv =
        weight_matrix(w, "vision_model.embeddings.patch_embedding.weight", {v.hidden, 3, p, p});
    vw.patch_embedding = conv.reshape({v.hidden, 3 * p * p});
    vw.position_embedding = to_f32(need_tensor(
        w, "vision_model.embeddings.position_embedding.weight", {grid * grid + 1, v.hidden}));
    vw.pre_norm = load_norm(w, "vision_model.pre_layrnorm", v.hidden);
    vw.tower = load_tower(w, "vision_model", v);
    // mmproj files for LLaVA drop the post-norm and the projection; their embeddings are the
    // normalized class token.
    if (w.count("vision_model.post_layernorm.weight"))
      vw.post_norm = load_norm(w, "vision_model.post_layernorm", v.hidden);
    if (w.count("visual_projection.weight"))
      vw.projection = weight_matrix(w, "visual_projection.weight", {c.projection_dim, v.hidden});
    else
      check(!config.has_text && c.projection_dim == v.hidden, "[clip] ", m->name,
            " has no visual_projection.weight");
    m->weight_bytes +=
        static_cast<int64_t>(vw.class_embedding.nbytes() + vw.patch_embedding.nbytes() +
                             vw.position_embedding.nbytes()) +
        tower_bytes(vw.tower) + 4 * v.hidden * static_cast<int64_t>(sizeof(float)) +
        (vw.projection.defined() ? vw.projection.nbytes() : 0);
  }
  if (auto it = w.find("logit_scale"); it != w.end()) {
    const Tensor s = to_f32(it->second);
    check(s.numel() == 1, "[clip] logit_scale has ", s.numel(), " elements");
    config.logit_scale = s.data<float>()[0];
  }
  m->config = std::move(config);
  return m;
}

HfDirectory read_hf_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  check(fs::exists(d / "config.json"), "[clip] '", dir, "' has no config.json");
  HfDirectory out{.config = parse_hf_config(read_text(d / "config.json")), .tokenizer = {}};
  if (fs::exists(d / "preprocessor_config.json"))
    out.config.preprocess =
        image::parse_preprocess_config(read_text(d / "preprocessor_config.json"));
  if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
    out.tokenizer = text::CLIPTokenizer::from_vocab_json(read_text(d / "vocab.json"),
                                                         read_text(d / "merges.txt"));
  else if (fs::exists(d / "tokenizer.json"))
    out.tokenizer = text::CLIPTokenizer::from_tokenizer_json(read_text(d / "tokenizer.json"));
  return out;
}

std::unique_ptr<Model::Impl> load_hf_directory(const std::string& dir) {
  const std::filesystem::path d(dir);
  HfDirectory hf = read_hf_directory(dir);
  Config config = std::move(hf.config);
  std::optional<text::CLIPTokenizer> tok = std::move(hf.tokenizer);

  // The tensors are views that keep the file mappings alive.
  const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(dir);
  NamedTensors w;
  for (const auto& n : ckpt.names()) {
    if (n.ends_with("position_ids")) continue;  // a buffer older checkpoints carry
    w.emplace(n, ckpt.tensor(n));
  }
  if (!tok) {
    log_warn("[clip] ", dir, " has no vocab.json+merges.txt or tokenizer.json: text disabled");
    config.has_text = false;
  }
  auto m = build_model(std::move(config), w, std::move(tok), d.filename().string());
  if (m->name.empty()) m->name = dir;
  log_debug("[clip] loaded ", dir, ": ", m->weight_bytes, " weight bytes");
  return m;
}

}  // namespace eight::clip
