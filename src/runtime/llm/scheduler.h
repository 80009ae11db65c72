#pragma once
// Continuous batching for the server. Up to n_slots requests decode together: every step builds
// one batch holding a chunk of each new prompt and the next token of each generating request, runs
// one forward pass over it (the weights are read once for all of them, which is what makes
// batching nearly free while decode is memory-bound), then samples each request's next token.
// Requests join between steps; a cancelled one (client gone) frees its slot at the next step.
//
// Each slot keeps the tokens of its last request in its KV cache, and a new request goes to the
// free slot sharing the longest prefix with its prompt, so a follow-up chat turn only runs the new
// tokens. Beyond the slots, a bounded queue; when it is full, submit() fails at once.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "models/llm/llm.h"
#include "runtime/llm/generate.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/sampler.h"
#include "text/grammar.h"

namespace eight {

struct SchedulerOptions {
  int n_slots = 4;    // requests decoding at once (--parallel)
  int64_t n_ctx = 0;  // context per slot
  DType kv_type = DType::F16;
  int64_t max_batch = 512;  // tokens per forward pass
  int queue_limit = 64;     // waiting requests beyond the slots
};

struct ScheduledToken {
  int32_t token = -1;
  std::string text;   // UTF-8-complete text released by this token (stop strings held back)
  float logprob = 0;  // log p(token) under the model's distribution
  std::vector<std::pair<int32_t, float>> top;  // most likely alternatives when asked for
};

struct ScheduledRequest {
  std::vector<int32_t> prompt;
  // f32 [prompt.size(), n_embd] rows aligned with the prompt, read at llm::kEmbeddingToken
  // positions (images); empty for a text prompt.
  std::vector<float> embeddings = {};
  SamplerParams sampling;
  int64_t max_tokens = -1;  // -1: until the slot's context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: off
  // Constrained decoding (both set, or neither): see GenerateParams.
  std::shared_ptr<const text::Grammar> grammar = nullptr;
  std::shared_ptr<const text::GrammarVocab> grammar_vocab = nullptr;
};

struct ScheduledResult {
  std::string text;
  std::vector<ScheduledToken> tokens;  // every generated token (stop token excluded)
  std::string finish_reason;           // "stop", "length", "cancelled", "error"
  std::string error;                   // when finish_reason == "error"
  int64_t prompt_tokens = 0, cached_tokens = 0;
  int64_t completion_tokens = 0;  // tokens generated (the end-of-generation token excluded)
};

struct SchedulerStats {
  int64_t queued = 0, active = 0, slots = 0, kv_used = 0, kv_total = 0;
};

class Scheduler {
 public:
  // `token_text` gives the bytes of a token; `eog` lists the end-of-generation tokens.
  Scheduler(std::shared_ptr<const llm::LLM> model, const SchedulerOptions& opt,
            TokenText token_text, std::vector<int32_t> eog, ThreadPool& pool);
  ~Scheduler();

  // A handle on one request: its events arrive in order through next().
  class Job {
   public:
    // Blocks until the next token or the end. Returns false when the request is finished (then
    // result() is complete).
    bool next(ScheduledToken* token);
    // Marks the request cancelled (client gone); its slot is freed at the next step.
    void cancel() { cancelled_ = true; }
    const ScheduledResult& result() const { return result_; }

   private:
    friend class Scheduler;
    ScheduledRequest request_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<ScheduledToken> events_;
    bool done_ = false;
    std::atomic<bool> cancelled_{false};
    ScheduledResult result_;
  };

  // Queues a request. Throws Error when the prompt does not fit a slot's context (message with the
  // counts) and returns nullptr when the queue is full.
  std::shared_ptr<Job> submit(ScheduledRequest request);
  SchedulerStats stats() const;
  int64_t n_ctx() const { return opt_.n_ctx; }
  const llm::LLM& model() const { return *model_; }

 private:
  struct Slot;
  void loop();
  bool admit();  // moves queued jobs into free slots; true if any slot is busy
  void step();
  void finish(Slot& s, const char* reason, const std::string& error = "");

  std::shared_ptr<const llm::LLM> model_;
  SchedulerOptions opt_;
  TokenText token_text_;
  std::vector<int32_t> eog_;
  ThreadPool& pool_;
  KVCache cache_;
  llm::LLMScratch scratch_;
  HostBuffer logits_;  // [n_slots, n_vocab]
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int64_t> active_{0};
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace eight
