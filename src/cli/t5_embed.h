#pragma once
// `eight embed -m T5_DIR_OR_FILE --text T ...`: the T5 encoder's last hidden state per text
// (float32 [n_tokens, d_model], not pooled, not normalised), as FLUX / LTX / WAN / MAGNeT use it.
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace eight::cli {

struct T5EmbedOptions {
  std::string tokenizer;        // spiece.model / tokenizer.json / directory; "" = beside -m
  int max_sequence_length = 0;  // truncate to N tokens incl. </s> (0: no limit)
  int pad_to = 0;               // pad with <pad> up to N tokens (0: no padding)
  bool attend_padding = false;  // let padding attend and be attended (FLUX passes no mask)
  std::string output;           // .npy
  bool json = false;
};

// True for a T5-family encoder: a directory whose config.json has model_type t5/mt5/umt5 or a
// .safetensors file holding encoder.block.0.layer.0.SelfAttention.q.weight.
bool is_t5_encoder(const std::string& path);
int run_t5_embed(const std::string& path, const std::vector<std::string>& texts,
                 const T5EmbedOptions& opt, ThreadPool& pool);

}  // namespace eight::cli
