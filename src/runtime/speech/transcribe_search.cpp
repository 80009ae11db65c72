// One window's token search: greedy, best-of sampling and beam search (OpenAI's decoding.py).
#include "runtime/speech/transcribe_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "core/error.h"
#include "core/tensor.h"

namespace eight::whisper {

namespace {

constexpr int kPromptChunk = 32;

struct Hypothesis {
  std::vector<int32_t> tokens;  // sampled so far (may end with eot)
  std::vector<float> probs;
  double logprob = 0;
};

int argmax(const float* x, int n) {
  return static_cast<int>(std::max_element(x, x + n) - x);
}

int sample(const float* logits, int n, float temperature, std::mt19937_64& rng) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) mx = std::max(mx, logits[i]);
  double total = 0;
  for (int i = 0; i < n; ++i)
    total += std::exp((static_cast<double>(logits[i]) - mx) / temperature);
  double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  int last_allowed = argmax(logits, n);
  for (int i = 0; i < n; ++i) {
    if (logits[i] == -std::numeric_limits<float>::infinity()) continue;
    last_allowed = i;
    u -= std::exp((static_cast<double>(logits[i]) - mx) / temperature);
    if (u <= 0) return i;
  }
  return last_allowed;  // rounding left a sliver of mass: the last allowed token
}

// OpenAI's MaximumLikelihoodRanker: logprob / length, or / ((5 + length) / 6) ^ penalty.
double rank_score(double logprob, size_t length, float length_penalty) {
  const double len = static_cast<double>(std::max<size_t>(length, 1));
  const double penalty = length_penalty > 0 ? std::pow((5.0 + len) / 6.0, length_penalty) : len;
  return logprob / penalty;
}

// The text tokens of a hypothesis, without its final eot.
size_t content_length(const std::vector<int32_t>& tokens, int32_t eot) {
  size_t n = 0;
  while (n < tokens.size() && tokens[n] != eot) ++n;
  return n;
}

}  // namespace

void reorder_sequences(DecoderModel& model, std::span<const int> src, int spare) {
  const int n = static_cast<int>(src.size());
  std::vector<int> from(src.begin(), src.end());
  std::vector<bool> done(n);
  for (int i = 0; i < n; ++i) done[i] = from[i] == i;
  for (;;) {
    bool progress = false, all_done = true;
    for (int t = 0; t < n; ++t) {
      if (done[t]) continue;
      bool needed = false;
      for (int u = 0; u < n && !needed; ++u) needed = u != t && !done[u] && from[u] == t;
      if (needed) {
        all_done = false;
        continue;
      }
      model.copy_sequence(from[t], t);
      done[t] = true;
      progress = true;
    }
    if (all_done) return;
    if (!progress) {
      // Only cycles remain: park one member in the spare slot and read it from there.
      int t = 0;
      while (done[t]) ++t;
      model.copy_sequence(t, spare);
      for (int u = 0; u < n; ++u)
        if (!done[u] && from[u] == t) from[u] = spare;
    }
  }
}

void DecoderModel::decode_rows(int seq, std::span<const int32_t> tokens, std::span<const int> rows,
                               float* logits) {
  const int nv = n_vocab();
  Tensor buf = Tensor::empty({kPromptChunk, nv}, DType::F32);
  const int n = static_cast<int>(tokens.size());
  for (int begin = 0; begin < n; begin += kPromptChunk) {
    const int len = std::min(kPromptChunk, n - begin);
    decode(seq, tokens.subspan(begin, len), buf.data<float>(), nullptr);
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i] >= begin && rows[i] < begin + len)
        std::memcpy(logits + i * nv, buf.data<float>() + static_cast<size_t>(rows[i] - begin) * nv,
                    sizeof(float) * nv);
  }
}

void decode_prompt(DecoderModel& model, int seq, std::span<const int32_t> tokens,
                   float* last_logits, int keep_index, float* keep_logits) {
  check(!tokens.empty(), "[whisper decode] empty prompt");
  const int nv = model.n_vocab();
  const int n = static_cast<int>(tokens.size());
  const bool keep = keep_logits && keep_index >= 0 && keep_index < n;
  const int rows[2] = {n - 1, keep_index};
  Tensor buf = Tensor::empty({2, nv}, DType::F32);
  model.decode_rows(seq, tokens, std::span<const int>(rows, keep ? 2 : 1), buf.data<float>());
  std::memcpy(last_logits, buf.data<float>(), sizeof(float) * nv);
  if (keep) std::memcpy(keep_logits, buf.data<float>() + nv, sizeof(float) * nv);
}

