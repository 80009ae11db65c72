#pragma once
// CLIP internals shared by the loader and the two towers. Weight fields are commented with their
// Hugging Face checkpoint names (CLIPModel); shapes are PyTorch order.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "models/clip/clip.h"
#include "ops/activation.h"
#include "text/clip_tokenizer.h"

namespace eight::clip {

struct Linear {
  Tensor weight;  // [out, in], any matmul weight type
  Tensor bias;    // [out] f32, or undefined
};

struct LayerNorm {
  Tensor weight, bias;  // [hidden] f32
};

// {text,vision}_model.encoder.layers.N
struct EncoderLayer {
  LayerNorm ln1;   // layer_norm1
  Linear q, k, v;  // self_attn.{q,k,v}_proj [hidden, hidden], written side by side into one
                   // [rows, 3 * hidden] activation
  Linear out;      // self_attn.out_proj
  LayerNorm ln2;   // layer_norm2
  Linear fc1;      // mlp.fc1 [intermediate, hidden]
  Linear fc2;      // mlp.fc2 [hidden, intermediate]
};

struct Tower {
  TowerConfig config;
  ops::Activation act = ops::Activation::QuickGELU;
  std::vector<EncoderLayer> layers;
};

struct TextWeights {
  Tensor token_embedding;     // text_model.embeddings.token_embedding.weight [vocab, hidden]
  Tensor position_embedding;  // text_model.embeddings.position_embedding.weight [77, hidden] f32
  Tower tower;                // text_model.encoder
  LayerNorm final_norm;       // text_model.final_layer_norm
  Tensor projection;          // text_projection.weight [projection_dim, hidden]
};

struct VisionWeights {
  Tensor class_embedding;     // vision_model.embeddings.class_embedding [hidden] f32
  Tensor patch_embedding;     // vision_model.embeddings.patch_embedding.weight, conv [hidden,
                              // 3, p, p] viewed as [hidden, 3 * p * p]
  Tensor position_embedding;  // vision_model.embeddings.position_embedding.weight
                              // [grid * grid + 1, hidden] f32
  LayerNorm pre_norm;         // vision_model.pre_layrnorm (sic)
  Tower tower;                // vision_model.encoder
  LayerNorm post_norm;        // vision_model.post_layernorm
  Tensor projection;          // visual_projection.weight [projection_dim, hidden]
};

struct Model::Impl {
  Config config;
  std::string name;
  int64_t weight_bytes = 0;
  std::optional<text::CLIPTokenizer> tokenizer;
  // Older configs (eos_token_id 2) pool at the largest id rather than the first end token, as
  // transformers' CLIPTextTransformer does.
  bool pool_at_argmax = false;
  TextWeights text;
  VisionWeights vision;
};

// Weights by their Hugging Face names, already viewed (or converted) for the towers.
using NamedTensors = std::map<std::string, Tensor>;

// Builds the model from a config and named weights (shape-checked; small tensors made f32,
// q/k/v stacked). `tokenizer` may be empty only when the config has no text tower.
std::unique_ptr<Model::Impl> build_model(Config config, const NamedTensors& weights,
                                         std::optional<text::CLIPTokenizer> tokenizer,
                                         std::string name);

// Loaders for each kind of input (clip_load.cpp, clip_gguf.cpp).
std::unique_ptr<Model::Impl> load_hf_directory(const std::string& dir);
std::unique_ptr<Model::Impl> load_gguf(const std::string& path);
// The same from an opened file (its tensors stay views of the file's storage); `path` names it
// in errors and becomes the model's name.
std::unique_ptr<Model::Impl> load_gguf(const gguf::File& f, const std::string& path);

// Binding named weights (clip_load.cpp): each checks presence, shape and type and names the tensor
// in its error. Norms and biases are made f32; matrices stay in their file type.
Tensor need_tensor(const NamedTensors& w, const std::string& name, const Dims& shape);
Tensor weight_matrix(const NamedTensors& w, const std::string& name, const Dims& shape);
LayerNorm load_norm(const NamedTensors& w, const std::string& prefix, int64_t n);
Linear load_linear(const NamedTensors& w, const std::string& prefix, int64_t out, int64_t in);
// `prefix`.encoder.layers.N for N < c.layers.
Tower load_tower(const NamedTensors& w, const std::string& prefix, const TowerConfig& c);
int64_t tower_bytes(const Tower& t);

// A text tower's own config.json (transformers' CLIPTextConfig, as diffusers' text_encoder/
// folders hold it), with CLIPTextConfig's defaults.
TowerConfig parse_text_config(const std::string& json_text);

// Parses config.json's text (Hugging Face CLIPConfig, with its defaults for missing fields).
Config parse_hf_config(const std::string& json_text);

// What a Hugging Face CLIP directory says besides its weights: config.json (required),
// preprocessor_config.json, and the tokenizer (vocab.json + merges.txt or tokenizer.json; none
// when absent). Throws Error naming the directory when config.json is missing.
struct HfDirectory {
  Config config;
  std::optional<text::CLIPTokenizer> tokenizer;
};
HfDirectory read_hf_directory(const std::string& dir);

// Decodes any tensor (F32/F16/BF16/block types) into a new contiguous f32 tensor.
Tensor to_f32(const Tensor& t);

// One pre-norm transformer over x: [rows, hidden] made of `n_seq` sequences of `seq_lens[i]`
// rows each (back to back); attention stays within a sequence.
void run_tower(const Tower& tower, const Tensor& x, const std::vector<int64_t>& seq_lens,
               bool causal, ThreadPool& pool);

// Moves the tower's layer weights to `device` (a GPU), where run_tower then runs them.
void place_tower(Tower& tower, Device device);

// L2-normalizes each row of x [n, d] in place.
void normalize_rows(const Tensor& x);

// Bicubic resampling (PyTorch's interpolate(mode="bicubic", align_corners=False), A = -0.75) of
// a [grid_in * grid_in, d] table of position embeddings to [h_out * w_out, d].
Tensor interpolate_positions(const Tensor& table, int64_t grid_in, int64_t h_out, int64_t w_out);

Tensor forward_text(const Model::Impl& m, const std::vector<std::vector<int32_t>>& ids,
                    ThreadPool& pool);
Tensor forward_vision(const Model::Impl& m, const Tensor& pixels, ThreadPool& pool);
// The vision tower's hidden state after its first n_layers encoder layers (transformers'
// hidden_states[n_layers]; 0 is the pre_layrnorm output): f32 [n * (1 + patches), hidden], each
// image's class token first. pixels: f32 [n, 3, H, W].
Tensor vision_hidden_states(const Model::Impl& m, const Tensor& pixels, int64_t n_layers,
                            ThreadPool& pool);

}  // namespace eight::clip
