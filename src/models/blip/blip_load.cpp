// Loading BLIP from a Hugging Face directory: config.json (BlipConfig with transformers'
// defaults), generation_config.json, preprocessor_config.json, the WordPiece vocabulary
// (tokenizer.json, else vocab.txt with tokenizer_config.json's added tokens) and the safetensors
// weights, bound by their Hugging Face names.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/storage.h"
#include "formats/safetensors.h"
#include "formats/torch_checkpoint.h"
#include "models/blip/blip_internal.h"

namespace eight::blip {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clip::NamedTensors;

json parse_json_text(const std::string& text, const std::string& name) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("[blip] ", name, " is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[blip] ", name, " is not a JSON object");
  return j;
}

json parse_json(const fs::path& p) {
  return parse_json_text(read_small_file(p.string(), "[blip]"), p.string());
}

template <class T>
T field(const json& obj, const char* key, T fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("[blip] config field '", key, "' has the wrong type: ", it->dump());
  }
}

void check_tower(int hidden, int inter, int layers, int heads, const char* where) {
  check(hidden > 0 && hidden <= (1 << 15) && inter > 0 && inter <= (1 << 17) && layers >= 0 &&
            layers <= 256 && heads > 0 && hidden % heads == 0,
        "[blip] config.json: ", where, " has hidden_size ", hidden, ", intermediate_size ", inter,
        ", ", layers, " layers and ", heads, " heads");
}

Config parse_config(const json& j) {
  check(!j.contains("vision_config") || j["vision_config"].is_object(),
        "[blip] config.json: vision_config is not an object");
  check(!j.contains("text_config") || j["text_config"].is_object(),
        "[blip] config.json: text_config is not an object");
  Config c;
  const std::string arch = j.contains("architectures") && j["architectures"].is_array() &&
                                   !j["architectures"].empty() && j["architectures"][0].is_string()
                               ? j["architectures"][0].get<std::string>()
                               : "";
  check(arch == "BlipForConditionalGeneration" || arch == "BlipForQuestionAnswering",
        "[blip] config.json names architecture '", arch,
        "'; BlipForConditionalGeneration or BlipForQuestionAnswering is needed");
  c.vqa = arch == "BlipForQuestionAnswering";
  const json vj = j.value("vision_config", json::object()),
             tj = j.value("text_config", json::object());
  VisionConfig& v = c.vision;
  v.hidden = field(vj, "hidden_size", v.hidden);
  v.intermediate = field(vj, "intermediate_size", v.intermediate);
  v.layers = field(vj, "num_hidden_layers", v.layers);
  v.heads = field(vj, "num_attention_heads", v.heads);
  v.image_size = field(vj, "image_size", v.image_size);
  v.patch_size = field(vj, "patch_size", v.patch_size);
  v.eps = field(vj, "layer_norm_eps", v.eps);
  check_tower(v.hidden, v.intermediate, v.layers, v.heads, "vision_config");
  check(v.patch_size > 0 && v.image_size >= v.patch_size && v.image_size <= 4096,
        "[blip] config.json: image_size ", v.image_size, ", patch_size ", v.patch_size);
  check(field<std::string>(vj, "hidden_act", "gelu") == "gelu" &&
            field<std::string>(tj, "hidden_act", "gelu") == "gelu",
        "[blip] config.json: only hidden_act 'gelu' is supported");
  TextConfig& t = c.text;
  t.hidden = field(tj, "hidden_size", t.hidden);
  t.intermediate = field(tj, "intermediate_size", t.intermediate);
  t.layers = field(tj, "num_hidden_layers", t.layers);
  t.heads = field(tj, "num_attention_heads", t.heads);
  t.encoder_hidden = field(tj, "encoder_hidden_size", t.encoder_hidden);
  t.vocab_size = field(tj, "vocab_size", t.vocab_size);
  t.max_positions = field(tj, "max_position_embeddings", t.max_positions);
  t.eps = field(tj, "layer_norm_eps", t.eps);
  t.bos_token_id = field(tj, "bos_token_id", t.bos_token_id);
  t.sep_token_id = field(tj, "sep_token_id", t.sep_token_id);
  t.pad_token_id = field(tj, "pad_token_id", t.pad_token_id);
  check_tower(t.hidden, t.intermediate, t.layers, t.heads, "text_config");
  check(t.vocab_size > 0 && t.vocab_size <= (1 << 20) && t.max_positions >= 2 &&
            t.max_positions <= 8192 && t.encoder_hidden > 0 && t.encoder_hidden <= (1 << 15),
        "[blip] config.json: text_config vocab_size ", t.vocab_size, ", max_position_embeddings ",
        t.max_positions);
  check(t.bos_token_id >= 0 && t.bos_token_id < t.vocab_size && t.sep_token_id >= 0 &&
            t.sep_token_id < t.vocab_size,
        "[blip] config.json: bos_token_id ", t.bos_token_id, " / sep_token_id ", t.sep_token_id,
        " outside the vocabulary of ", t.vocab_size);
  // Legacy generation fields in text_config (what transformers' GenerationConfig falls back to).
  GenerationConfig& g = c.generation;
  g.max_length_set = tj.contains("max_length") && !tj["max_length"].is_null();
  g.max_length = field(tj, "max_length", g.max_length);
  g.min_length = field(tj, "min_length", g.min_length);
  g.num_beams = field(tj, "num_beams", g.num_beams);
  g.length_penalty = field(tj, "length_penalty", g.length_penalty);
  if (field(tj, "repetition_penalty", 1.0) != 1.0 || field(tj, "no_repeat_ngram_size", 0) > 0)
    log_warn("[blip] text_config sets repetition_penalty / no_repeat_ngram_size: not applied");
  return c;
}

