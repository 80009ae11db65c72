#pragma once
// Model quantization: the standard llama.cpp mixes (Q4_K_M, Q5_K_S, ...) as per-tensor type rules
// (../shared/reference/models.md "Mixes"), and a streaming converter that rewrites a GGUF file
// tensor by tensor through the GGUF writer (atomic temp+rename), row-parallel on a thread pool.
//
// The rules follow current llama.cpp (llama-quant.cpp), including that a fused attn_qkv tensor
// is treated like attn_v, so our Q4_K_M of a model has the community file's per-tensor types.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace eight {

class ThreadPool;

namespace gguf {
class File;
}

// A target of `eight quantize`: a named mix, its llama_ftype id (general.file_type) and the type
// most tensors get.
struct QuantMix {
  std::string_view name;  // "Q4_K_M"
  uint32_t file_type;     // general.file_type
  DType base;
};

// The mix with this name (case-insensitive; "Q4_K"/"Q5_K"/"Q3_K" mean the _M mixes), or nullptr.
const QuantMix* find_quant_mix(std::string_view name);
// All mix names, for help and error messages ("Q4_0, Q4_1, ...").
std::string quant_mix_names();

// What the rules need to know about a model.
struct QuantModelInfo {
  std::string arch;        // general.architecture
  int n_layer = 0;         // {arch}.block_count
  int n_head = 0;          // {arch}.attention.head_count
  int n_head_kv = 0;       // {arch}.attention.head_count_kv (n_head when absent)
  int n_expert = 0;        // {arch}.expert_count
  bool has_output = true;  // an output.weight tensor exists (otherwise tied to token_embd)
};
QuantModelInfo quant_model_info(const gguf::File& file);

struct QuantTensorDesc {
  std::string name;
  std::vector<int64_t> ne;  // ggml order (ne[0] = row length)
  DType type;               // current type
};

struct QuantPlanEntry {
  std::string name;
  std::vector<int64_t> ne;
  DType from;
  DType to;
  bool fallback = false;  // the mix's type did not fit the row length; `to` is the fallback
};

// A type whose block fits a row of ne0 elements: `t` when it does, else llama.cpp's fallback
// (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16); sets *fell_back.
DType fit_row_type(DType t, int64_t ne0, bool* fell_back);

// Whether a tensor is a weight matrix the mixes quantize (norms, biases, 1-D tensors, positional
// embeddings, expert gates and a few small special tensors are kept as they are).
bool tensor_is_quantizable(const std::string& name, const std::vector<int64_t>& ne);

// The type of every tensor, in the given (file) order. `pure`: every quantizable tensor gets the
// mix's base type (still subject to the row-length fallback).
std::vector<QuantPlanEntry> plan_quantization(const QuantMix& mix, const QuantModelInfo& info,
                                              const std::vector<QuantTensorDesc>& tensors,
                                              bool pure);

// Fills rows [row0, row0 + n_rows) of a tensor as float32, row-major (n_rows * n_per_row floats).
using RowSource = std::function<void(int64_t row0, int64_t n_rows, float* dst)>;

// Encodes n_rows rows produced by `source` into `to` at dst, a bounded chunk of rows at a time
// (so a 7B-sized tensor never needs all its floats in memory), quantizing row-parallel on pool.
void quantize_streaming(DType to, int64_t n_rows, int64_t n_per_row, const RowSource& source,
                        uint8_t* dst, ThreadPool* pool);

struct QuantizeProgress {
  size_t index = 0;  // tensors finished
  size_t total = 0;
  const QuantPlanEntry* entry = nullptr;  // the tensor just finished
};

struct QuantizeOptions {
  std::string mix = "Q4_K_M";
  bool pure = false;
  int threads = 0;  // <= 0: default_thread_count()
  std::function<void(const QuantizeProgress&)> progress;
};

struct QuantizeReport {
  size_t tensors = 0;
  size_t converted = 0;  // tensors re-encoded (the rest copied unchanged)
  size_t fallbacks = 0;
  int64_t bytes_in = 0, bytes_out = 0;  // tensor data
  double seconds = 0;
  std::map<std::string, int> type_counts;  // output type name -> tensors
};

// Rewrites `in` as `out` with the mix's types. Input tensors of any decodable type are decoded to
// float32 and re-encoded; tensors already of the target type are copied unchanged.
QuantizeReport quantize_model(const std::string& in, const std::string& out,
                              const QuantizeOptions& options);

}  // namespace eight
