#pragma once
// MAGNeT (Meta's masked non-autoregressive music model, audiocraft): the transformer language
// model over EnCodec codebooks and its T5 conditioner tail, from audiocraft's exported
// `state_dict.bin` (torch.save of {'best_state': state dict, 'xp.cfg': OmegaConf YAML text (or a
// plain dict), 'version', 'exported'}), read by the safe checkpoint reader.
//
// Facts this mirrors (audiocraft 1.3 models/lm.py, lm_magnet.py, modules/transformer.py,
// modules/conditioners.py):
//  - input: the sum of n_q embeddings (card + 1 rows each; row `card` is the mask token), plus
//    sinusoidal positions [cos | sin] with phase t / max_period^(i / (half - 1));
//  - pre-norm layers (LayerNorm eps 1e-5): x += out_proj(attn(in_proj(norm1(x)))) with a fused
//    [3·dim, dim] in_proj; x += cross_attention(norm_cross(x), condition) whose in_proj rows
//    are q | k | v; x += linear2(gelu(linear1(norm2(x)))); then out_norm and one linear per
//    codebook to `card` logits;
//  - for stages (codebooks) above the first, self-attention sees keys within ±subcodes_context
//    frames (MagnetLMModel.restricted_context_attn_mask); stage 0 attends everywhere;
//  - the condition: T5 last hidden state through output_proj, multiplied by the token mask; the
//    classifier-free-guidance "null" condition is all zeros (every token masked).
// Weights stay in the checkpoint mapping; compute is float32 on the CPU.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::magnet {

struct Config {
  int64_t dim = 0, num_heads = 0, num_layers = 0, ffn = 0;
  int64_t n_q = 4, card = 2048;
  int64_t subcodes_context = 5;  // -1: unrestricted
  int64_t span_len = 3;          // masking.span_len
  int64_t frame_rate = 50;       // of the compression model (EnCodec 32 kHz)
  double segment_duration = 10;  // dataset.segment_duration (s)
  double max_period = 10000, positional_scale = 1;
  bool cross_pos_emb = false;  // fuser.cross_attention_pos_emb
  double cross_pos_emb_scale = 1;
  int64_t text_dim = 0;  // T5 width (output_proj input)
  std::string text_encoder = "t5-base";
  int64_t sample_rate = 32000;
};

// Hyperparameters from audiocraft's xp.cfg (as JSON), with the tensor shapes filling what the
// config lacks. Throws Error naming the field for unsupported settings (post-norm, rope,
// layer_scale, GLU activations, kv_repeat, qk_layer_norm ...).
Config parse_config(const nlohmann::json& cfg, const std::string& where);

// Sinusoidal embedding of position `t` into out[dim] (create_sin_embedding).
void sin_embedding(int64_t t, int64_t dim, double max_period, float* out);

class LM {
 public:
  // `path`: state_dict.bin, or a directory holding it (the Hugging Face repository layout).
  static std::shared_ptr<const LM> load(const std::string& path);
  ~LM();
  const Config& config() const;
  const std::string& path() const;

  // The conditioner's output [S, dim] from the T5 last hidden state [S, text_dim]: output_proj,
  // rows from n_valid on (padding) zeroed.
  Tensor condition(const Tensor& t5_hidden, int64_t n_valid, ThreadPool& pool) const;

  // Logits for B sequences of codes (int32 [B, n_q, T], values < card or card = masked) with
  // condition b `conds[b]` ([S_b, dim]; undefined = the null condition). stage >= 0 applies
  // that stage's attention restriction; codebook >= 0 computes only that codebook's logits.
  // Returns f32 [B, n_q, T, card], or [B, 1, T, card] for one codebook.
  Tensor forward(const Tensor& codes, const std::vector<Tensor>& conds, int64_t stage,
                 int64_t codebook, ThreadPool& pool) const;

  struct Impl;
  explicit LM(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::magnet
