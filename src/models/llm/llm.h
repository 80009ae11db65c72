#pragma once
// Decoder-only transformer LLMs from GGUF files: the config read from metadata (models.md §1 keys),
// weights bound in place from the file mapping, and the common pre-norm decoder loop. Each
// architecture (llama.cpp, phi3.cpp, qwen2.cpp) registers how its config and tensors differ.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "nn/rope.h"

namespace eight::llm {

struct LLMConfig {
  std::string arch;            // general.architecture
  std::string name;            // general.name
  int64_t n_vocab = 0;         // token_embd rows
  int64_t n_ctx_train = 0;     // {arch}.context_length
  int64_t n_embd = 0;          // {arch}.embedding_length
  int64_t n_layer = 0;         // {arch}.block_count
  int64_t n_ff = 0;            // {arch}.feed_forward_length
  int64_t n_head = 0;          // {arch}.attention.head_count
  int64_t n_head_kv = 0;       // {arch}.attention.head_count_kv (default n_head)
  int64_t head_dim = 0;        // {arch}.attention.key_length (default n_embd / n_head)
  float norm_eps = 1e-5f;      // {arch}.attention.layer_norm_rms_epsilon
  int64_t sliding_window = 0;  // {arch}.attention.sliding_window (0: none)
  int64_t n_ctx_orig = 0;      // {arch}.rope.scaling.original_context_length (LongRoPE)
  nn::RopeParams rope;         // style per architecture; freq_factors bound by the loader
  Tensor rope_factors_short;   // Phi-3 LongRoPE, used when n_ctx <= n_ctx_orig
  Tensor rope_factors_long;    // used when n_ctx > n_ctx_orig

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  // The rope parameters for a context of n_ctx tokens (LongRoPE picks its factor set by it).
  nn::RopeParams rope_for_context(int64_t n_ctx) const;
};

// One decoder block. Names are the GGUF tensor names.
struct LLMLayer {
  Tensor attn_norm;       // blk.N.attn_norm.weight [n_embd]
  nn::Linear wq, wk, wv;  // blk.N.attn_q|attn_k|attn_v.weight (+ .bias: qwen2)
  nn::Linear wqkv;   // blk.N.attn_qkv.weight [q_dim + 2·kv_dim, n_embd]: rows q ‖ k ‖ v (phi3)
  nn::Linear wo;     // blk.N.attn_output.weight [n_embd, q_dim]
  Tensor ffn_norm;   // blk.N.ffn_norm.weight [n_embd]
  nn::GatedMLP mlp;  // blk.N.ffn_gate|ffn_up|ffn_down.weight (phi3: ffn_up = gate ‖ up)
};

struct LLMWeights {
  Tensor token_embd;   // token_embd.weight [n_vocab, n_embd]
  Tensor output_norm;  // output_norm.weight [n_embd]
  nn::Linear output;   // output.weight [n_vocab, n_embd] (+ output.bias); token_embd when tied
  bool tied = false;
  std::vector<LLMLayer> layers;
};

// How an architecture differs: it fills config fields beyond the common keys and binds one
// layer's tensors. Registered from a static initializer in the architecture's file.
struct LLMArchitecture {
  std::string name;
  std::string summary;
  void (*configure)(const gguf::File& f, LLMConfig& c);
  void (*bind_layer)(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& layer);
};
void register_llm_architecture(const LLMArchitecture& arch);
const LLMArchitecture* find_llm_architecture(const std::string& name);
std::vector<std::string> llm_architecture_names();

// Which parts run on a GPU, as the planner places them (llama.cpp's -ngl order): the last
// n_gpu_layers decoder layers and, with output_on_gpu, the final norm and output projection. The
// token embedding stays on the host (one row per token is read). Activations cross between the
// host and the device only where the placement changes.
struct LLMPlacement {
  Device device = Device::cpu();  // Device::vulkan(i) for any GPU part
  int64_t n_gpu_layers = 0;
  bool output_on_gpu = false;
  bool any_gpu() const { return device.kind != DeviceKind::CPU && (n_gpu_layers || output_on_gpu); }
};

class LLM {
 public:
  // Maps and reads a GGUF file, or binds a Hugging Face directory's weights in place (llm_hf.h).
  // Throws Error naming an unknown architecture, a missing key or
  // tensor, or a tensor whose shape disagrees with the config.
  static std::shared_ptr<LLM> load(const std::string& path);
  static std::shared_ptr<LLM> from_file(gguf::File file);

  const LLMConfig& config() const { return config_; }
  const LLMWeights& weights() const { return weights_; }
  const gguf::File& file() const { return file_; }
  // Bytes of tensor data the forward pass reads per token (all weights once).
  int64_t weight_bytes() const;

  // Uploads the weights of the placed layers (and the output) to the placement's device, once,
  // before any session uses the model. On the device a fused q‖k‖v or gate‖up projection is
  // stored as its parts, so every activation there has packed rows. Throws Error when the device
  // budget refuses an upload (nothing is left half-placed then: the model stays on the host).
  void place(const LLMPlacement& placement);
  const LLMPlacement& placement() const { return placement_; }
  // The first layer that runs on the GPU (n_layer when none does).
  int64_t first_gpu_layer() const {
    return placement_.any_gpu() ? config_.n_layer - placement_.n_gpu_layers : config_.n_layer;
  }

