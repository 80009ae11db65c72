#pragma once
// `eight convert` for SDXL: a Stability single file into one whole-checkpoint GGUF in
// stable-diffusion.cpp's layout (the single file's own tensor names, so `sd` reads it too), with
// general.architecture "sdxl", general.file_type and general.quantization_version.
//
// Per-tensor types for --type T (T a quantized type):
//   UNet linear weights (2-D, model.diffusion_model.*)  T; the _M mixes (q4_k_m, q5_k_m) give
//       the value projections attn1/attn2.to_v and the feed-forward down projection ff.net.2
//       Q6_K, as llama.cpp's _M mixes give attn_v and ffn_down more bits, the rest Q4_K / Q5_K.
//       time_embed.* and label_emb.* stay F16 (sd.cpp does not quantize them either).
//   text encoders' linear weights                       Q8_0
//   convolutions, the whole VAE, embedding tables, text_projection    F16
//   norms and biases (1-D)                              F32
// A row whose width does not divide into the type's blocks falls back as `eight quantize` does
// (fit_row_type: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16). For T = f16/bf16/f32 every
// matrix gets T and vectors F32.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace eight::sdxl {

struct ConvertOptions {
  std::string type = "q4_k_m";  // f32, f16, bf16, q8_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m, ...
  int threads = 0;              // <= 0: default_thread_count()
  std::function<void(size_t done, size_t total)> progress;
};

struct ConvertReport {
  size_t tensors = 0;
  size_t fallbacks = 0;  // matrices whose rows did not fit the type's blocks
  int64_t bytes_in = 0, bytes_out = 0;
  std::map<std::string, int> type_counts;
};

// Whether `type` names something convert_to_gguf writes.
bool is_convert_type(const std::string& type);

// Throws Error naming the problem (not an SDXL single file, unknown type, a tensor eight cannot
// decode); writes through a temporary file renamed into place.
ConvertReport convert_to_gguf(const std::string& input, const std::string& out,
                              const ConvertOptions& options);

}  // namespace eight::sdxl
