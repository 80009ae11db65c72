#pragma once
// An LLM session: one model, its KV cache (sized by the memory planner) and preallocated scratch,
// and the tokens currently in the context. eval() runs new tokens and returns the last logits;
// sync() makes the context equal a given token list, reusing the longest common prefix already in
// the cache (chat turns and context shifts only run what changed).
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/llm/llm.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/plan/planner.h"

namespace eight {

struct SessionOptions {
  int64_t n_ctx = 0;  // 0: the model's trained context, capped by what fits in RAM
  DType kv_type = DType::F16;
  int64_t ubatch = 512;  // tokens per forward pass while reading a prompt
  int n_threads = 0;     // 0: default_thread_count()
  // Where layers run: "auto" (the best GPU if there is one, else the CPU), "cpu", "vulkan" (the
  // best GPU; a warning when there is none) or "vulkan:N" (that device; Error when absent).
  std::string device = "auto";
  // Decoder layers on the GPU: -1 as the planner places them within the device budget; N the
  // last N layers (and the output layer too when N exceeds the layer count, as llama.cpp's -ngl).
  int64_t n_gpu_layers = -1;
  // The card's memory this run may use, driver reserve included (0: the device's free memory).
  // eight's own allocations there are capped at vram minus vulkan::kDeviceReserveBytes, so a run
  // planned for 8 GiB never holds more than 8 GiB on a larger card.
  int64_t vram = 0;
  // Parts the run holds beside the LLM (LLaVA's vision encoder): billed in the plan with it.
  std::vector<ExtraComponent> extras = {};
};

// The GPU a run plans for: its index (none: the CPU only) and the budget the planner plans
// against (vram 0 without a GPU; the device's budget, its driver reserve already taken off).
struct GpuTarget {
  std::optional<int> index;
  DeviceBudget budget{.vram = 0};
};
GpuTarget gpu_target(const SessionOptions& opt);
// Places `model` on the target's GPU as the plan says (or as opt.n_gpu_layers overrides it) and
// says what it did at info level. Nothing happens without a GPU.
void place_model(llm::LLM& model, const Plan& plan, const GpuTarget& gpu,
                 const SessionOptions& opt);

class LLMSession {
 public:
  // Loads `path`, asks the planner for the context and KV cache, and checks the RAM budget before
  // allocating anything (Error with the planner's numbers when it does not fit).
  static std::unique_ptr<LLMSession> open(const std::string& path, const SessionOptions& opt);
  LLMSession(std::shared_ptr<const llm::LLM> model, const SessionOptions& opt, int64_t n_ctx);

  const llm::LLM& model() const { return *model_; }
  const llm::LLMConfig& config() const { return model_->config(); }
  int64_t n_ctx() const { return cache_.n_ctx(); }
  int64_t n_vocab() const { return config().n_vocab; }
  const KVCache& cache() const { return cache_; }
  ThreadPool& pool() const { return *pool_; }
  // How the context size was chosen (for the user).
  const std::string& ctx_note() const { return ctx_note_; }
  // The memory plan open() checked (empty for a session made directly).
  const Plan& plan() const { return plan_; }

  // Tokens in the context, in order.
  std::span<const int32_t> tokens() const { return {tokens_.data(), tokens_.size()}; }
  int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
  // Runs `tokens` after the current context; returns the last token's logits [n_vocab] (valid
  // until the next call). Throws Error when they do not fit the context. `embeddings`: f32
  // [tokens.size(), n_embd] rows aligned with `tokens`, read where a token is
  // llm::kEmbeddingToken (image features); nullptr when there is none.
  const float* eval(std::span<const int32_t> tokens, const float* embeddings = nullptr);
  // Makes the context equal `tokens`, running only what differs from the current context; returns
  // the last logits. `tokens` must not be empty. With `cancel`, the new tokens run in chunks of
  // kCancelChunk and a set flag stops between chunks (Ctrl-C during a long prompt): the result is
  // then nullptr and the context holds the tokens run so far. Positions fed by embeddings are
  // never reused (two images share the token id): the prefix stops at the first one.
  const float* sync(std::span<const int32_t> tokens, const std::atomic<bool>* cancel = nullptr,
                    const float* embeddings = nullptr);
  static constexpr size_t kCancelChunk = 128;
  // Keeps the first n tokens.
  void truncate(int64_t n);
  void reset() { truncate(0); }
  // Logits of every position of `tokens` run from an empty context: [T, n_vocab] into `out`.
  void eval_all_logits(std::span<const int32_t> tokens, float* out,
                       const float* embeddings = nullptr);

 private:
  std::shared_ptr<const llm::LLM> model_;
  ThreadPool* pool_;
  KVCache cache_;
  llm::LLMScratch scratch_;
  HostBuffer logits_;
  std::vector<int32_t> tokens_;
  std::string ctx_note_;
  Plan plan_;
};

}  // namespace eight