void parse_generation(const json& j, GenerationConfig& g) {
  g.max_length_set = g.max_length_set || (j.contains("max_length") && !j["max_length"].is_null());
  g.max_length = field(j, "max_length", g.max_length);
  g.min_length = field(j, "min_length", g.min_length);
  g.num_beams = field(j, "num_beams", g.num_beams);
  g.length_penalty = field(j, "length_penalty", g.length_penalty);
  if (field(j, "repetition_penalty", 1.0) != 1.0 || field(j, "no_repeat_ngram_size", 0) > 0)
    log_warn("[blip] repetition_penalty / no_repeat_ngram_size are set but not applied");
  if (j.contains("early_stopping") && j["early_stopping"].is_boolean())
    g.early_stopping = j["early_stopping"].get<bool>();
  check(g.max_length >= 1 && g.max_length <= 8192 && g.min_length >= 0 && g.num_beams >= 1 &&
            g.num_beams <= 64,
        "[blip] generation settings max_length ", g.max_length, ", min_length ", g.min_length,
        ", num_beams ", g.num_beams, " are out of range");
}

// BlipImageProcessor: "size": {"height", "width"} (or an int), mean/std/rescale as CLIP's.
image::PreprocessConfig parse_preprocess(const fs::path& p, int image_size) {
  image::PreprocessConfig pc;
  int h = image_size, w = image_size;
  if (fs::exists(p)) {
    json j = parse_json(p);
    // CLIP's parser reads mean, std and rescaling; BLIP's height x width size is read here.
    json rest = j;
    rest.erase("size");
    pc = image::parse_preprocess_config(rest.dump());
    if (j.contains("size") && j["size"].is_object()) {
      h = field(j["size"], "height", h);
      w = field(j["size"], "width", w);
    } else if (j.contains("size") && j["size"].is_number_integer()) {
      h = w = j["size"].get<int>();
    }
  }
  check(h > 0 && w > 0 && h <= 4096 && w <= 4096, "[blip] preprocessor size ", h, "x", w);
  pc.crop_height = h;
  pc.crop_width = w;
  pc.shortest_edge = std::min(h, w);
  pc.do_resize = false;  // the resize ignores the aspect ratio; Model::preprocess does it
  pc.do_center_crop = true;
  return pc;
}

// Specials that decode(skip_special_tokens=True) drops: BERT's own and every added special token.
void mark_special(Vocab& v, const std::string& token) {
  auto it = v.ids.find(token);
  if (it != v.ids.end()) v.special[static_cast<size_t>(it->second)] = true;
}

