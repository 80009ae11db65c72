#pragma once
// CLIP (contrastive image–text model): a ViT vision tower and a causal text transformer, each
// ending in a projection into one shared embedding space. Loads a Hugging Face checkpoint
// directory (config.json, model.safetensors, vocab.json/merges.txt or tokenizer.json,
// preprocessor_config.json), eight's converted CLIP GGUF, or (vision tower only) a llama.cpp
// mmproj GGUF.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/image.h"

namespace eight::clip {

struct TowerConfig {
  int hidden = 0;        // hidden_size
  int intermediate = 0;  // intermediate_size
  int layers = 0;        // num_hidden_layers
  int heads = 0;         // num_attention_heads
  double eps = 1e-5;     // layer_norm_eps
  std::string act = "quick_gelu";
};

struct Config {
  TowerConfig text, vision;
  int projection_dim = 0;
  int vocab_size = 0;        // text_config.vocab_size (49408)
  int max_positions = 77;    // text_config.max_position_embeddings
  int image_size = 224;      // vision_config.image_size
  int patch_size = 14;       // vision_config.patch_size
  int eos_token_id = 49407;  // pooled position: the first end-of-text token
  int bos_token_id = 49406;
  float logit_scale = 0.0f;  // the checkpoint's logit_scale (log of the temperature)
  bool has_text = true;      // false for mmproj files (vision only)
  image::PreprocessConfig preprocess;
};

class Model {
 public:
  // path: a checkpoint directory, a CLIP GGUF, or an mmproj GGUF. Throws Error naming what is
  // missing or malformed.
  // With a GPU device (Device::vulkan(i)) both encoders' transformer layers run there; embeddings,
  // pooling and projections stay on the host. Throws Error when the device budget refuses them.
  static std::shared_ptr<const Model> load(const std::string& path, Device device = Device::cpu());

  const Config& config() const;
  std::string name() const;  // the directory or file name, for messages and the server
  int64_t weight_bytes() const;

  // CLIP tokenization: lower-cased, whitespace-cleaned byte-level BPE with </w> word ends,
  // <|startoftext|> ... <|endoftext|>, truncated to max_positions (the last kept token is then
  // end-of-text). Not padded.
  std::vector<int32_t> tokenize(const std::string& text) const;

  // Normalized embeddings F32 [n, projection_dim].
  Tensor embed_images(const Tensor& pixels, ThreadPool& pool) const;  // pixels F32 [n, 3, H, W]
  Tensor embed_texts(const std::vector<std::string>& texts, ThreadPool& pool) const;
  // Convenience: decode + preprocess + embed one image file.
  Tensor embed_image_file(const std::string& path, ThreadPool& pool) const;

  ~Model();
  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Zero-shot classification: softmax over exp(logit_scale) × cosine(image, text) for each label.
std::vector<float> zero_shot_probabilities(const Model& model, const Tensor& image_embedding,
                                           const Tensor& label_embeddings);

}  // namespace eight::clip
