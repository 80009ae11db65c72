#pragma once
// SmilingWolf's WD v3 taggers as timm saves them: the config, the weights by their timm names, and
// the backbones (wd_vit.cpp, wd_convnext.cpp, wd_swinv2.cpp) behind one small interface.
#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <string>

#include "backend/cpu/scratch_peak.h"
#include "formats/safetensors.h"
#include "models/clip/clip_internal.h"
#include "models/tagger/tagger.h"

namespace eight::tagger::wd {

// config.json: {"architecture", "num_classes", "model_args": {...}, "pretrained_cfg": {...}}.
struct Config {
  std::string architecture;  // timm's model name: "vit_base_patch16_224", "convnext_base", ...
  int64_t num_classes = 0;
  nlohmann::json model_args = nlohmann::json::object();  // timm create_model kwargs
  int64_t input_size = 0;                                // pretrained_cfg.input_size [3, S, S]
  double crop_pct = 1.0;                                 // pretrained_cfg.crop_pct
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};           // pretrained_cfg.mean (RGB)
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};
};

// Throws Error naming `source` for malformed JSON, a missing architecture or input size, and an
// interpolation other than bicubic.
Config parse_config(const std::string& json_text, const std::string& source);

// The activation a timm act_layer name means ("gelu" exact, "gelu_tanh", "quick_gelu", ...).
ops::Activation activation_of(const nlohmann::json& model_args, const std::string& source);

// The checkpoint's tensors by timm name, with checks that name the tensor and the numbers.
class Weights {
 public:
  Weights(const safetensors::Checkpoint& ckpt, std::string source);
  bool has(const std::string& name) const;
  const Tensor& need(const std::string& name) const;                         // any shape
  Tensor need(const std::string& name, const Dims& shape) const;             // shape checked
  Tensor vector_f32(const std::string& name, int64_t n) const;               // [n] made f32
  Tensor matrix(const std::string& name, int64_t rows, int64_t cols) const;  // matmul weight
  clip::LayerNorm norm(const std::string& prefix, int64_t n) const;          // prefix.{weight,bias}
  clip::Linear linear(const std::string& prefix, int64_t out, int64_t in) const;
  const std::string& source() const { return source_; }

 private:
  clip::NamedTensors tensors_;
  std::string source_;
};

// A backbone: pixels F32 [n, 3, S, S] → pooled features F32 [n, num_features] (timm's
// forward_head(pre_logits=True)), the head applied by the caller.
class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual int64_t num_features() const = 0;
  virtual Tensor features(const Tensor& pixels, ThreadPool& pool) const = 0;
  // The most bytes features() holds at once above its input for n images (per-thread attention
  // buffers included), and the matrix products it runs, for the kernels' scratch.
  virtual int64_t activation_bytes(int64_t n, int n_threads) const = 0;
  virtual void add_scratch(cpu::ScratchPeak& scratch, int64_t n) const = 0;
  // The bytes the loader copied out of the file mapping (prepared convolution weights, f32
  // copies, derived tables), which stay resident beside it.
  virtual int64_t copied_bytes() const = 0;
};

std::unique_ptr<Backbone> load_vit(const Config& c, const Weights& w);
std::unique_ptr<Backbone> load_convnext(const Config& c, const Weights& w);
std::unique_ptr<Backbone> load_swinv2(const Config& c, const Weights& w);

// Layer norm over each row of x [rows, n] in place, rows in parallel.
void layer_norm_rows(const Tensor& x, const clip::LayerNorm& n, float eps, ThreadPool& pool);

// timm's Mlp: out[rows, C] = fc2(act(fc1(x[rows, C]))); out may not be x.
void mlp_rows(const Tensor& x, const clip::Linear& fc1, const clip::Linear& fc2,
              ops::Activation act, const Tensor& out, ThreadPool& pool);

// What a loaded tensor adds beside the file mapping: its bytes when the loader copied it into
// memory of its own, 0 for a view of the mapping (or an undefined tensor).
int64_t owned_bytes(const Tensor& t);
int64_t owned_bytes(const clip::Linear& l);
int64_t owned_bytes(const clip::LayerNorm& n);

// Global average pool of channels-last maps: x [n * positions, C] → [n, C], summed in double.
Tensor mean_positions(const Tensor& x, int64_t n);

}  // namespace eight::tagger::wd