void add_token(Vocab& v, const std::string& token, int32_t id) {
  check(id >= 0 && id < (1 << 20), "[blip] tokenizer: token id ", id, " out of range");
  if (static_cast<size_t>(id) >= v.tokens.size()) {
    v.tokens.resize(static_cast<size_t>(id) + 1);
    v.special.resize(static_cast<size_t>(id) + 1, false);
  }
  v.tokens[static_cast<size_t>(id)] = token;
  v.ids.emplace(token, id);
}

}  // namespace

static Vocab parse_vocab_json(const std::string& tokenizer_json, const std::string& vocab_txt,
                              const std::string& tokenizer_config) {
  Vocab v;
  std::vector<std::string> added_special;
  if (!tokenizer_json.empty()) {
    const json j = parse_json_text(tokenizer_json, "tokenizer.json");
    const json& model = j.contains("model") ? j["model"] : json();
    check(model.is_object() && model.value("type", "") == "WordPiece" && model.contains("vocab") &&
              model["vocab"].is_object(),
          "[blip] tokenizer.json is not a WordPiece tokenizer");
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      check(it.value().is_number_integer(), "[blip] tokenizer.json: id of '", it.key(),
            "' is not an integer");
      add_token(v, it.key(), it.value().get<int32_t>());
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const json& t : j["added_tokens"]) {
        const std::string content = t.value("content", "");
        check(t.is_object(), "[blip] tokenizer.json: an added token is not an object");
        add_token(v, content, t.value("id", -1));
        if (t.value("special", false)) added_special.push_back(content);
      }
  } else {
    check(!vocab_txt.empty(), "[blip] the model has neither tokenizer.json nor vocab.txt");
    std::istringstream in(vocab_txt);
    int32_t id = 0;
    for (std::string line; std::getline(in, line); ++id) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      add_token(v, line, id);
    }
  }
  if (!tokenizer_config.empty()) {
    const json j = parse_json_text(tokenizer_config, "tokenizer_config.json");
    // Added tokens ([DEC], [ENC]) follow the vocabulary in order when only vocab.txt lists it.
    for (const char* key : {"bos_token", "eos_token"})
      if (j.contains(key) && j[key].is_string()) added_special.push_back(j[key].get<std::string>());
    for (const char* key : {"additional_special_tokens", "extra_special_tokens"})
      if (j.contains(key) && j[key].is_array())
        for (const json& t : j[key])
          if (t.is_string()) added_special.push_back(t.get<std::string>());
    if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object())
      for (auto it = j["added_tokens_decoder"].begin(); it != j["added_tokens_decoder"].end(); ++it)
        if (it.value().is_object() && !v.ids.count(it.value().value("content", ""))) {
          int32_t id = -1;
          try {
            id = std::stoi(it.key());
          } catch (const std::exception&) {
          }
          add_token(v, it.value().value("content", ""), id);
        }
    for (const std::string& t : added_special)
      if (!v.ids.count(t)) add_token(v, t, static_cast<int32_t>(v.tokens.size()));
  }
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) mark_special(v, t);
  for (const std::string& t : added_special) mark_special(v, t);
  auto id_of = [&v](const char* t) {
    auto it = v.ids.find(t);
    return it == v.ids.end() ? -1 : it->second;
  };
  v.cls = id_of("[CLS]");
  v.sep = id_of("[SEP]");
  v.unk = id_of("[UNK]");
  check(v.cls >= 0 && v.sep >= 0, "[blip] the vocabulary has no [CLS] or [SEP]");
  return v;
}

Vocab parse_vocab(const std::string& tokenizer_json, const std::string& vocab_txt,
                  const std::string& tokenizer_config) {
  try {
    return parse_vocab_json(tokenizer_json, vocab_txt, tokenizer_config);
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    fail("[blip] malformed tokenizer files: ", e.what());
  }
}

Config parse_config_json(const std::string& text) {
  return parse_config(parse_json_text(text, "config.json"));
}

