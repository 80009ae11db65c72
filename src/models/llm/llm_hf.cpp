#include "models/llm/llm_hf.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/storage.h"
#include "text/tokenizer_import.h"

namespace eight::llm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json(const fs::path& p) {
  try {
    return json::parse(read_small_file(p.string(), "[hf]"));
  } catch (const json::parse_error& e) {
    fail("[hf] ", p.string(), " is not valid JSON: ", e.what());
  }
}

// transformers' LlamaConfig / MistralConfig defaults: saved configs (llava-hf's text_config
// among them) list only the fields that differ from these.
json with_defaults(json tc) {
  const std::string type = tc.value("model_type", "llama");
  check(type == "llama" || type == "mistral", "[hf] text model type '", type,
        "' is not supported (llama, mistral)");
  const bool mistral = type == "mistral";
  const json defaults = {{"hidden_size", 4096},
                         {"intermediate_size", mistral ? 14336 : 11008},
                         {"num_hidden_layers", 32},
                         {"num_attention_heads", 32},
                         {"max_position_embeddings", mistral ? 4096 * 32 : 2048},
                         {"rms_norm_eps", 1e-6},
                         {"rope_theta", 10000.0}};
  for (const auto& [k, v] : defaults.items())
    if (!tc.contains(k) || tc.at(k).is_null()) tc[k] = v;
  if (!tc.contains("num_key_value_heads") || tc.at("num_key_value_heads").is_null())
    tc["num_key_value_heads"] = mistral ? json(8) : tc.at("num_attention_heads");
  return tc;
}

int64_t need_int(const json& j, const char* key) {
  check(j.at(key).is_number_integer() && j.at(key).get<int64_t>() > 0,
        "[hf] config.json needs a positive integer \"", key, "\"");
  const int64_t v = j.at(key).get<int64_t>();
  check(v <= (int64_t{1} << 24), "[hf] config.json: \"", key, "\" ", v, " is implausible");
  return v;
}

double need_number(const json& j, const char* key) {
  check(j.at(key).is_number(), "[hf] config.json: \"", key, "\" must be a number");
  return j.at(key).get<double>();
}

// The text model's settings: text_config for LLaVA-NeXT, the top level otherwise.
json text_config(const fs::path& dir) {
  const json cfg = read_json(dir / "config.json");
  check(cfg.is_object(), "[hf] ", (dir / "config.json").string(), " is not a JSON object");
  const std::string type = cfg.value("model_type", "");
  if (type == "llava_next") {
    check(cfg.contains("text_config") && cfg.at("text_config").is_object(), "[hf] ", dir.string(),
          ": a llava_next config needs text_config");
    return with_defaults(cfg.at("text_config"));
  }
  check(type == "llama" || type == "mistral", "[hf] ", dir.string(), ": model_type '", type,
        "' is not an LLM eight reads from a directory (llava_next, llama, mistral)");
  return with_defaults(cfg);
}

void set_u32(HFTextModel& m, const std::string& key, int64_t v) {
  m.metadata.emplace_back(key, gguf::Value::u32(static_cast<uint32_t>(v)));
}

// The chat template when tokenizer_config.json has none: newer transformers save it beside.
std::string side_chat_template(const fs::path& dir) {
  if (fs::exists(dir / "chat_template.jinja"))
    return read_small_file((dir / "chat_template.jinja").string(), "[hf]");
  for (const char* name : {"chat_template.json", "processor_config.json"}) {
    if (!fs::exists(dir / name)) continue;
    const json j = read_json(dir / name);
    if (j.is_object() && j.contains("chat_template") && j.at("chat_template").is_string())
      return j.at("chat_template").get<std::string>();
  }
  return "";
}

// Imports tokenizer.json (and its config) through a Writer, whose metadata then moves over.
bool add_tokenizer(const fs::path& dir, HFTextModel& m) {
  gguf::Writer w;
  bool found = false;
  if (fs::exists(dir / "tokenizer.json")) {
    const std::string tcfg = fs::exists(dir / "tokenizer_config.json")
                                 ? read_small_file((dir / "tokenizer_config.json").string(), "[hf]")
                                 : "";
    text::import_hf_tokenizer(read_small_file((dir / "tokenizer.json").string(), "[hf]"), tcfg, w);
    found = true;
  } else if (fs::exists(dir / "tokenizer.model")) {
    log_warn("[hf] ", dir.string(),
             ": tokenizer.model (SentencePiece) is not read, only tokenizer.json; the model takes "
             "token ids only");
  } else {
    log_warn("[hf] ", dir.string(), " has no tokenizer.json: the model takes token ids only");
  }
  if (!w.has("tokenizer.chat_template"))
    if (std::string t = side_chat_template(dir); !t.empty())
      w.set("tokenizer.chat_template", gguf::Value::string(std::move(t)));
  for (const auto& kv : w.metadata()) m.metadata.push_back(kv);
  return found;
}

}  // namespace

