#pragma once
// The EnCodec decoder (audiocraft's compression model; facebook/encodec_32khz is what MusicGen
// and MAGNeT decode with): residual-VQ codes -> latent -> SEANet decoder -> audio.
//
//   const auto model = encodec::Decoder::open("models/magnet-small-10secs");   // or an HF dir
//   Tensor audio = model.decode(codes, pool);   // codes I32 [n_q, T] -> F32 [T * hop], mono
//
// Two layouts load onto one set of weights:
//  - audiocraft: compression_state_dict.bin, torch.save of {'best_state': state dict,
//    'xp.cfg': the experiment config as YAML text, ...} (audiocraft.utils.export), names
//    decoder.model.N.conv.conv.weight_g/_v, decoder.model.N.convtr.convtr.*,
//    quantizer.vq.layers.Q._codebook.embed; the seanet / rvq sections of xp.cfg give the shape.
//  - transformers: a directory with config.json (EncodecConfig) and model.safetensors or
//    pytorch_model.bin, names decoder.layers.N.conv.*, quantizer.layers.Q.codebook.embed.
// Weight norm (weight_g/weight_v or parametrizations.weight.original0/1) is folded into plain
// f32 weights at load: w = g * v / ||v||, the norm over all but the first dimension.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "nn/lstm.h"

namespace eight::encodec {

enum class PadMode { Constant, Reflect, Replicate };

// The decoder's hyper-parameters with audiocraft's names (transformers' in comments).
struct Config {
  int64_t channels = 1;                     // audio_channels
  int64_t dimension = 128;                  // hidden_size: the latent the codebooks sum to
  int64_t n_filters = 64;                   // num_filters
  int64_t n_residual_layers = 1;            // num_residual_layers
  std::vector<int64_t> ratios{8, 5, 4, 4};  // upsampling_ratios, decoder order
  int64_t kernel_size = 7, last_kernel_size = 7, residual_kernel_size = 3;
  int64_t dilation_base = 2;  // dilation_growth_rate
  int64_t compress = 2;
  int64_t lstm = 2;       // num_lstm_layers (0: none)
  bool causal = false;    // use_causal_conv
  bool true_skip = true;  // !use_conv_shortcut: identity residual shortcuts
  PadMode pad_mode = PadMode::Constant;
  double trim_right_ratio = 1.0;
  bool final_tanh = false;  // final_activation 'Tanh' (none in transformers)
  double elu_alpha = 1.0;
  int64_t n_q = 4;      // codebooks
  int64_t bins = 2048;  // codebook_size
  int64_t sample_rate = 32000;
  int64_t hop() const;  // audio samples per code frame: the product of the ratios
};

// transformers' EncodecConfig (config.json). `where` names the file in errors.
Config parse_hf_config(const std::string& json, const std::string& where);
// audiocraft's exported 'xp.cfg' YAML (OmegaConf.to_yaml): sample_rate, channels, the seanet
// section with its decoder overrides, rvq. Reads the block-style YAML OmegaConf writes (maps,
// lists, flow {} / [] / {k: v}, quoted and plain scalars, comments); anything else is an Error.
Config parse_audiocraft_config(const std::string& yaml, const std::string& where);
const char* pad_mode_name(PadMode m);

struct Conv {  // a 1-D convolution with its weight norm folded
  Tensor w;    // f32 [C_out, C_in, k] (Conv1d) or [C_in, C_out, k] (ConvTranspose1d)
  Tensor b;    // f32 [C_out] or undefined
  int64_t dilation = 1, stride = 1;
};
struct ResBlock {
  Conv conv1, conv2;  // kernel residual_kernel_size (dilated), then 1
  Conv shortcut;      // undefined with true_skip
};
struct UpBlock {
  Conv up;  // transposed, kernel 2 * ratio, stride ratio
  std::vector<ResBlock> res;
};
struct Weights {
  std::vector<Tensor> codebooks;    // n_q x f32 [bins, codebook_dim]
  std::vector<Tensor> project_out;  // n_q x [dimension, codebook_dim] or empty (identity)
  std::vector<Tensor> project_out_b;
  Conv first;
  std::vector<nn::LstmLayer> lstm;
  std::vector<UpBlock> ups;
  Conv last;
};

class Decoder {
 public:
  // A directory (transformers' or a MAGNeT/MusicGen one holding compression_state_dict.bin) or
  // a compression_state_dict.bin / model.safetensors file. Throws Error naming the problem.
  static Decoder open(const std::string& path);

  const Config& config() const { return config_; }
  const std::string& layout() const { return layout_; }  // "audiocraft" or "transformers"
  const std::string& path() const { return path_; }
  int64_t weight_bytes() const;

  // Checks codes: I32 [n_q, T] with every value in [0, bins). Throws Error naming the first
  // offending position.
  void check_codes(const Tensor& codes) const;
  // codes I32 [n_q, T] -> F32 [channels, T * hop]. `progress(done, total)`, when given, is called
  // after each of the decoder's stages.
  Tensor decode(const Tensor& codes, ThreadPool& pool,
                void (*progress)(int done, int total, void* ctx) = nullptr,
                void* ctx = nullptr) const;
  // The summed codebook embeddings, F32 [dimension, T].
  Tensor latent(const Tensor& codes, ThreadPool& pool) const;

  // For loaders (encodec_load.cpp).
  Decoder(Config c, Weights w, std::string layout, std::string path)
      : config_(std::move(c)),
        w_(std::move(w)),
        layout_(std::move(layout)),
        path_(std::move(path)) {}

 private:
  Config config_;
  Weights w_;
  std::string layout_, path_;
};

}  // namespace eight::encodec
