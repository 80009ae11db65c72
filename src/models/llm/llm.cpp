#include "models/llm/llm.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "models/llm/llm_hf.h"
#include "models/registry.h"

namespace eight::llm {

namespace {

std::vector<LLMArchitecture>& arch_table() {
  static std::vector<LLMArchitecture> t;
  return t;
}

int64_t key_i64(const gguf::File& f, const std::string& key) {
  return static_cast<int64_t>(f.get(key).as_u64());
}
int64_t key_i64(const gguf::File& f, const std::string& key, int64_t fallback) {
  const gguf::Value* v = f.find(key);
  return v ? static_cast<int64_t>(v->as_u64()) : fallback;
}

// The keys every architecture shares (models.md §1).
LLMConfig read_common_config(const gguf::File& f, const std::string& arch) {
  LLMConfig c;
  const std::string a = arch + ".";
  c.arch = arch;
  c.name = f.get_string("general.name", "");
  c.n_ctx_train = key_i64(f, a + "context_length");
  c.n_embd = key_i64(f, a + "embedding_length");
  c.n_layer = key_i64(f, a + "block_count");
  c.n_ff = key_i64(f, a + "feed_forward_length");
  c.n_head = key_i64(f, a + "attention.head_count");
  c.n_head_kv = key_i64(f, a + "attention.head_count_kv", c.n_head);
  check(c.n_embd > 0 && c.n_layer > 0 && c.n_ff > 0 && c.n_head > 0 && c.n_head_kv > 0, "[llm] ",
        f.path(), ": sizes must be positive (n_embd ", c.n_embd, ", n_layer ", c.n_layer, ", n_ff ",
        c.n_ff, ", n_head ", c.n_head, ", n_head_kv ", c.n_head_kv, ")");
  check(c.n_layer <= 4096 && c.n_head <= 4096 && c.n_embd <= (1 << 20), "[llm] ", f.path(),
        ": implausible sizes (n_layer ", c.n_layer, ", n_head ", c.n_head, ", n_embd ", c.n_embd,
        ")");
  check(c.n_head % c.n_head_kv == 0, "[llm] ", f.path(), ": head_count ", c.n_head,
        " is not a multiple of head_count_kv ", c.n_head_kv);
  c.head_dim = key_i64(f, a + "attention.key_length", c.n_embd / c.n_head);
  check(c.head_dim > 0 && c.head_dim % 2 == 0, "[llm] ", f.path(), ": head_dim ", c.head_dim,
        " must be even and positive");
  c.norm_eps = f.get_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  c.sliding_window = key_i64(f, a + "attention.sliding_window", 0);
  c.rope.base = f.get_f32(a + "rope.freq_base", 10000.0f);
  c.rope.n_rot = key_i64(f, a + "rope.dimension_count", c.head_dim);
  check(c.rope.n_rot > 0 && c.rope.n_rot <= c.head_dim && c.rope.n_rot % 2 == 0, "[llm] ", f.path(),
        ": rope.dimension_count ", c.rope.n_rot, " must be even and ≤ head_dim ", c.head_dim);
  // Linear position interpolation (DeepSeek-Coder ×4): the new key, or the older scale_linear.
  const std::string scaling = f.get_string(a + "rope.scaling.type", "");
  float factor = f.get_f32(a + "rope.scaling.factor", 0.0f);
  if (factor == 0.0f) factor = f.get_f32(a + "rope.scale_linear", 0.0f);
  if (scaling == "linear" || (scaling.empty() && factor > 0.0f)) {
    check(factor > 0.0f, "[llm] ", f.path(), ": linear rope scaling needs a positive factor");
    c.rope.freq_scale = 1.0f / factor;
  } else if (!(scaling.empty() || scaling == "none" || scaling == "longrope" || scaling == "su")) {
    fail("[llm] ", f.path(), ": rope scaling type '", scaling,
         "' is not supported (supported: none, linear, longrope)");
  }
  c.n_ctx_orig = key_i64(f, a + "rope.scaling.original_context_length", c.n_ctx_train);
  c.rope.attn_factor = f.get_f32(a + "rope.scaling.attn_factor", 1.0f);
  return c;
}

}  // namespace

nn::RopeParams LLMConfig::rope_for_context(int64_t n_ctx) const {
  nn::RopeParams p = rope;
  if (rope_factors_long.defined() && n_ctx > n_ctx_orig)
    p.freq_factors = rope_factors_long;
  else if (rope_factors_short.defined())
    p.freq_factors = rope_factors_short;
  return p;
}

void register_llm_architecture(const LLMArchitecture& arch) {
  arch_table().push_back(arch);
  register_architecture({.name = arch.name, .family = "llm", .summary = arch.summary});
}

const LLMArchitecture* find_llm_architecture(const std::string& name) {
  for (const auto& a : arch_table())
    if (a.name == name) return &a;
  return nullptr;
}

std::vector<std::string> llm_architecture_names() {
  std::vector<std::string> names;
  for (const auto& a : arch_table()) names.push_back(a.name);
  return names;
}

std::string layer_tensor(int64_t il, const char* suffix) {
  return cat("blk.", il, ".", suffix);
}

Tensor optional_tensor(const gguf::File& f, const std::string& name, const Dims& shape) {
  if (!f.find_tensor(name)) return {};
  Tensor t = f.tensor(name);
  // A 1-D weight may be stored as [1, n]; anything else must match exactly.
  if (shape.size() == 1 && t.numel() == shape[0] && t.dim() <= 2) return t.reshape(shape);
  check(t.shape() == shape, "[llm] tensor '", name, "' in ", f.path(), " has shape ",
        t.shape().str(), " but the config implies ", shape.str());
  return t;
}

Tensor require_tensor(const gguf::File& f, const std::string& name, const Dims& shape) {
  check(f.find_tensor(name) != nullptr, "[llm] missing tensor '", name, "' in ", f.path(),
        " (architecture ", f.architecture(), ")");
  return optional_tensor(f, name, shape);
}

std::shared_ptr<LLM> LLM::load(const std::string& path) {
  return from_file(open_llm_file(path));
}

std::shared_ptr<LLM> LLM::from_file(gguf::File file) {
  const std::string arch = file.architecture();
  const LLMArchitecture* a = find_llm_architecture(arch);
  if (!a) {
    std::string known;
    for (const auto& n : llm_architecture_names()) known += (known.empty() ? "" : ", ") + n;
    fail("[llm] ", file.path(), ": unknown architecture '", arch, "' (supported: ", known, ")");
  }
  auto m = std::make_shared<LLM>();
  m->file_ = std::move(file);
  const gguf::File& f = m->file_;
  LLMConfig& c = m->config_;
  c = read_common_config(f, arch);
  a->configure(f, c);

  LLMWeights& w = m->weights_;
  const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
  check(emb != nullptr, "[llm] missing tensor 'token_embd.weight' in ", f.path());
  check(emb->shape.size() == 2 && emb->shape[1] == c.n_embd, "[llm] token_embd.weight ",
        emb->shape.str(), " does not have n_embd ", c.n_embd, " columns");
  c.n_vocab = emb->shape[0];
  w.token_embd = require_tensor(f, "token_embd.weight", {c.n_vocab, c.n_embd});
  w.output_norm = require_tensor(f, "output_norm.weight", {c.n_embd});
  w.output.weight = optional_tensor(f, "output.weight", {c.n_vocab, c.n_embd});
  w.output.bias = optional_tensor(f, "output.bias", {c.n_vocab});
  w.tied = !w.output.weight.defined();
  if (w.tied) w.output.weight = w.token_embd;
  const int64_t half = c.rope.n_rot / 2;
  c.rope.freq_factors = optional_tensor(f, "rope_freqs.weight", {half});
  c.rope_factors_short = optional_tensor(f, "rope_factors_short.weight", {half});
  c.rope_factors_long = optional_tensor(f, "rope_factors_long.weight", {half});
  for (const Tensor* t : {&c.rope.freq_factors, &c.rope_factors_short, &c.rope_factors_long})
    check(!t->defined() || t->dtype() == DType::F32, "[llm] ", f.path(),
          ": rope frequency factors must be f32");

  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t il = 0; il < c.n_layer; ++il) a->bind_layer(f, c, il, w.layers[il]);
  for (const auto& info : f.tensors())
    check(dtype_info(info.type).computable || info.shape.size() < 2, "[llm] tensor '", info.name,
          "' has type ", dtype_name(info.type), ", which eight cannot compute with");
  log_debug("[llm] ", arch, " '", c.name, "': ", c.n_layer, " layers, n_embd ", c.n_embd,
            ", heads ", c.n_head, "/", c.n_head_kv, ", head_dim ", c.head_dim, ", vocab ",
            c.n_vocab, w.tied ? ", tied embeddings" : "");
  return m;
}

int64_t LLM::weight_bytes() const {
  int64_t total = 0;
  for (const auto& info : file_.tensors()) total += static_cast<int64_t>(info.nbytes);
  // The embedding table is read one row per token, not whole; tied output reads it once more.
  const gguf::TensorInfo* emb = file_.find_tensor("token_embd.weight");
  if (emb && !weights_.tied) total -= static_cast<int64_t>(emb->nbytes);
  return total;
}

}  // namespace eight::llm
