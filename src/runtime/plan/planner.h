#pragma once
// The memory planner: from metadata alone (tensor names, types and shapes; hyperparameters; no
// tensor data read) it decides what goes on which device for a request and budget, and says
// before anything loads whether a run fits.
//
// LLMs (plan_llm): weights per layer, embeddings on the CPU (a row lookup gains nothing on a GPU,
// as in llama.cpp), the output layer on the GPU when it fits, then repeating layers from the last
// one backwards until the GPU is full; the rest run on the CPU.
//
// What each buffer costs (all bytes; T = tokens per micro-batch = min(ubatch, ctx·parallel)):
//   weights   the tensors' bytes as stored (used in place from the file mapping on the CPU)
//   KV cache  2 · n_layer · parallel · ctx · row_bytes(kv_type, n_head_kv·head_dim)   (K and V)
//   compute   4 · T · (3·n_embd + 2·n_head·head_dim + 2·n_head_kv·head_dim + 3·n_ff + head_dim + 1)
//             + 4 · n_vocab   (one layer's activations: x, norm, q‖k‖v, attention out, ffn out,
//               gate‖up, hidden, rope table, positions; plus a logits row)
//             + attention: chunked (flash_attention, eight's CPU kernel) 4 · (g·c·ctx +
//             2·ctx·head_dim
//               + 2·g·c·head_dim) with g = n_head / n_head_kv and c = clamp(2^22 / (g·ctx), 1, T)
//               queries per pass (scores of one KV head's query group over c queries, at most 4M
//               floats unless one query needs more; that head's K and Vᵀ in f32; the group's
//               queries and outputs), plus 4·n_threads·(2·ctx·head_dim + ctx) for decoding
//               (≤ 4 queries: a task per KV head, each thread's f32 copy of one head's K and V
//               and a score row); naive 4·n_head·T·ctx + 8·ctx·n_head_kv·head_dim.
//             + kernel scratch: the CPU matmul kernels' per-thread buffers (backend/cpu/scratch.h
//               matmul_scratch, exact per kernel). Per slot s, R_s = the largest request over the
//               products of a pass: every weight (k = n_embd for q/k/v/qkv/gate/up/output,
//               q_dim for attn_output, n_ff for ffn_down) with T rows and with 1 row, attention's
//               q·Kᵀ (k = head_dim) and P·V (k = ctx) in f32 with g·c rows and with g rows. On
//               AVX-512, quantized weights: ≤ 3 rows 1·m·(k + 4·(k/B + k/16 + k/32) + 256) on the
//               caller (B = 256 for K-quants, else 32); more rows ⌈m/16⌉·(16k + 64·⌈k/256⌉ +
//               64·k/G) + 128 on the caller (G = 16 for Q2_K/Q3_K/Q6_K, else 32) and 6k + 72·k/G
//               + 256 per thread; f32/f16 weights 4k per thread (≤ 3 rows), else 4k·2w + 4k
//               (w = SIMD floats: 16, 8 below AVX-512). Each slot holds 1.25·R_s (the scratch's
//               growth headroom); task slots on each of the n_threads threads, caller slots once.
//             The arena is reused layer after layer, so one layer's live set bounds it.
//   logits    4 · n_vocab · L, L = min(logits_rows, T), or T when logits_rows = 0 (f32 logits the
//             caller holds on the host: every token of a micro-batch, or one row for a chat
//             session)
//   GPU runtime reserve  kGpuRuntimeReserve = 512 MiB per GPU: the Vulkan driver's context, its
//             pipelines and descriptor pools, the staging buffer and allocator slack (the same
//             figure as vulkan::kDeviceReserveBytes). Peers use similar figures (Ollama 457 MiB;
//             llama.cpp --fit keeps 1 GiB free).
//
// Host memory (Plan::host_peak) counts what the tracked allocators see on the CPU: the file
// mapping (Mapped: the whole file while every layer runs on the CPU, otherwise the CPU-resident
// tensors) plus heap (KV cache of CPU layers, the CPU compute arena, the logits buffer). The LLM
// loader's measured peak (memory_tracker().stats().peak) must not exceed it and must be within 5%.
//
// Until the LLM layers run on the Vulkan backend every run happens on the CPU: loaders plan with
// vram = 0 and call plan.check_host_budget() before loading, then
// set_host_heap_limit(plan.host_heap_bytes()) so that an allocation beyond the plan fails loudly.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "runtime/plan/catalog.h"