namespace {

Tensor need(const NamedTensors& w, const std::string& name) {
  auto it = w.find(name);
  check(it != w.end(), "[blip] missing tensor '", name, "'");
  return it->second;
}

Attention load_attention(const NamedTensors& w, const std::string& p, int64_t d, int64_t kv_in) {
  return {.q = clip::load_linear(w, p + "self.query", d, d),
          .k = clip::load_linear(w, p + "self.key", d, kv_in),
          .v = clip::load_linear(w, p + "self.value", d, kv_in),
          .out = clip::load_linear(w, p + "output.dense", d, d),
          .norm = clip::load_norm(w, p + "output.LayerNorm", d)};
}

TextModel load_text(const NamedTensors& w, const std::string& p, const TextConfig& c) {
  TextModel m;
  m.word_embeddings =
      clip::weight_matrix(w, p + "embeddings.word_embeddings.weight", {c.vocab_size, c.hidden});
  m.position_embeddings = clip::to_f32(clip::need_tensor(
      w, p + "embeddings.position_embeddings.weight", {c.max_positions, c.hidden}));
  m.embed_norm = clip::load_norm(w, p + "embeddings.LayerNorm", c.hidden);
  for (int i = 0; i < c.layers; ++i) {
    const std::string l = cat(p, "encoder.layer.", i, ".");
    TextLayer L{.self_attn = load_attention(w, l + "attention.", c.hidden, c.hidden),
                .cross = {},
                .fc1 = clip::load_linear(w, l + "intermediate.dense", c.intermediate, c.hidden),
                .fc2 = clip::load_linear(w, l + "output.dense", c.hidden, c.intermediate),
                .norm = clip::load_norm(w, l + "output.LayerNorm", c.hidden)};
    if (w.count(l + "crossattention.self.query.weight"))
      L.cross = load_attention(w, l + "crossattention.", c.hidden, c.encoder_hidden);
    m.layers.push_back(std::move(L));
  }
  return m;
}

int64_t bytes_of(const NamedTensors& w) {
  int64_t b = 0;
  for (const auto& [name, t] : w) b += static_cast<int64_t>(t.nbytes());
  return b;
}

}  // namespace

