// An LLM description from a GGUF file's metadata and tensor infos (no tensor data is read).
#include <algorithm>

#include "core/error.h"
#include "formats/gguf.h"
#include "runtime/plan/planner.h"

namespace eight {
namespace {

// A hyperparameter that some architectures store per layer (an array): the largest value.
int64_t hparam(const gguf::File& f, const std::string& key, int64_t fallback, bool required) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    check(!required, "[planner] ", f.path(), ": missing key '", key, "'");
    return fallback;
  }
  int64_t x = 0;
  if (v->is_array()) {
    for (const auto& item : v->items()) x = std::max(x, item.as_i64());
  } else {
    x = v->as_i64();
  }
  // Bounds keep a hostile file from making the planner allocate per-layer tables of any size.
  check(x >= 0 && x <= (int64_t{1} << 32), "[planner] ", f.path(), ": '", key, "' = ", x,
        " is out of range");
  return x;
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  size_t i = 4;
  int64_t n = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && n < 1000000)
    n = n * 10 + (name[i++] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? static_cast<int>(n) : -1;
}

}  // namespace

LLMDesc describe_gguf(const gguf::File& f) {
  LLMDesc d;
  d.origin = f.path();
  d.architecture = f.architecture();
  check(!d.architecture.empty(), "[planner] ", f.path(), ": no general.architecture");
  d.name = f.get_string("general.name", d.architecture);
  const std::string a = d.architecture + ".";
  LLMHparams& h = d.hp;
  h.n_layer = hparam(f, a + "block_count", 0, true);
  h.n_embd = hparam(f, a + "embedding_length", 0, true);
  h.n_head = hparam(f, a + "attention.head_count", 0, true);
  h.n_head_kv = hparam(f, a + "attention.head_count_kv", h.n_head, false);
  check(h.n_layer >= 1 && h.n_layer <= 4096, "[planner] ", f.path(), ": block_count ", h.n_layer,
        " is out of range (1..4096)");
  check(h.n_head >= 1 && h.n_head_kv >= 1, "[planner] ", f.path(), ": head counts ", h.n_head, "/",
        h.n_head_kv, " must be positive");
  h.head_dim = hparam(f, a + "attention.key_length", h.n_embd / h.n_head, false);
  h.n_ff = hparam(f, a + "feed_forward_length", 0, true);
  h.n_ctx_train = hparam(f, a + "context_length", 0, false);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  int64_t vocab = embd && embd->shape.size() == 2 ? embd->shape[0] : 0;
  if (const gguf::Value* tokens = f.find("tokenizer.ggml.tokens"); tokens && vocab == 0)
    vocab = static_cast<int64_t>(tokens->size());
  h.n_vocab = hparam(f, a + "vocab_size", vocab, vocab == 0);
  h.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  h.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (f.has("general.file_type")) {
    const uint32_t ft = f.get_u32("general.file_type");
    d.quant = gguf::file_type_name(ft);
    if (d.quant.empty()) d.quant = cat("ftype ", ft);  // an id newer than eight's table
  } else {
    d.quant = "mixed";
  }

  for (const auto& t : f.tensors()) {
    const int layer = layer_of(t.name);
    check(layer < h.n_layer, "[planner] ", f.path(), ": tensor '", t.name, "' belongs to layer ",
          layer, " but the model has ", h.n_layer);
    d.tensors.push_back({t.name, t.type, static_cast<int64_t>(t.nbytes), layer});
  }
  d.file_bytes = static_cast<int64_t>(f.file_size());
  // Files of a catalog model get its extras (LLaVA's projector) and smaller-quant suggestions.
  for (const auto& e : catalog().models()) {
    const Variant* v = nullptr;
    if (e.kind != ModelKind::LLM) continue;
    for (const auto& var : e.variants)
      if (var.hparams && var.hparams->n_layer == h.n_layer && var.hparams->n_embd == h.n_embd &&
          var.hparams->n_vocab == h.n_vocab && var.hparams->n_head_kv == h.n_head_kv &&
          var.hparams->n_ff == h.n_ff && e.architecture == d.architecture && var.components.empty())
        v = &var;
    if (v && !d.entry) {
      d.entry = &e;
      d.variant = v;
    }
  }
  return d;
}

}  // namespace eight