SearchResult decode_window(DecoderModel& model, const LogitRules& rules,
                           std::span<const int32_t> prompt, int sot_index, const SearchOptions& o) {
  const int nv = model.n_vocab();
  const int32_t eot = rules.special.eot;
  const bool beam = o.temperature == 0 && o.beam_size > 1;
  const int n_hyp = beam ? o.beam_size : (o.temperature > 0 ? std::max(1, o.best_of) : 1);
  check(model.max_sequences() >= n_hyp + (beam ? 1 : 0), "[whisper decode] ", n_hyp,
        " hypotheses need ", n_hyp + (beam ? 1 : 0), " sequences but the state holds ",
        model.max_sequences());
  check(sot_index >= 0 && sot_index < static_cast<int>(prompt.size()),
        "[whisper decode] sot index ", sot_index, " outside the prompt of ", prompt.size());
  // Every chosen token but the last is decoded, so the cache holds prompt + sample_len - 1.
  const int room = model.max_tokens() - static_cast<int>(prompt.size()) + 1;
  check(room >= 1, "[whisper decode] the prompt of ", prompt.size(),
        " tokens fills the decoder's context of ", model.max_tokens());
  const int sample_len = std::min(o.sample_len, room);

  Tensor logits_buf = Tensor::empty({n_hyp, nv}, DType::F32);
  Tensor scratch_buf = Tensor::empty({2, nv}, DType::F32);
  float* logits = logits_buf.data<float>();
  float* logprobs = scratch_buf.data<float>();
  float* sot_logits = logprobs + nv;
  // Beam search: token ids sorted by log-probability, one beam at a time.
  Tensor order_buf = beam ? Tensor::empty({nv}, DType::I32) : Tensor();

  for (int k = 0; k < n_hyp; ++k) model.truncate(k, 0);
  decode_prompt(model, 0, prompt, logits, sot_index, sot_logits);
  SearchResult result;
  result.temperature = o.temperature;
  log_softmax(sot_logits, nv, sot_logits);
  result.no_speech_prob = std::exp(sot_logits[rules.special.nospeech]);
  for (int k = 1; k < n_hyp; ++k) {
    model.copy_sequence(0, k);
    std::memcpy(logits + static_cast<size_t>(k) * nv, logits, sizeof(float) * nv);
  }

  std::mt19937_64 rng(o.seed);
  std::vector<Hypothesis> hyps(n_hyp);
  // Beam search: finished hypotheses by sequence (dict semantics), at most max_candidates.
  std::map<std::vector<int32_t>, Hypothesis> finished;
  const size_t max_candidates =
      static_cast<size_t>(std::max(1L, std::lround(o.beam_size * o.patience)));
  std::vector<int> seqs;
  std::vector<int32_t> feed;

  for (int step = 0; step < sample_len; ++step) {
    if (step > 0) {
      seqs.clear();
      feed.clear();
      for (int k = 0; k < n_hyp; ++k)
        if (beam || hyps[k].tokens.back() != eot) {
          seqs.push_back(k);
          feed.push_back(hyps[k].tokens.back());
        }
      if (seqs.empty()) break;
      model.decode_batch(seqs, feed, logits);
      // decode_batch packs rows for the active sequences; spread them back to their slots.
      for (int r = static_cast<int>(seqs.size()) - 1; r >= 0; --r)
        if (seqs[r] != r)
          std::memcpy(logits + static_cast<size_t>(seqs[r]) * nv,
                      logits + static_cast<size_t>(r) * nv, sizeof(float) * nv);
    }
    if (!beam) {
      bool all_done = true;
      for (int k = 0; k < n_hyp; ++k) {
        Hypothesis& h = hyps[k];
        if (!h.tokens.empty() && h.tokens.back() == eot) continue;
        float* row = logits + static_cast<size_t>(k) * nv;
        apply_logit_rules(rules, h.tokens, row);
        log_softmax(row, nv, logprobs);
        const int tok = o.temperature > 0 ? sample(row, nv, o.temperature, rng) : argmax(row, nv);
        h.tokens.push_back(tok);
        h.probs.push_back(std::exp(logprobs[tok]));
        h.logprob += logprobs[tok];
        all_done = all_done && tok == eot;
      }
      if (all_done) break;
      continue;
    }
    // Beam step: every beam proposes its beam_size + 1 best tokens; the best beam_size unfinished
    // candidates continue, finished ones are collected.
    struct Candidate {
      Hypothesis hyp;
      int source;
    };
    std::vector<Candidate> cands;
    std::map<std::vector<int32_t>, size_t> index;
    for (int k = 0; k < n_hyp; ++k) {
      float* row = logits + static_cast<size_t>(k) * nv;
      apply_logit_rules(rules, hyps[k].tokens, row);
      log_softmax(row, nv, logprobs);
      const int n_top = std::min(o.beam_size + 1, nv);
      int32_t* order = order_buf.data<int32_t>();
      for (int i = 0; i < nv; ++i) order[i] = i;
      std::partial_sort(order, order + n_top, order + nv, [&](int a, int b) {
        return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
      });
      for (int j = 0; j < n_top; ++j) {
        const int tok = order[j];
        Hypothesis h = hyps[k];
        h.tokens.push_back(tok);
        h.probs.push_back(std::exp(logprobs[tok]));
        h.logprob += logprobs[tok];
        auto [it, fresh] = index.emplace(h.tokens, cands.size());
        if (fresh)
          cands.push_back({std::move(h), k});
        else
          cands[it->second] = {std::move(h), k};  // a later duplicate overwrites, as a dict
      }
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      return a.hyp.logprob > b.hyp.logprob;
    });
    std::vector<Hypothesis> next;
    std::vector<int> sources;
    std::vector<const Candidate*> newly_finished;
    for (const Candidate& c : cands) {
      if (c.hyp.tokens.back() == eot) {
        newly_finished.push_back(&c);
      } else if (static_cast<int>(next.size()) < n_hyp) {
        next.push_back(c.hyp);
        sources.push_back(c.source);
      }
      if (static_cast<int>(next.size()) == n_hyp) break;
    }
    for (const Candidate* c : newly_finished) {
      if (finished.size() >= max_candidates) break;
      finished.emplace(c->hyp.tokens, c->hyp);
    }
    check(static_cast<int>(next.size()) == n_hyp, "[whisper decode] beam search kept ", next.size(),
          " of ", n_hyp, " beams");
    reorder_sequences(model, sources, n_hyp);
    hyps = std::move(next);
    if (finished.size() >= max_candidates) break;
  }

  std::vector<Hypothesis> candidates;
  if (beam) {
    if (static_cast<int>(finished.size()) < n_hyp) {
      std::vector<int> order(static_cast<size_t>(n_hyp));
      for (int k = 0; k < n_hyp; ++k) order[k] = k;
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return hyps[a].logprob > hyps[b].logprob; });
      for (int k : order) {
        Hypothesis h = hyps[k];
        h.tokens.push_back(eot);
        h.probs.push_back(0.f);
        finished.emplace(h.tokens, h);
        if (static_cast<int>(finished.size()) >= n_hyp) break;
      }
    }
    for (auto& [seq, h] : finished) candidates.push_back(h);
  } else {
    candidates = hyps;
  }
  const Hypothesis* best = nullptr;
  double best_score = -std::numeric_limits<double>::infinity();
  for (const Hypothesis& h : candidates) {
    const double s = rank_score(h.logprob, content_length(h.tokens, eot), o.length_penalty);
    if (!best || s > best_score) {
      best = &h;
      best_score = s;
    }
  }
  const size_t len = content_length(best->tokens, eot);
  result.tokens.assign(best->tokens.begin(),
                       best->tokens.begin() + static_cast<std::ptrdiff_t>(len));
  result.token_probs.assign(best->probs.begin(),
                            best->probs.begin() + static_cast<std::ptrdiff_t>(len));
  result.sum_logprob = best->logprob;
  result.avg_logprob = best->logprob / static_cast<double>(len + 1);
  return result;
}

}  // namespace eight::whisper
