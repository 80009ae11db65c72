#pragma once
// Hugging Face directories as LLM files. The text model of a LLaVA-NeXT checkpoint
// (LlavaNextForConditionalGeneration: text_config) or of a plain Llama / Mistral one is described
// with the metadata llama.cpp's converter writes (architecture "llama") and its tensors under
// GGUF names. `eight convert` writes that into a GGUF; open_hf_llm binds the same tensors in place
// as views of the safetensors mapping (F32, F16 and BF16 are used as stored, nothing is copied
// or written). The weights keep Hugging Face's rotate-half q/k row order there, so the metadata
// says so (kHFRotaryKey) and the llama architecture applies neox-style rotary, which is the same
// function as the interleaved one on permuted rows.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace eight::llm {

// Metadata key (eight's own, never in a file on disk): q/k rows are in Hugging Face's order.
inline constexpr const char* kHFRotaryKey = "eight.hf_rotary";

struct HFTensor {
  std::string gguf, hf;       // the GGUF name and the checkpoint's name
  int64_t permute_heads = 0;  // heads whose q/k rows a GGUF file stores interleaved (0: none)
};

struct HFTextModel {
  std::vector<std::pair<std::string, gguf::Value>> metadata;  // general.file_type excluded
  std::vector<HFTensor> tensors;
  bool tokenizer = false;  // tokenizer.json was found and imported
};

// Reads config.json (text_config for LLaVA-NeXT; transformers' defaults for the fields a
// config leaves out), tokenizer.json + tokenizer_config.json when present, and the chat template
// (tokenizer_config.json, else chat_template.jinja / chat_template.json / processor_config.json).
// Throws Error naming what is missing or unsupported.
HFTextModel describe_hf_text_model(const std::string& dir, const safetensors::Checkpoint& ckpt);

// Whether `path` is a Hugging Face directory describe_hf_text_model takes (a config.json of a
// llava_next, llama or mistral model).
bool is_hf_llm_dir(const std::string& path);

// The directory's text model as an in-memory GGUF whose tensors are views of its safetensors.
gguf::File open_hf_llm(const std::string& dir);

// A GGUF file, or a Hugging Face directory through open_hf_llm.
gguf::File open_llm_file(const std::string& path);

}  // namespace eight::llm