namespace eight {

namespace gguf {
class File;
}

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGpuRuntimeReserve = 512 * kMiB;

// One weight tensor as the planner sees it.
struct WeightInfo {
  std::string name;
  DType type = DType::F32;
  int64_t bytes = 0;
  int layer = -1;  // blk.N → N; -1 for global tensors
};

// An extra part a model needs beside its LLM (LLaVA's vision tower + projector).
struct ExtraComponent {
  std::string id, role;
  int64_t bytes = 0, work_bytes = 0;
};

// An LLM described by metadata: from a GGUF file or from the catalog.
struct LLMDesc {
  std::string name;          // "mistral-7b-instruct-v0.2" or the file's general.name
  std::string origin;        // the file path, or "catalog"
  std::string architecture;  // llama, qwen2, phi3
  std::string quant;         // Q4_K_M, ... ("mixed" when the file does not say)
  LLMHparams hp;
  std::vector<WeightInfo> tensors;
  int64_t file_bytes = 0;  // the whole file (what the mapping holds)
  int64_t min_ctx = 0;
  std::vector<ExtraComponent> extras;
  const CatalogEntry* entry = nullptr;  // the catalog model it came from, if any
  const Variant* variant = nullptr;

  int64_t weight_bytes() const;
  int64_t layer_bytes(int layer) const;
  int64_t embedding_bytes() const;  // token_embd and other tensors outside blk.N and output
  // What the output layer costs on a GPU: output_norm + output.weight, or a copy of token_embd
  // when the embeddings are tied.
  int64_t output_bytes() const;
};

// From the catalog: "mistral-7b-instruct:Q4_K_M". Tensor types follow llama.cpp's quantization
// mixes (see llm_tensors.cpp), so per-layer sizes are exact up to metadata.
LLMDesc describe_catalog_llm(const ModelRef& ref);
// From an opened GGUF file's metadata and tensor infos (llm_gguf.cpp).
LLMDesc describe_gguf(const gguf::File& file);
// Which llama.cpp rule set made a file: the one most published 2024-25 GGUFs used (a fused
// attn_qkv has its own type), or the current one (attn_qkv follows attn_v), models.md "Mixes".
enum class QuantRules { Published2024, Current };
// The tensors a llama.cpp quantization of this architecture has (llama, qwen2, phi3).
std::vector<WeightInfo> synthesize_llm_tensors(const std::string& arch, const LLMHparams& hp,
                                               const std::string& ftype,
                                               QuantRules rules = QuantRules::Published2024);

struct PlanRequest {
  int64_t ctx = 0;  // tokens per slot; 0 = min(n_ctx_train, 8192) (at least the model's min_ctx)
  DType kv_type = DType::F16;   // F16, Q8_0 or F32
  int64_t parallel = 1;         // slots, each with its own ctx
  int64_t batch = 2048;         // logical batch (prompt chunk handed to the model)
  int64_t ubatch = 512;         // micro-batch: tokens per forward pass
  bool flash_attention = true;  // chunked attention with bounded scores (see compute above)
  int64_t logits_rows = 0;      // f32 logits rows the caller holds; 0 = every token of a ubatch
  int n_threads = 0;            // CPU threads (kernel scratch is per thread); 0 = the default
};

struct DeviceBudget {
  int64_t vram = 8 * kGiB;  // 0 = no GPU: plan for the CPU
  int64_t ram = 0;          // 0 = this machine's RAM minus 1 GiB for the OS (system_ram_budget())
  int64_t gpu_reserve = kGpuRuntimeReserve;
};
// Physical RAM minus 1 GiB.
int64_t system_ram_budget();

// One line of a device's bill: what, how much, and why it is there.
struct Buffer {
  std::string what;
  int64_t bytes = 0;
  std::string why;
  bool counted = true;  // false: shown for information (reclaimable page cache), not budgeted
  bool mapped = false;  // file mapping (weights used in place), not heap
};

struct DevicePlan {
  std::string device;  // "vulkan:0", "cpu"
  int64_t budget = 0;
  std::vector<Buffer> items;
  int64_t total() const;  // counted items
  int64_t free() const { return budget - total(); }
  bool fits() const { return total() <= budget; }
};

enum class Verdict { FitsOnGPU, PartialOffload, CPUOnly, DoesNotFit };
const char* verdict_name(
    Verdict v);  // "fits-on-gpu", "partial-offload", "cpu-only", "does-not-fit"

struct LayerPlacement {
  int index = 0;
  bool gpu = false;
  int64_t weight_bytes = 0, kv_bytes = 0;
};

struct Plan {
  std::string model, quant, origin;
  PlanRequest request;  // with ctx resolved
  DeviceBudget budget;  // with ram resolved
  LLMHparams hp;
  int n_layer = 0, n_gpu_layers = 0;
  bool output_on_gpu = false, extras_on_gpu = false;
  std::vector<LayerPlacement> layers;
  DevicePlan gpu, cpu;
  int64_t file_bytes = 0, weight_bytes = 0;
  int64_t kv_bytes = 0;         // all layers, all slots
  int64_t kv_bytes_per_1k = 0;  // per 1024 tokens of one slot
  int64_t compute_bytes = 0;    // one arena (each device with layers has one)
  int64_t logits_bytes = 0;
  int64_t max_ctx_gpu = 0;  // largest ctx (≤ n_ctx_train) with every layer on the GPU; 0: none
  int64_t max_ctx = 0;      // largest ctx that fits at all (GPU + RAM); 0: none
  Verdict verdict = Verdict::DoesNotFit;
  std::string summary;                   // the one-line verdict
  std::vector<std::string> suggestions;  // what would make it fit (better)
  std::vector<std::string> notes;

