#include "runtime/llm/session.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace eight {

LLMSession::LLMSession(std::shared_ptr<const llm::LLM> model, const SessionOptions& opt,
                       int64_t n_ctx)
    : model_(std::move(model)),
      pool_(&global_thread_pool(opt.n_threads)),
      cache_(kv_cache_config(*model_, n_ctx, opt.kv_type)),
      scratch_(*model_, std::max<int64_t>(1, std::min(opt.ubatch, n_ctx))),
      logits_(static_cast<size_t>(model_->config().n_vocab) * sizeof(float)) {
  tokens_.reserve(static_cast<size_t>(n_ctx));
  if (ctx_note_.empty()) ctx_note_ = cat("context ", n_ctx, " tokens");
}

const float* LLMSession::eval(std::span<const int32_t> tokens, const float* embeddings) {
  check(!tokens.empty(), "[session] nothing to evaluate");
  const int64_t n = static_cast<int64_t>(tokens.size()), past = n_past();
  check(past + n <= n_ctx(), "[session] the context is full: ", past, " tokens + ", n,
        " new exceed the context of ", n_ctx(), " (use a larger --ctx or --context-shift)");
  float* out = logits_.as<float>();
  llm::forward(*model_, tokens.data(), n, past, cache_.layers(0), scratch_, out,
               {.n_ctx = n_ctx(), .embeddings = embeddings}, *pool_);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  cache_.set_n_past(0, n_past());
  return out;
}

const float* LLMSession::sync(std::span<const int32_t> tokens, const std::atomic<bool>* cancel,
                              const float* embeddings) {
  check(!tokens.empty(), "[session] nothing to evaluate");
  size_t common = 0;
  while (common < tokens_.size() && common < tokens.size() && tokens_[common] == tokens[common] &&
         tokens[common] != llm::kEmbeddingToken)
    ++common;
  // The last token always runs again so its logits are fresh.
  if (common == tokens.size()) --common;
  truncate(static_cast<int64_t>(common));
  const auto rest = tokens.subspan(common);
  const int64_t d = config().n_embd;
  auto rows = [&](size_t i) { return embeddings ? embeddings + (common + i) * d : nullptr; };
  if (!cancel) return eval(rest, rows(0));
  const float* out = nullptr;
  for (size_t i = 0; i < rest.size(); i += kCancelChunk) {
    if (cancel->load()) return nullptr;
    out = eval(rest.subspan(i, std::min(kCancelChunk, rest.size() - i)), rows(i));
  }
  return out;
}

void LLMSession::truncate(int64_t n) {
  check(n >= 0 && n <= n_past(), "[session] cannot keep ", n, " of ", n_past(), " tokens");
  tokens_.resize(static_cast<size_t>(n));
  cache_.truncate(0, n);
}

void LLMSession::eval_all_logits(std::span<const int32_t> tokens, float* out,
                                 const float* embeddings) {
  check(!tokens.empty(), "[session] nothing to evaluate");
  const int64_t n = static_cast<int64_t>(tokens.size());
  check(n <= n_ctx(), "[session] ", n, " tokens exceed the context of ", n_ctx());
  reset();
  llm::forward(*model_, tokens.data(), n, 0, cache_.layers(0), scratch_, out,
               {.n_ctx = n_ctx(), .all_logits = true, .embeddings = embeddings}, *pool_);
  tokens_.assign(tokens.begin(), tokens.end());
  cache_.set_n_past(0, n);
}

}  // namespace eight
