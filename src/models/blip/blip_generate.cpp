// Greedy and beam search as transformers' generate runs them for BLIP's decoder (transformers
// 5.x GenerationMixin._beam_search): log-softmax scores (float32) accumulated per beam; each step
// keeps the 2 * beams best continuations; those ending in [SEP] (or reaching max_length) among
// the first `beams` become finished hypotheses scored sum / generated_length ^ length_penalty;
// the rest continue; the search stops when no running beam can beat the worst finished one.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "models/blip/blip_internal.h"

namespace eight::blip {
namespace {

constexpr float kNeg = -1.0e9f;  // transformers' "impossible" score

// log_softmax of one row of logits, in float as torch computes it; [SEP] masked while the
// sequence is shorter than min_length (MinLengthLogitsProcessor).
void log_softmax_row(const float* logits, int64_t V, bool mask_eos, int32_t eos, float* out) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < V; ++j) mx = std::max(mx, logits[j]);
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(logits[j] - mx));
  const auto lse = static_cast<float>(std::log(sum));
  for (int64_t j = 0; j < V; ++j) out[j] = logits[j] - mx - lse;
  if (mask_eos) out[eos] = -INFINITY;
}

// Indices of the k largest values, largest first (ties: lower index first, as torch.topk on CPU
// returns them in practice).
std::vector<int64_t> top_k(const std::vector<float>& x, int64_t k) {
  std::vector<int64_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, static_cast<int64_t>(x.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

std::vector<int32_t> greedy(const Model::Impl& m, const std::vector<int32_t>& prompt,
                            const CrossKV& cross, const GenerationConfig& g, ThreadPool& pool) {
  const int32_t eos = m.config.text.sep_token_id;
  const int64_t V = m.config.text.vocab_size;
  std::vector<int32_t> seq = prompt;
  DecoderCache cache(m.config.text, 1, g.max_length);
  Tensor logits;
  for (size_t i = 0; i < prompt.size(); ++i)
    logits = decoder_step(m, {prompt[i]}, static_cast<int64_t>(i), cache, cross, pool);
  while (static_cast<int64_t>(seq.size()) < g.max_length) {
    const float* l = logits.data<float>();
    const bool mask = static_cast<int64_t>(seq.size()) < g.min_length;
    int64_t best = -1;
    for (int64_t j = 0; j < V; ++j)
      if (!(mask && j == eos) && (best < 0 || l[j] > l[best])) best = j;
    seq.push_back(static_cast<int32_t>(best));
    if (best == eos || static_cast<int64_t>(seq.size()) >= g.max_length) break;
    logits =
        decoder_step(m, {seq.back()}, static_cast<int64_t>(seq.size()) - 1, cache, cross, pool);
  }
  return seq;
}

std::vector<int32_t> beam_search(const Model::Impl& m, const std::vector<int32_t>& prompt,
                                 const CrossKV& cross, const GenerationConfig& g,
                                 ThreadPool& pool) {
  const int32_t eos = m.config.text.sep_token_id;
  const int64_t V = m.config.text.vocab_size, nb = g.num_beams, keep = 2 * nb;
  const auto prompt_len = static_cast<int64_t>(prompt.size());
  const auto lp = static_cast<float>(g.length_penalty);
  std::vector<std::vector<int32_t>> running(static_cast<size_t>(nb), prompt), finished(running);
  std::vector<float> running_score(static_cast<size_t>(nb), kNeg);
  running_score[0] = 0;
  std::vector<float> finished_score(static_cast<size_t>(nb), kNeg);
  std::vector<bool> finished_done(static_cast<size_t>(nb), false);
  bool improvable = true;

  DecoderCache cache(m.config.text, nb, g.max_length);
  Tensor logits;
  for (int64_t i = 0; i < prompt_len; ++i)
    logits = decoder_step(m, std::vector<int32_t>(static_cast<size_t>(nb), prompt[i]), i, cache,
                          cross, pool);
  std::vector<float> scores(static_cast<size_t>(nb * V));
  for (int64_t cur = prompt_len; cur < g.max_length; ++cur) {
    for (int64_t b = 0; b < nb; ++b) {
      float* row = scores.data() + b * V;
      log_softmax_row(logits.data<float>() + b * V, V, cur < g.min_length, eos, row);
      for (int64_t j = 0; j < V; ++j) row[j] += running_score[b];
    }
    const std::vector<int64_t> top = top_k(scores, keep);
    std::vector<std::vector<int32_t>> cand_seq;
    std::vector<float> cand_score, cand_running;
    std::vector<bool> hits;
    std::vector<int> parent;
    for (int64_t i : top) {
      const int64_t b = i / V;
      const auto tok = static_cast<int32_t>(i % V);
      cand_seq.push_back(running[b]);
      cand_seq.back().push_back(tok);
      cand_score.push_back(scores[i]);
      parent.push_back(static_cast<int>(b));
      hits.push_back(tok == eos || cur + 1 >= g.max_length);
      cand_running.push_back(scores[i] + (hits.back() ? kNeg : 0.f));
    }
    // The next running beams: the best continuations that did not stop.
    const std::vector<int64_t> next = top_k(cand_running, nb);
    std::vector<int> parents;
    std::vector<std::vector<int32_t>> new_running;
    for (size_t j = 0; j < next.size(); ++j) {
      new_running.push_back(cand_seq[next[j]]);
      running_score[j] = cand_running[next[j]];
      parents.push_back(parent[next[j]]);
    }
    running = std::move(new_running);
    // Finished hypotheses: the first `nb` candidates that stopped, merged with those so far.
    const bool all_done =
        std::all_of(finished_done.begin(), finished_done.end(), [](bool x) { return x; });
    const float norm = std::pow(static_cast<float>(cur + 1 - prompt_len), lp);
    std::vector<float> merged_score = finished_score;
    std::vector<std::vector<int32_t>> merged_seq = finished;
    std::vector<bool> merged_done = finished_done;
    for (size_t i = 0; i < top.size(); ++i) {
      const bool just = hits[i] && static_cast<int64_t>(i) < nb;
      float s = cand_score[i] / norm;
      if (all_done && g.early_stopping) s += kNeg;
      if (!improvable) s += kNeg;
      if (!just) s += kNeg;
      merged_score.push_back(s);
      merged_seq.push_back(cand_seq[i]);
      merged_done.push_back(just);
    }
    const std::vector<int64_t> best = top_k(merged_score, nb);
    for (size_t j = 0; j < best.size(); ++j) {
      finished[j] = merged_seq[best[j]];
      finished_score[j] = merged_score[best[j]];
      finished_done[j] = merged_done[best[j]];
    }
    // Can a running beam still beat the worst finished hypothesis?
    const int64_t best_len = cur + 1 - prompt_len;
    const float best_possible = running_score[0] / std::pow(static_cast<float>(best_len), lp);
    const float worst = *std::min_element(finished_score.begin(), finished_score.end());
    bool any = false;
    for (int64_t j = 0; j < nb; ++j) any = any || best_possible > (finished_done[j] ? worst : kNeg);
    improvable = improvable && any;
    const bool now_all_done =
        std::all_of(finished_done.begin(), finished_done.end(), [](bool x) { return x; });
    const bool all_hit = std::all_of(hits.begin(), hits.end(), [](bool x) { return x; });
    if (!improvable || (now_all_done && g.early_stopping) || all_hit) break;
    cache.reorder(parents, cur);
    std::vector<int32_t> last;
    for (const auto& s : running) last.push_back(s.back());
    logits = decoder_step(m, last, cur, cache, cross, pool);
  }
  return finished[0];
}

}  // namespace

std::vector<int32_t> generate(const Model::Impl& m, const std::vector<int32_t>& prompt,
                              const CrossKV& cross, const GenerationConfig& g, ThreadPool& pool) {
  check(!prompt.empty(), "[blip] empty decoder prompt");
  check(g.max_length <= m.config.text.max_positions, "[blip] max_length ", g.max_length,
        " is past the decoder's ", m.config.text.max_positions, " positions");
  if (static_cast<int64_t>(prompt.size()) >= g.max_length) return prompt;
  return g.num_beams <= 1 ? greedy(m, prompt, cross, g, pool)
                          : beam_search(m, prompt, cross, g, pool);
}

}  // namespace eight::blip
