// Loading CLIP from GGUF. eight's conversion (clip_convert.cpp) and llama.cpp's CLIP/mmproj files
// share one layout: general.architecture "clip", clip.{text,vision}.* hyperparameters and t.* /
// v.* tensor names (the naming of llama.cpp's convert_image_encoder_to_gguf.py). mmproj files
// carry the vision tower only, often without post_ln and visual_projection (LLaVA uses the
// hidden states); their embeddings are then the normalized class token.
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "models/clip/clip_convert.h"
#include "models/clip/clip_internal.h"

namespace eight::clip {
namespace {

struct LayerName {
  const char* gguf;
  const char* hf;
};
// Per-layer tensors: GGUF suffix after "{t,v}.blk.N." and the Hugging Face one after
// "{text,vision}_model.encoder.layers.N.". fc1/fc2 map to ffn_up/ffn_down (llama.cpp's older
// files swapped the two names; the loader decides by shape).
constexpr LayerName kLayer[] = {
    {"ln1", "layer_norm1"},         {"ln2", "layer_norm2"},
    {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
    {"ffn_up", "mlp.fc1"},          {"ffn_down", "mlp.fc2"},
};
constexpr LayerName kGlobal[] = {
    {"t.token_embd", "text_model.embeddings.token_embedding"},
    {"t.position_embd", "text_model.embeddings.position_embedding"},
    {"t.post_ln", "text_model.final_layer_norm"},
    {"v.class_embd", "vision_model.embeddings.class_embedding"},
    {"v.patch_embd", "vision_model.embeddings.patch_embedding"},
    {"v.position_embd", "vision_model.embeddings.position_embedding"},
    {"v.pre_ln", "vision_model.pre_layrnorm"},
    {"v.post_ln", "vision_model.post_layernorm"},
    {"text_projection", "text_projection"},
    {"visual_projection", "visual_projection"},
    {"logit_scale", "logit_scale"},
};

// "x.weight" -> ("x", ".weight"); names without a .weight/.bias suffix keep it empty.
std::pair<std::string, std::string> split_suffix(const std::string& n) {
  for (const char* s : {".weight", ".bias"})
    if (n.ends_with(s)) return {n.substr(0, n.size() - std::strlen(s)), s};
  return {n, ""};
}

std::string map_name(const std::string& name, bool to_gguf) {
  const auto [stem, suffix] = split_suffix(name);
  for (const auto& g : kGlobal)
    if (stem == (to_gguf ? g.hf : g.gguf)) return std::string(to_gguf ? g.gguf : g.hf) + suffix;
  // "{text,vision}_model.encoder.layers.N.rest" <-> "{t,v}.blk.N.rest"
  const char* const from[2] = {to_gguf ? "text_model.encoder.layers." : "t.blk.",
                               to_gguf ? "vision_model.encoder.layers." : "v.blk."};
  for (int tower = 0; tower < 2; ++tower) {
    if (!stem.starts_with(from[tower])) continue;
    const size_t n0 = std::strlen(from[tower]), dot = stem.find('.', n0);
    if (dot == std::string::npos || dot == n0 || dot - n0 > 4) return "";
    const std::string layer = stem.substr(n0, dot - n0), rest = stem.substr(dot + 1);
    if (layer.find_first_not_of("0123456789") != std::string::npos) return "";
    for (const auto& l : kLayer) {
      if (rest != (to_gguf ? l.hf : l.gguf)) continue;
      if (to_gguf) return cat(tower == 0 ? "t" : "v", ".blk.", layer, ".", l.gguf, suffix);
      return cat(tower == 0 ? "text" : "vision", "_model.encoder.layers.", layer, ".", l.hf,
                 suffix);
    }
    return "";
  }
  return "";
}

TowerConfig tower_config(const gguf::File& f, const std::string& p, bool gelu) {
  TowerConfig t;
  t.hidden = static_cast<int>(f.get_u32(p + ".embedding_length"));
  t.intermediate = static_cast<int>(f.get_u32(p + ".feed_forward_length"));
  t.layers = static_cast<int>(f.get_u32(p + ".block_count"));
  t.heads = static_cast<int>(f.get_u32(p + ".attention.head_count"));
  t.eps = f.get_f32(p + ".attention.layer_norm_epsilon", 1e-5f);
  t.act = f.get_string(p + ".hidden_act", gelu ? "gelu" : "quick_gelu");
  check(t.hidden > 0 && t.heads > 0 && t.hidden % t.heads == 0 && t.intermediate > 0 &&
            t.layers <= 1024,
        "[clip] ", f.path(), ": ", p, " has embedding_length ", t.hidden, ", head_count ", t.heads,
        ", feed_forward_length ", t.intermediate, ", block_count ", t.layers);
  return t;
}

std::vector<float> f32s(const gguf::File& f, const std::string& key, size_t n) {
  const gguf::Value* v = f.find(key);
  if (!v) return {};
  std::vector<float> out = v->as_f32s();
  check(out.size() == n, "[clip] ", f.path(), ": ", key, " has ", out.size(), " values, not ", n);
  return out;
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf_name) {
  return map_name(hf_name, true);
}
std::string hf_tensor_name(const std::string& gguf_name) {
  return map_name(gguf_name, false);
}

std::unique_ptr<Model::Impl> load_gguf(const std::string& path) {
  return load_gguf(gguf::File::open(path), path);
}

std::unique_ptr<Model::Impl> load_gguf(const gguf::File& f, const std::string& path) {
  check(f.architecture() == "clip", "[clip] ", path, " is a '", f.architecture(),
        "' GGUF, not a CLIP model (general.architecture 'clip')");
  const bool gelu = f.get_bool("clip.use_gelu", false);
  Config c;
  c.has_text = f.get_bool("clip.has_text_encoder", false);
  const bool has_vision = f.get_bool("clip.has_vision_encoder", false);
  check(c.has_text || has_vision, "[clip] ", path, " has neither a text nor a vision encoder");
  if (c.has_text) {
    c.text = tower_config(f, "clip.text", gelu);
    c.max_positions = static_cast<int>(f.get_u32("clip.text.context_length", 77));
    c.eos_token_id = static_cast<int>(f.get_u32("clip.text.eos_token_id", 49407));
    c.bos_token_id = static_cast<int>(f.get_u32("clip.text.bos_token_id", 49406));
    c.projection_dim = static_cast<int>(f.get_u32("clip.text.projection_dim"));
  }
  if (has_vision) {
    c.vision = tower_config(f, "clip.vision", gelu);
    c.image_size = static_cast<int>(f.get_u32("clip.vision.image_size"));
    c.patch_size = static_cast<int>(f.get_u32("clip.vision.patch_size"));
    check(c.patch_size > 0 && c.image_size >= c.patch_size && c.image_size <= 8192, "[clip] ", path,
          ": image_size ", c.image_size, ", patch_size ", c.patch_size);
    const int vp = static_cast<int>(f.get_u32("clip.vision.projection_dim", 0));
    check(!c.has_text || vp == c.projection_dim, "[clip] ", path,
          ": text and vision projection_dim differ (", c.projection_dim, " vs ", vp, ")");
    c.projection_dim = f.find_tensor("visual_projection.weight") ? vp : c.vision.hidden;
    auto& pp = c.preprocess;
    pp.shortest_edge = static_cast<int>(f.get_u32("clip.vision.shortest_edge", c.image_size));
    pp.crop_height = static_cast<int>(f.get_u32("clip.vision.crop_height", c.image_size));
    pp.crop_width = static_cast<int>(f.get_u32("clip.vision.crop_width", c.image_size));
    pp.do_resize = f.get_bool("clip.vision.do_resize", true);
    pp.do_center_crop = f.get_bool("clip.vision.do_center_crop", true);
    pp.do_normalize = f.get_bool("clip.vision.do_normalize", true);
    pp.do_rescale = f.get_bool("clip.vision.do_rescale", true);
    pp.rescale_factor = f.get_f32("clip.vision.rescale_factor", 1.f / 255.f);
    const auto mean = f32s(f, "clip.vision.image_mean", 3),
               sd = f32s(f, "clip.vision.image_std", 3);
    for (size_t i = 0; i < mean.size(); ++i) pp.mean[i] = mean[i];
    for (size_t i = 0; i < sd.size(); ++i) pp.std[i] = sd[i];
  }
  c.logit_scale = f.get_f32("clip.logit_scale", 2.6592f);

  NamedTensors w;
  for (const auto& info : f.tensors()) {
    std::string hf = hf_tensor_name(info.name);
    if (hf.empty()) continue;  // projector (mm.*) and other tensors CLIP does not use
    w.emplace(std::move(hf), f.tensor(info));
  }
  // Older llama.cpp files name fc1 "ffn_down" and fc2 "ffn_up": fc1 is the one with
  // intermediate_size rows.
  for (const char* tower : {"text", "vision"}) {
    const TowerConfig& tc = std::string(tower) == "text" ? c.text : c.vision;
    for (int i = 0; i < tc.layers; ++i) {
      const std::string p = cat(tower, "_model.encoder.layers.", i, ".mlp.");
      auto a = w.find(p + "fc1.weight"), b = w.find(p + "fc2.weight");
      if (a == w.end() || b == w.end() || a->second.size(0) == tc.intermediate) continue;
      std::swap(a->second, b->second);
      for (const char* s : {"fc1.bias", "fc2.bias"})
        check(w.count(p + s), "[clip] ", path, ": layer ", i, " lacks ", s);
      std::swap(w[p + "fc1.bias"], w[p + "fc2.bias"]);
    }
  }
  std::optional<text::CLIPTokenizer> tok;
  if (c.has_text) {
    const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
    const gguf::Value* merges = f.find("tokenizer.ggml.merges");
    if (tokens && merges) {
      tok = text::CLIPTokenizer::from_vocab(tokens->as_strings(), merges->as_strings());
    } else {
      log_warn("[clip] ", path, " has no tokenizer.ggml.tokens/merges: text disabled");
      c.has_text = false;
    }
    if (auto it = w.find("text_model.embeddings.token_embedding.weight"); it != w.end())
      c.vocab_size = static_cast<int>(it->second.size(0));
  }
  return build_model(std::move(c), w, std::move(tok),
                     std::filesystem::path(path).filename().string());
}

}  // namespace eight::clip
