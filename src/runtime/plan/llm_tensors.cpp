// The tensor list of an LLM GGUF, synthesized from hyperparameters and a llama.cpp file type, so
// catalog models can be planned per layer without their files. The type of each tensor follows
// llama.cpp's quantization mixes as documented in shared/reference/models.md ("Mixes"): the rule
// set most published 2024-25 GGUFs were made with (fused attn_qkv gets its own type).
#include <algorithm>

#include "core/error.h"
#include "runtime/plan/planner.h"

namespace eight {
namespace {

enum class Role {
  Embedding,
  Output,
  Norm,
  AttnQ,
  AttnK,
  AttnV,
  AttnQKV,
  AttnOut,
  FfnGate,
  FfnUp,
  FfnDown,
  Bias
};

// llama.cpp's use_more_bits(i, n): the first and last eighth of the layers, and every third in
// between, get more bits for attn_v / ffn_down in the _M mixes.
bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct Mix {
  DType base;  // the file's default type
  bool known = true;
};

Mix base_type(const std::string& ftype) {
  if (ftype == "F32") return {DType::F32};
  if (ftype == "F16") return {DType::F16};
  if (ftype == "BF16") return {DType::BF16};
  if (ftype == "Q8_0") return {DType::Q8_0};
  if (ftype == "Q4_0") return {DType::Q4_0};
  if (ftype == "Q4_1") return {DType::Q4_1};  // SmolLM2's file (the tiny default)
  if (ftype == "Q6_K") return {DType::Q6_K};
  if (ftype == "Q5_K_M" || ftype == "Q5_K_S") return {DType::Q5_K};
  if (ftype == "Q4_K_M" || ftype == "Q4_K_S") return {DType::Q4_K};
  if (ftype == "Q3_K_M" || ftype == "Q3_K_S" || ftype == "Q3_K_L") return {DType::Q3_K};
  if (ftype == "Q2_K") return {DType::Q2_K};
  return {DType::F32, false};
}

DType tensor_type(const std::string& ftype, Role role, int64_t layer, int64_t n_layer, int64_t gqa,
                  QuantRules rules) {
  const DType base = base_type(ftype).base;
  // Current llama.cpp counts a fused attn_qkv as attn_v (models.md: its QKV branch is dead code).
  if (role == Role::AttnQKV && rules == QuantRules::Current) role = Role::AttnV;
  if (role == Role::Norm || role == Role::Bias) return DType::F32;
  if (role == Role::Output) {
    if (base == DType::F32 || base == DType::F16 || base == DType::BF16 || base == DType::Q8_0)
      return base;
    return DType::Q6_K;
  }
  if (role == Role::Embedding) return base;
  const bool more = use_more_bits(layer, n_layer);
  if (ftype == "Q2_K") {
    if (role == Role::AttnV) return gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    if (role == Role::FfnDown || role == Role::AttnOut) return DType::Q3_K;
    return DType::Q2_K;
  }
  if (ftype == "Q3_K_M") {
    if (role == Role::AttnV) return layer < 2 ? DType::Q5_K : DType::Q4_K;
    if (role == Role::FfnDown) return layer < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
    if (role == Role::AttnOut || role == Role::AttnQKV) return DType::Q4_K;
    return DType::Q3_K;
  }
  if (ftype == "Q4_K_S") {
    if (role == Role::AttnV) return layer < 4 ? DType::Q5_K : DType::Q4_K;
    if (role == Role::FfnDown) return layer < n_layer / 8 ? DType::Q5_K : DType::Q4_K;
    return DType::Q4_K;
  }
  if (ftype == "Q4_K_M") {
    if (role == Role::AttnV || role == Role::FfnDown) return more ? DType::Q6_K : DType::Q4_K;
    if (role == Role::AttnQKV) return DType::Q5_K;
    return DType::Q4_K;
  }
  if (ftype == "Q5_K_M") {
    if (role == Role::AttnV || role == Role::FfnDown) return more ? DType::Q6_K : DType::Q5_K;
    if (role == Role::AttnQKV) return DType::Q6_K;
    return DType::Q5_K;
  }
  return base;
}

// llama.cpp falls back to a legacy type when a row is not a whole number of 256-blocks.
DType shape_fallback(DType t, int64_t row) {
  while (row % dtype_block_size(t) != 0) {
    switch (t) {
      case DType::Q2_K:
      case DType::Q3_K:
        t = DType::Q4_0;
        break;
      case DType::Q4_K:
        t = DType::Q5_0;
        break;
      case DType::Q5_K:
        t = DType::Q5_1;
        break;
      case DType::Q6_K:
        t = DType::Q8_0;
        break;
      default:
        t = DType::F16;
        break;
    }
  }
  return t;
}

}  // namespace

std::vector<WeightInfo> synthesize_llm_tensors(const std::string& arch, const LLMHparams& hp,
                                               const std::string& ftype, QuantRules rules) {
  check(arch == "llama" || arch == "qwen2" || arch == "phi3",
        "[planner] cannot synthesize the "
        "tensors of architecture '",
        arch, "' (known: llama, qwen2, phi3)");
  check(base_type(ftype).known, "[planner] unknown llama.cpp file type '", ftype,
        "' (known: F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_M, "
        "Q3_K_S, Q3_K_L, Q2_K)");
  const int64_t gqa = hp.n_head / hp.n_head_kv;
  const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  std::vector<WeightInfo> out;
  // rows × row length (ggml ne[1] × ne[0]).
  auto add = [&](std::string name, Role role, int layer, int64_t rows, int64_t row) {
    DType t = tensor_type(ftype, role, layer, hp.n_layer, gqa, rules);
    if (dtype_is_quantized(t)) t = shape_fallback(t, row);
    out.push_back(
        {std::move(name), t, rows * static_cast<int64_t>(dtype_row_bytes(t, row)), layer});
  };
  // A tied embedding is also the output matrix, and llama.cpp's quantizer types it as one (Q6_K,
  // or Q8_0 where rows are not whole 256-blocks, as SmolLM2's 576).
  add("token_embd.weight", hp.tied_embeddings ? Role::Output : Role::Embedding, -1, hp.n_vocab,
      hp.n_embd);
  for (int i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", Role::Norm, i, 1, hp.n_embd);
    if (arch == "phi3") {
      add(p + "attn_qkv.weight", Role::AttnQKV, i, q_dim + 2 * kv_dim, hp.n_embd);
    } else {
      add(p + "attn_q.weight", Role::AttnQ, i, q_dim, hp.n_embd);
      add(p + "attn_k.weight", Role::AttnK, i, kv_dim, hp.n_embd);
      add(p + "attn_v.weight", Role::AttnV, i, kv_dim, hp.n_embd);
    }
    if (hp.qkv_bias) {
      add(p + "attn_q.bias", Role::Bias, i, 1, q_dim);
      add(p + "attn_k.bias", Role::Bias, i, 1, kv_dim);
      add(p + "attn_v.bias", Role::Bias, i, 1, kv_dim);
    }
    add(p + "attn_output.weight", Role::AttnOut, i, hp.n_embd, q_dim);
    add(p + "ffn_norm.weight", Role::Norm, i, 1, hp.n_embd);
    if (arch == "phi3") {
      add(p + "ffn_up.weight", Role::FfnUp, i, 2 * hp.n_ff, hp.n_embd);  // gate ‖ up, fused
    } else {
      add(p + "ffn_gate.weight", Role::FfnGate, i, hp.n_ff, hp.n_embd);
      add(p + "ffn_up.weight", Role::FfnUp, i, hp.n_ff, hp.n_embd);
    }
    add(p + "ffn_down.weight", Role::FfnDown, i, hp.n_embd, hp.n_ff);
  }
  add("output_norm.weight", Role::Norm, -1, 1, hp.n_embd);
  if (!hp.tied_embeddings) add("output.weight", Role::Output, -1, hp.n_vocab, hp.n_embd);
  return out;
}

LLMDesc describe_catalog_llm(const ModelRef& ref) {
  check(ref.entry && ref.variant, "[planner] empty model reference");
  check(ref.variant->hparams.has_value(), "[planner] ", ref.entry->id,
        " is not an LLM; plan it with plan_pipeline");
  LLMDesc d;
  d.name = ref.variant->id;
  d.origin = "catalog";
  d.architecture = ref.entry->architecture;
  d.quant = ref.quant;
  d.hp = *ref.variant->hparams;
  d.tensors = synthesize_llm_tensors(d.architecture, d.hp, d.quant);
  // Tokenizer and other metadata: tokens, scores, types and BPE merges take roughly 64 bytes per
  // vocabulary entry in llama.cpp's files (0.5-8 MB, models.md).
  d.file_bytes = d.weight_bytes() + d.hp.n_vocab * 64;
  d.min_ctx = ref.variant->min_ctx;
  for (const auto& c : ref.variant->components)
    d.extras.push_back({c.id, c.role, *c.size(c.default_precision), c.work_bytes});
  d.entry = ref.entry;
  d.variant = ref.variant;
  return d;
}

int64_t LLMDesc::weight_bytes() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.bytes;
  return n;
}

int64_t LLMDesc::layer_bytes(int layer) const {
  int64_t n = 0;
  for (const auto& t : tensors)
    if (t.layer == layer) n += t.bytes;
  return n;
}

namespace {
bool is_output(const std::string& name) {
  return name.rfind("output.", 0) == 0 || name.rfind("output_norm.", 0) == 0;
}
}  // namespace

int64_t LLMDesc::embedding_bytes() const {
  int64_t n = 0;
  for (const auto& t : tensors)
    if (t.layer < 0 && !is_output(t.name)) n += t.bytes;
  return n;
}

int64_t LLMDesc::output_bytes() const {
  int64_t n = 0;
  bool has_output = false;
  for (const auto& t : tensors)
    if (t.layer < 0 && is_output(t.name)) {
      n += t.bytes;
      has_output = has_output || t.name == "output.weight";
    }
  if (!has_output)
    for (const auto& t : tensors)
      if (t.name == "token_embd.weight") n += t.bytes;  // tied: the GPU needs its own copy
  return n;
}

}  // namespace eight
