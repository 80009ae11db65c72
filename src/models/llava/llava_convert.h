#pragma once
// `eight convert` for a Hugging Face LLaVA-NeXT directory: the GGUF pair llama.cpp and Ollama
// ship. The LLM GGUF (general.architecture "llama": Mistral- and Vicuna-based LLaVA 1.6 alike)
// holds the text model with q/k rows permuted to GGUF's interleaved rotary pairs and, when the
// directory has tokenizer.json, the tokenizer; the mmproj GGUF holds the CLIP vision tower
// (every layer, clip.vision.feature_layer), the projector as mm.0 / mm.2, model.image_newline
// and the anyres settings, as convert_image_encoder_to_gguf.py lays them out.
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace eight::llava {

struct ConvertPairReport {
  std::string llm_path, mmproj_path;
  size_t llm_tensors = 0, mmproj_tensors = 0;
  bool tokenizer = false;
};

// Writes `out` (the LLM) and mmproj-<basename of out> next to it. type: F32 or F16 for the
// weight matrices (norms, biases and the newline stay F32; the patch conv is F16 unless F32).
ConvertPairReport convert_llava_next(const std::string& dir, const std::string& out, DType type);

}  // namespace eight::llava