std::unique_ptr<Model::Impl> load_directory(const std::string& dir) {
  const fs::path d(dir);
  check(fs::is_directory(d), "[blip] '", dir, "' is not a directory");
  check(fs::exists(d / "config.json"), "[blip] '", dir, "' has no config.json");
  auto m = std::make_unique<Model::Impl>();
  m->name = d.filename().empty() ? d.parent_path().filename().string() : d.filename().string();
  Config& c = m->config;
  c = parse_config_json(read_small_file((d / "config.json").string(), "[blip]"));
  if (fs::exists(d / "generation_config.json"))
    parse_generation(parse_json(d / "generation_config.json"), c.generation);
  else
    parse_generation(json::object(), c.generation);
  c.preprocess = parse_preprocess(d / "preprocessor_config.json", c.vision.image_size);
  auto text_of = [&d](const char* f) {
    return fs::exists(d / f) ? read_small_file((d / f).string(), "[blip]") : "";
  };
  check(fs::exists(d / "tokenizer.json") || fs::exists(d / "vocab.txt"), "[blip] '", dir,
        "' has neither tokenizer.json nor vocab.txt");
  m->vocab = parse_vocab(text_of("tokenizer.json"), text_of("vocab.txt"),
                         text_of("tokenizer_config.json"));
  check(static_cast<int64_t>(m->vocab.tokens.size()) <= c.text.vocab_size, "[blip] ", dir,
        ": the tokenizer has ", m->vocab.tokens.size(), " tokens, the model ", c.text.vocab_size);

  // safetensors, else pytorch_model.bin through the restricted unpickler (views of the mapping).
  NamedTensors w;
  if (fs::exists(d / "model.safetensors") || fs::exists(d / "model.safetensors.index.json")) {
    const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(dir);
    for (const auto& n : ckpt.names())
      if (!n.ends_with("position_ids")) w.emplace(n, ckpt.tensor(n));
    for (const auto& f : ckpt.files())
      m->file_bytes += static_cast<int64_t>(fs::file_size(f.path()));
  } else {
    check(fs::exists(d / "pytorch_model.bin"), "[blip] '", dir,
          "' has no model.safetensors or pytorch_model.bin");
    const torch::Checkpoint ckpt = torch::Checkpoint::open((d / "pytorch_model.bin").string());
    m->file_bytes = static_cast<int64_t>(fs::file_size(d / "pytorch_model.bin"));
    const std::string prefix = ckpt.state_dict_prefix();
    for (const torch::TensorInfo& info : ckpt.tensors())
      if (info.name.starts_with(prefix) && !info.name.ends_with("position_ids"))
        w.emplace(info.name.substr(prefix.size()), ckpt.tensor(info));
  }
  m->weight_bytes = bytes_of(w);

  // Vision tower: BLIP's fused qkv rows are [q; k; v] (reshaped (3, heads, head_dim)), so the
  // three row blocks are CLIP's q/k/v projections, and run_tower runs the layers unchanged.
  const VisionConfig& v = c.vision;
  const int64_t D = v.hidden, p = v.patch_size, grid = v.image_size / p;
  NamedTensors tw;
  for (int i = 0; i < v.layers; ++i) {
    const std::string src = cat("vision_model.encoder.layers.", i, ".");
    const Tensor qkv = clip::need_tensor(w, src + "self_attn.qkv.weight", {3 * D, D});
    const Tensor qkv_b = clip::need_tensor(w, src + "self_attn.qkv.bias", {3 * D});
    const char* parts[3] = {"q_proj", "k_proj", "v_proj"};
    for (int s = 0; s < 3; ++s) {
      tw[src + "self_attn." + parts[s] + ".weight"] = qkv.slice(0, s * D, (s + 1) * D);
      tw[src + "self_attn." + parts[s] + ".bias"] = qkv_b.slice(0, s * D, (s + 1) * D);
    }
    for (const char* x : {".weight", ".bias"}) {
      tw[src + "self_attn.out_proj" + x] = need(w, src + "self_attn.projection" + x);
      for (const char* n : {"layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"})
        tw[src + n + x] = need(w, src + n + x);
    }
  }
  m->tower = clip::load_tower(tw, "vision_model",
                              {.hidden = v.hidden,
                               .intermediate = v.intermediate,
                               .layers = v.layers,
                               .heads = v.heads,
                               .eps = v.eps,
                               .act = "gelu"});
  m->class_embedding = clip::to_f32(
      clip::need_tensor(w, "vision_model.embeddings.class_embedding", {1, 1, D}).reshape({D}));
  m->patch_embedding = {
      .weight =
          clip::weight_matrix(w, "vision_model.embeddings.patch_embedding.weight", {D, 3, p, p})
              .reshape({D, 3 * p * p}),
      .bias =
          clip::to_f32(clip::need_tensor(w, "vision_model.embeddings.patch_embedding.bias", {D}))};
  m->position_embedding = clip::to_f32(
      clip::need_tensor(w, "vision_model.embeddings.position_embedding", {1, grid * grid + 1, D})
          .reshape({grid * grid + 1, D}));
  m->post_norm = clip::load_norm(w, "vision_model.post_layernorm", D);

  const TextConfig& t = c.text;
  if (c.vqa) m->question_encoder = load_text(w, "text_encoder.", t);
  m->decoder = load_text(w, "text_decoder.bert.", t);
  for (const TextLayer& L : m->decoder.layers)
    check(L.cross.has_value(), "[blip] ", dir, ": the text decoder has no cross-attention");
  const std::string h = "text_decoder.cls.predictions.";
  m->head.transform = clip::load_linear(w, h + "transform.dense", t.hidden, t.hidden);
  m->head.norm = clip::load_norm(w, h + "transform.LayerNorm", t.hidden);
  m->head.decoder.weight =
      w.count(h + "decoder.weight")
          ? clip::weight_matrix(w, h + "decoder.weight", {t.vocab_size, t.hidden})
          : m->decoder.word_embeddings;  // tie_word_embeddings
  m->head.decoder.bias = clip::to_f32(clip::need_tensor(
      w, w.count(h + "decoder.bias") ? h + "decoder.bias" : h + "bias", {t.vocab_size}));
  log_debug("[blip] loaded ", dir, ": ", m->weight_bytes, " weight bytes");
  return m;
}

}  // namespace eight::blip
