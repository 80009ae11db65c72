#pragma once
// Converting a Hugging Face CLIP checkpoint directory into one GGUF file (`eight convert`):
// general.architecture "clip", the configuration as clip.* keys, the tokenizer (tokens and
// merges) and the preprocessing, tensors under llama.cpp's CLIP names (t.* / v.*). Weight
// matrices become the requested type (F32, F16, BF16, Q8_0, K-quants, ...; F16 where a row does
// not divide into the type's blocks); norms, biases and position embeddings stay F32; the token
// table and the patch convolution become F16 (F32 when F32 is asked).
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/dtype.h"

namespace eight::clip {

// Name mapping between the Hugging Face checkpoint and the GGUF file; "" for names CLIP does not
// use.
std::string gguf_tensor_name(const std::string& hf_name);
std::string hf_tensor_name(const std::string& gguf_name);

struct ConvertOptions {
  DType type = DType::F16;
  int threads = 0;  // <= 0: default_thread_count()
  std::function<void(size_t done, size_t total)> progress;
};

struct ConvertReport {
  size_t tensors = 0;
  size_t fallbacks = 0;  // matrices kept F16 because their rows do not fit the type's blocks
  int64_t bytes_in = 0, bytes_out = 0;
  std::map<std::string, int> type_counts;
};

ConvertReport convert_checkpoint(const std::string& checkpoint_dir, const std::string& out,
                                 const ConvertOptions& options);

}  // namespace eight::clip
