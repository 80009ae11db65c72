#pragma once
// Text generation on an LLMSession: sample, stream, stop. Stops at end-of-generation tokens
// (EOS/EOT/end-of-turn), at any stop string (which is not emitted), after max_tokens, or when
// `cancel` is set (Ctrl-C). When the context fills up it either stops with a clear reason or,
// with context_shift, drops the oldest half of the tokens after the first `keep` and goes on.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/llm/sampler.h"
#include "runtime/llm/session.h"
#include "text/grammar.h"

namespace eight {

struct GenerateParams {
  int64_t max_tokens = 256;  // < 0: until the context is full
  SamplerParams sampling = {};
  std::vector<std::string> stop = {};    // stop strings
  std::vector<int32_t> eog_tokens = {};  // end-of-generation token ids
  bool context_shift = false;
  int64_t keep = 0;  // tokens at the start a context shift never drops
  // f32 [prompt.size(), n_embd] rows aligned with the prompt, read at llm::kEmbeddingToken
  // positions (images); nullptr for a text-only prompt. Such a prompt never context-shifts (the
  // image rows are not kept past the prompt).
  const float* prompt_embeddings = nullptr;
  // Constrained decoding: every token is one the grammar allows, and the output is a whole
  // sentence of it when generation ends within max_tokens (both set, or neither).
  std::shared_ptr<const text::Grammar> grammar = nullptr;
  std::shared_ptr<const text::GrammarVocab> grammar_vocab = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the stop token excluded)
  std::string text;             // their text, stop string removed
  std::string finish_reason;    // "stop" (EOG or stop string), "length", "context", "cancelled"
  int64_t n_prompt = 0;         // prompt tokens evaluated (after reuse of a cached prefix)
  double prompt_seconds = 0, gen_seconds = 0;
  double prompt_tokens_per_s() const;
  double gen_tokens_per_s() const;
};

// Decodes token ids to text pieces (the tokenizer's job).
using TokenText = std::function<std::string(int32_t token)>;
// Receives streamed text; return false to stop.
using TextSink = std::function<bool(std::string_view text)>;

// Holds back text that could still become a stop string, releasing it once it cannot.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds a piece; returns the text now safe to emit. Sets stopped() when a stop string appeared
  // (text before it is returned, the stop string and anything after are dropped).
  std::string push(std::string_view piece);
  // Text still held back (at the end of generation it is emitted).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

// Runs `prompt` (reusing whatever prefix the session already holds) then generates.
GenerateResult generate(LLMSession& session, std::span<const int32_t> prompt,
                        const GenerateParams& params, const TokenText& token_text,
                        const TextSink& sink = {}, const std::atomic<bool>* cancel = nullptr);

}  // namespace eight