 private:
  gguf::File file_;
  LLMConfig config_;
  LLMWeights weights_;
  LLMPlacement placement_;
};

// Helpers for the architecture files.
// The tensor `name` checked against `shape` (PyTorch order); Error naming it when absent or wrong.
Tensor require_tensor(const gguf::File& f, const std::string& name, const Dims& shape);
// As require_tensor, but an undefined Tensor when absent.
Tensor optional_tensor(const gguf::File& f, const std::string& name, const Dims& shape);
std::string layer_tensor(int64_t il, const char* suffix);  // "blk.<il>.<suffix>"
// Binding of the common layer parts: attn_norm/ffn_norm and attn_output; q/k/v as separate
// projections (biases optional, required when `biases`) or one fused attn_qkv; the MLP as
// separate ffn_gate/ffn_up or one fused ffn_up [2·n_ff, n_embd].
void bind_norms_and_output(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L);
void bind_separate_qkv(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L,
                       bool biases);
void bind_fused_qkv(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L);
void bind_gated_mlp(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L);
void bind_fused_mlp(const gguf::File& f, const LLMConfig& c, int64_t il, LLMLayer& L);

// Called with each named intermediate ("attn_norm", "q", "attn_out", "ffn_out", "l_out",
// "result_norm") and its layer (-1 for model-level ones); for locating divergences.
using Observer = std::function<void(const char* name, int64_t layer, const Tensor& value)>;

// Activations of the GPU layers, in device memory: packed [max_batch, ...] f32 buffers (q, k and v
// apart), the rotary table uploaded once per batch, and the logits rows of the output layer.
struct LLMDeviceScratch {
  Tensor x, cur, q, k, v, attn, ffn_out, gate, up, hidden, cos_sin, logits;
  bool defined() const { return x.defined(); }
};

// Preallocated activations for batches of up to max_batch tokens, so decoding allocates nothing.
class LLMScratch {
 public:
  // host_layers = false: only what the host does when every layer and the output run on a GPU.
  LLMScratch(const LLMConfig& c, int64_t max_batch, bool host_layers = true);
  // With the device buffers the model's placement needs (none for a CPU-only model).
  LLMScratch(const LLM& model, int64_t max_batch);
  int64_t max_batch() const { return max_batch_; }
  // Views [T, ...] of the buffers.
  Tensor x, cur, qkv, attn, ffn_out, gate_up, hidden, cos_sin, positions, logits_row;
  LLMDeviceScratch gpu;
  // A [rows, cols] f32 view of caller memory (the logits destination). The view's storage is
  // kept and reused while the caller passes the same buffer, so decoding allocates nothing.
  Tensor output_view(float* data, int64_t rows, int64_t cols);

 private:
  int64_t max_batch_;
  std::shared_ptr<Storage> storage_;
  std::shared_ptr<Storage> output_;
};

// A token id that stands for an input embedding given by the caller (LLaVA's image features):
// such a position reads its row from ForwardOptions::embeddings instead of token_embd.
inline constexpr int32_t kEmbeddingToken = -1;

struct ForwardOptions {
  int64_t n_ctx = 0;            // the session's context (selects LongRoPE factors)
  bool all_logits = false;      // logits for every token (else only the last)
  Observer observer = nullptr;  // optional
  // [T, n_embd] f32 rows aligned with the tokens passed (same count, same order): the row of a
  // position whose token is kEmbeddingToken is its input. Only those rows are read; nullptr when
  // no position has one.
  const float* embeddings = nullptr;
};

// A run of one sequence's tokens at positions [pos0, pos0 + n) with that sequence's cache.
struct Segment {
  std::span<const nn::KVLayerView> kv;
  int64_t pos0 = 0;
  int64_t n = 0;
  bool logits = false;  // produce logits for the segment's last token
};

// Runs several sequences' tokens in one pass (continuous batching): the tokens of segs[i] follow
// those of segs[i-1] in `tokens`, all of them ≤ scratch.max_batch(). Writes the last-token logits
// of each segment with logits = true to consecutive rows [n_vocab] of `logits`, in segment order.
void forward_segments(const LLM& model, const int32_t* tokens, std::span<const Segment> segs,
                      LLMScratch& scratch, float* logits, const ForwardOptions& opt,
                      ThreadPool& pool);

// Runs tokens[0..T) at positions [pos0, pos0 + T) for one sequence whose per-layer cache is
// kv[layer], in batches of scratch.max_batch(). Writes logits [T, n_vocab] (all_logits) or
// [n_vocab] for the last token to `logits`.
void forward(const LLM& model, const int32_t* tokens, int64_t T, int64_t pos0,
             std::span<const nn::KVLayerView> kv, LLMScratch& scratch, float* logits,
             const ForwardOptions& opt, ThreadPool& pool);

}  // namespace eight::llm
