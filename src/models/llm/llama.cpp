// `llama` GGUF architecture: Llama 2/3/3.1, Mistral 7B, DeepSeek-Coder, TinyLlama and the bundled
// demo model. Pre-norm decoder, RMSNorm, SwiGLU MLP, GQA, no biases (optional ones are honoured).
// The HF→GGUF converter permutes q/k rows so rotary pairs are adjacent ("norm" style).
// Llama-3.1's rope_freqs.weight and linear scaling are read by the common loader; a sliding
// window applies when the metadata gives one (Mistral v0.1).
#include "models/llm/llm.h"
#include "models/llm/llm_hf.h"

namespace eight::llm {
namespace {

void configure(const gguf::File& f, LLMConfig& c) {
  // A Hugging Face directory bound in place keeps rotate-half q/k rows: neox style (llm_hf.h).
  c.rope.style = f.get_bool(kHFRotaryKey, false) ? nn::RopeStyle::Neox : nn::RopeStyle::Norm;
}

void bind_layer(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L) {
  bind_norms_and_output(f, c, il, L);
  if (f.find_tensor(layer_tensor(il, "attn_qkv.weight")))
    bind_fused_qkv(f, c, il, L);
  else
    bind_separate_qkv(f, c, il, L, /*biases=*/false);
  bind_gated_mlp(f, c, il, L);
}

const bool registered = (register_llm_architecture({.name = "llama",
                                                    .summary = "Llama, Mistral, DeepSeek-Coder",
                                                    .configure = configure,
                                                    .bind_layer = bind_layer}),
                         true);

}  // namespace
}  // namespace eight::llm