  bool fits() const { return verdict != Verdict::DoesNotFit; }
  // Planned host peak: mapped weights + KV + compute + logits on the CPU (see the header comment).
  int64_t host_peak() const { return cpu.total(); }
  // The heap part of host_peak (what set_host_heap_limit should allow).
  int64_t host_heap_bytes() const;
  // Throws Error with the numbers when the CPU part exceeds the RAM budget.
  void check_host_budget() const;
};

// Plans an LLM. Throws Error for an impossible request (ctx ≤ 0 or beyond 16M, parallel < 1,
// negative budgets, an unknown KV type).
Plan plan_llm(const LLMDesc& model, const PlanRequest& request, const DeviceBudget& budget);
// The largest ctx (multiple of 256 when ≥ 256, ≤ n_ctx_train) for which `accept(plan)` holds;
// 0 when even ctx 1 fails.
int64_t largest_ctx(const LLMDesc& model, const PlanRequest& request, const DeviceBudget& budget,
                    bool gpu_only);

// Multi-component models, planned as stages from the catalog's component sizes.
struct ComponentPlan {
  std::string id, role, precision;
  int64_t bytes = 0, work_bytes = 0;
  std::string device;     // "vulkan:0", "cpu", "stream" (blocks stream from RAM to the GPU)
  std::string residency;  // "resident", "per stage", "streamed"
  std::string why;
};
struct StagePlan {
  std::string name;
  std::vector<std::string> components;
  int64_t gpu_bytes = 0, cpu_bytes = 0;  // peak while the stage runs
};
struct PipelinePlan {
  std::string model, variant, quant;
  DeviceBudget budget;
  std::string strategy;  // how residency was decided
  std::vector<ComponentPlan> components;
  std::vector<StagePlan> stages;
  int64_t gpu_peak = 0, cpu_peak = 0;
  Verdict verdict = Verdict::DoesNotFit;
  std::string summary;
  std::vector<std::string> suggestions, notes;
  bool fits() const { return verdict != Verdict::DoesNotFit; }
};
PipelinePlan plan_pipeline(const ModelRef& ref, const DeviceBudget& budget);

// Parses "f16", "q8_0", "f32" as a KV cache type (Error otherwise).
DType parse_kv_type_name(const std::string& name);
// "12k" style context for tables: 8192 -> "8k", 6400 -> "6.2k", 300 -> "300".
std::string format_ctx(int64_t ctx);

}  // namespace eight