HFTextModel describe_hf_text_model(const std::string& dir_s, const safetensors::Checkpoint& ckpt) {
  const fs::path dir(dir_s);
  const json tc = text_config(dir);
  const int64_t n_embd = need_int(tc, "hidden_size"), n_head = need_int(tc, "num_attention_heads"),
                n_layer = need_int(tc, "num_hidden_layers"),
                n_kv = need_int(tc, "num_key_value_heads");
  const int64_t head_dim = tc.contains("head_dim") && !tc.at("head_dim").is_null()
                               ? need_int(tc, "head_dim")
                               : n_embd / n_head;
  double theta = need_number(tc, "rope_theta");
  if (tc.contains("rope_parameters") && tc.at("rope_parameters").is_object())
    theta = tc.at("rope_parameters").value("rope_theta", theta);
  if (tc.contains("rope_scaling") && !tc.at("rope_scaling").is_null())
    fail("[hf] ", dir_s, ": rope_scaling is not supported for directories (convert to GGUF)");

  HFTextModel m;
  m.metadata.emplace_back("general.architecture", gguf::Value::string("llama"));
  m.metadata.emplace_back("general.name", gguf::Value::string(dir.filename().string()));
  set_u32(m, "llama.context_length", need_int(tc, "max_position_embeddings"));
  set_u32(m, "llama.embedding_length", n_embd);
  set_u32(m, "llama.block_count", n_layer);
  set_u32(m, "llama.feed_forward_length", need_int(tc, "intermediate_size"));
  set_u32(m, "llama.attention.head_count", n_head);
  set_u32(m, "llama.attention.head_count_kv", n_kv);
  if (head_dim != n_embd / n_head) {
    set_u32(m, "llama.attention.key_length", head_dim);
    set_u32(m, "llama.attention.value_length", head_dim);
  }
  m.metadata.emplace_back("llama.attention.layer_norm_rms_epsilon",
                          gguf::Value::f32(static_cast<float>(need_number(tc, "rms_norm_eps"))));
  m.metadata.emplace_back("llama.rope.freq_base", gguf::Value::f32(static_cast<float>(theta)));
  set_u32(m, "llama.rope.dimension_count", head_dim);
  m.tokenizer = add_tokenizer(dir, m);

  // The text model's prefix differs by the transformers version (and the class) that saved it.
  std::string lm = "model.";
  for (const char* p : {"model.language_model.", "language_model.model."})
    if (ckpt.has(std::string(p) + "embed_tokens.weight")) lm = p;
  check(ckpt.has(lm + "embed_tokens.weight"), "[hf] ", dir_s, ": no text model weights (", lm,
        "embed_tokens.weight)");
  m.tensors.push_back({"token_embd.weight", lm + "embed_tokens.weight"});
  m.tensors.push_back({"output_norm.weight", lm + "norm.weight"});
  for (const char* head : {"lm_head.weight", "language_model.lm_head.weight"})
    if (ckpt.has(head)) {
      m.tensors.push_back({"output.weight", head});
      break;
    }
  const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "input_layernorm"},    {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  for (int64_t i = 0; i < n_layer; ++i) {
    const std::string p = cat(lm, "layers.", i, "."), g = cat("blk.", i, ".");
    m.tensors.push_back({g + "attn_q.weight", p + "self_attn.q_proj.weight", n_head});
    m.tensors.push_back({g + "attn_k.weight", p + "self_attn.k_proj.weight", n_kv});
    for (const auto& [gg, hf] : names)
      m.tensors.push_back({g + gg + ".weight", p + hf + ".weight"});
  }
  return m;
}

bool is_hf_llm_dir(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) || !fs::exists(fs::path(path) / "config.json", ec)) return false;
  try {
    const std::string type = read_json(fs::path(path) / "config.json").value("model_type", "");
    return type == "llava_next" || type == "llama" || type == "mistral";
  } catch (const Error&) {
    return false;
  } catch (const json::exception&) {
    return false;
  }
}

gguf::File open_hf_llm(const std::string& dir) {
  const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(dir);
  HFTextModel m = describe_hf_text_model(dir, ckpt);
  std::vector<std::pair<std::string, Tensor>> views;
  views.reserve(m.tensors.size());
  for (const HFTensor& t : m.tensors) views.emplace_back(t.gguf, ckpt.tensor(t.hf));
  // general.file_type as llama.cpp names the stored type of the matrices (F32 0, F16 1, BF16 32).
  const DType wt = views.front().second.dtype();
  const uint32_t ft = wt == DType::F16 ? 1 : wt == DType::BF16 ? 32 : 0;
  m.metadata.emplace_back("general.file_type", gguf::Value::u32(ft));
  m.metadata.emplace_back(kHFRotaryKey, gguf::Value::boolean(true));
  return gguf::File::assemble(dir, std::move(m.metadata), std::move(views));
}

gguf::File open_llm_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    check(is_hf_llm_dir(path), "[llm] ", path,
          " is a directory but not a Hugging Face LLM one (config.json of a llava_next, llama "
          "or mistral model)");
    return open_hf_llm(path);
  }
  return gguf::File::open(path);
}

}  // namespace eight::llm
