#include "runtime/llm/generate.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "core/log.h"

namespace eight {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The longest suffix of `text` that is a proper prefix of some stop string.
size_t held_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(text.size(), s.size() - 1); n > hold; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}

}  // namespace

double GenerateResult::prompt_tokens_per_s() const {
  return prompt_seconds > 0 ? static_cast<double>(n_prompt) / prompt_seconds : 0.0;
}
double GenerateResult::gen_tokens_per_s() const {
  // The first generated token comes from the prompt's logits; the rest each cost one decode.
  return gen_seconds > 0 && tokens.size() > 1 ? static_cast<double>(tokens.size() - 1) / gen_seconds
                                              : 0.0;
}

std::string StopMatcher::push(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  size_t first = std::string::npos;
  for (const auto& s : stops_)
    if (!s.empty()) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  const size_t hold = held_suffix(pending_, stops_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  pending_.clear();
  return out;
}

GenerateResult generate(LLMSession& session, std::span<const int32_t> prompt,
                        const GenerateParams& params, const TokenText& token_text,
                        const TextSink& sink, const std::atomic<bool>* cancel) {
  check(!prompt.empty(), "[generate] the prompt has no tokens");
  GenerateResult r;
  Sampler sampler(params.sampling, session.n_vocab());
  for (int32_t t : prompt) sampler.accept(t);
  StopMatcher stops(params.stop);
  std::optional<text::GrammarMatcher> grammar;
  std::vector<uint32_t> allowed;
  if (params.grammar) {
    check(params.grammar_vocab && params.grammar_vocab->size() == session.n_vocab(),
          "[generate] a grammar needs the model's vocabulary");
    grammar.emplace(params.grammar, params.grammar_vocab);
    allowed.resize(text::GrammarMatcher::mask_words(params.grammar_vocab->size()));
  }
  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    r.text += text;
    return sink ? sink(text) : true;
  };

  const auto t0 = std::chrono::steady_clock::now();
  check(static_cast<int64_t>(prompt.size()) < session.n_ctx(), "[generate] the prompt has ",
        prompt.size(), " tokens but the context holds ", session.n_ctx(), " (use a larger --ctx)");
  {
    const auto cached = session.tokens();
    size_t common = 0;
    while (common < cached.size() && common + 1 < prompt.size() &&
           cached[common] == prompt[common] && prompt[common] != llm::kEmbeddingToken)
      ++common;
    r.n_prompt = static_cast<int64_t>(prompt.size() - common);  // tokens actually evaluated
  }
  const float* logits = session.sync(prompt, cancel, params.prompt_embeddings);
  r.prompt_seconds = seconds_since(t0);
  if (!logits) {  // Ctrl-C while the prompt was being read
    r.finish_reason = "cancelled";
    return r;
  }

  const auto t1 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  const int64_t max_tokens = params.max_tokens < 0 ? INT64_MAX : params.max_tokens;
  while (static_cast<int64_t>(r.tokens.size()) < max_tokens) {
    if (cancel && cancel->load()) {
      r.finish_reason = "cancelled";
      break;
    }
    if (grammar) {
      // Tokens left: max_tokens and the context bound the output; a context shift does not.
      int64_t left = max_tokens - static_cast<int64_t>(r.tokens.size());
      if (!params.context_shift) left = std::min(left, session.n_ctx() - session.n_past());
      grammar->fill_mask(allowed, left);
    }
    const int32_t tok = sampler.sample(logits, grammar ? allowed.data() : nullptr);
    if (std::find(params.eog_tokens.begin(), params.eog_tokens.end(), tok) !=
        params.eog_tokens.end()) {
      r.finish_reason = "stop";
      break;
    }
    r.tokens.push_back(tok);
    sampler.accept(tok);
    const bool grammar_done = grammar && (!grammar->accept(tok) || !grammar->can_continue());
    if (!emit(stops.push(token_text(tok)))) {
      r.finish_reason = "cancelled";
      break;
    }
    if (stops.stopped() || grammar_done) {  // a finished grammar needs no end token
      r.finish_reason = "stop";
      break;
    }
    if (static_cast<int64_t>(r.tokens.size()) >= max_tokens) break;
    if (session.n_past() + 1 > session.n_ctx()) {
      if (!params.context_shift || params.prompt_embeddings) {
        r.finish_reason = "context";
        log_warn("[generate] the context of ", session.n_ctx(),
                 " tokens is full; stopping (use --context-shift to drop old tokens and go on)");
        break;
      }
      // Drop the oldest half of what follows the kept prefix, then run the rest again.
      const auto all = session.tokens();
      const int64_t keep = std::min<int64_t>(params.keep, session.n_past() - 1);
      const int64_t drop = (session.n_past() - keep) / 2;
      std::vector<int32_t> kept(all.begin(), all.begin() + keep);
      kept.insert(kept.end(), all.begin() + keep + drop, all.end());
      log_info("[generate] context full: dropped ", drop, " tokens after the first ", keep);
      session.sync(kept);
    }
    const int32_t one[1] = {tok};
    logits = session.eval(one);
  }
  emit(stops.flush());
  r.gen_seconds = seconds_since(t1);
  return r;
}

}  // namespace eight
