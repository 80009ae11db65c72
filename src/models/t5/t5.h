#pragma once
// The T5 encoder family as text encoders for diffusion and music models (FLUX, LTX and WAN take
// T5 v1.1 XXL / umT5-XXL, MAGNeT t5-base), from Hugging Face T5EncoderModel / UMT5EncoderModel
// checkpoints (config.json + model.safetensors or a sharded index) or from the single files used
// with FLUX (t5xxl_fp16.safetensors: the same keys, no config: dimensions come from the shapes).
//
// T5 facts this mirrors (transformers' modeling_t5.py / modeling_umt5.py): RMS norm without mean
// or bias (eps 1e-6), attention without 1/sqrt(d) scaling, a learned bidirectional
// relative-position bias (block 0's table shared by all layers in T5; every layer its own in
// umT5), padding keys masked out, feed-forward ReLU (t5-base) or gated gelu_new (v1.1, umT5).
// Weights stay in the file mapping (F32, F16, BF16); compute is float32 on the CPU.
//
//   auto enc = t5::Encoder::load("t5-v1_1-xxl/");          // or a .safetensors file
//   Tensor h = enc->forward(ids, ids.size(), pool);          // [T, d_model] last_hidden_state
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/safetensors.h"

namespace eight::t5 {

enum class FeedForward { ReLU, GatedGeluNew, GatedGelu, GeluNew, Gelu };

struct Config {
  int64_t vocab = 0, d_model = 0, d_kv = 0, n_heads = 0, d_ff = 0, n_layers = 0;
  int64_t num_buckets = 32, max_distance = 128;  // T5's defaults
  float eps = 1e-6f;
  FeedForward ff = FeedForward::ReLU;
  bool per_layer_bias = false;  // umT5
  std::string model_type = "t5";
  bool gated() const { return ff == FeedForward::GatedGeluNew || ff == FeedForward::GatedGelu; }
};

// transformers' T5Config / UMT5Config from config.json text (defaults for missing fields).
// Throws Error naming the field.
Config parse_config(const std::string& json_text, const std::string& where);
// Dimensions from the tensor shapes of a config-less checkpoint (relative-attention buckets and
// max distance keep T5's defaults 32 / 128, which every T5 v1.1 and umT5 uses).
Config infer_config(const safetensors::Checkpoint& ckpt);
const char* feed_forward_name(FeedForward ff);
// The config of a checkpoint opened from `path`: config.json in the directory (or beside the
// file) when present, else infer_config.
Config load_config(const std::string& path, const safetensors::Checkpoint& ckpt);

// Bucket of key position minus query position (bidirectional, as T5's encoder).
int64_t relative_position_bucket(int64_t relative, int64_t num_buckets, int64_t max_distance);

class Encoder {
 public:
  // `path`: an HF directory (config.json + model.safetensors or model.safetensors.index.json) or
  // a .safetensors file (config.json beside it if present, else dimensions from the shapes).
  static std::shared_ptr<const Encoder> load(const std::string& path);
  ~Encoder();
  const Config& config() const;
  const std::string& path() const;
  // Last hidden state F32 [T, d_model] of one sequence. Keys at positions >= n_valid are masked
  // (padding); n_valid == ids.size() attends to every token.
  Tensor forward(const std::vector<int32_t>& ids, int64_t n_valid, ThreadPool& pool) const;

  struct Impl;
  explicit Encoder(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::t5
