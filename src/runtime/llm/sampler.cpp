#include "runtime/llm/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace eight {

Sampler::Sampler(const SamplerParams& p, int64_t n_vocab)
    : params_(p),
      n_vocab_(n_vocab),
      candidates_(static_cast<size_t>(n_vocab) * sizeof(Candidate)),
      counts_(static_cast<size_t>(n_vocab) * sizeof(int32_t), /*zero=*/true),
      history_(static_cast<size_t>(std::max(p.penalty_last_n, 1)) * sizeof(int32_t)),
      rng_(p.seed) {
  check(n_vocab > 0, "[sampler] vocabulary size must be positive, got ", n_vocab);
  check(std::isfinite(p.temperature) && std::isfinite(p.top_p) && std::isfinite(p.min_p) &&
            std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0,
        "[sampler] temperature ", p.temperature, ", top_p ", p.top_p, ", min_p ", p.min_p,
        " and repeat_penalty ", p.repeat_penalty, " must be finite (repeat_penalty > 0)");
  check(p.penalty_last_n >= 0, "[sampler] penalty_last_n must be ≥ 0, got ", p.penalty_last_n);
}

void Sampler::reset() {
  std::memset(counts_.data(), 0, counts_.size());
  history_len_ = history_head_ = 0;
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (params_.penalty_last_n <= 0 || token < 0 || token >= n_vocab_) return;
  int32_t* hist = history_.as<int32_t>();
  int32_t* counts = counts_.as<int32_t>();
  const int64_t cap = params_.penalty_last_n;
  if (history_len_ == cap) {  // evict the oldest
    --counts[hist[history_head_]];
  } else {
    ++history_len_;
  }
  hist[history_head_] = token;
  ++counts[token];
  history_head_ = (history_head_ + 1) % cap;
}

int64_t Sampler::apply_penalties(const float* logits, const uint32_t* allowed) {
  Candidate* c = candidates_.as<Candidate>();
  const int32_t* counts = counts_.as<int32_t>();
  const bool penalize =
      history_len_ > 0 && (params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                           params_.frequency_penalty != 0.0f);
  int64_t n = 0;
  for (int64_t i = 0; i < n_vocab_; ++i) {
    if (allowed && !((allowed[i >> 5] >> (i & 31)) & 1u)) continue;
    float l = logits[i];
    if (penalize && counts[i] > 0) {
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
      l -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(counts[i]);
    }
    c[n++] = {std::isnan(l) ? -INFINITY : l, static_cast<int32_t>(i)};
  }
  check(n > 0, "[sampler] the grammar allows no token");
  return n;
}

int32_t Sampler::sample(const float* logits, const uint32_t* allowed) {
  int64_t n = apply_penalties(logits, allowed);
  Candidate* c = candidates_.as<Candidate>();
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (params_.temperature <= 0.0f)
    return std::min_element(c, c + n, by_logit)->id;  // greedy; ties go to the lower id

  // top-k: the k best (in no particular order yet).
  if (params_.top_k > 0 && params_.top_k < n) {
    std::nth_element(c, c + params_.top_k, c + n, by_logit);
    n = params_.top_k;
  }
  const float mx = std::min_element(c, c + n, by_logit)->logit;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(c[i].logit - mx));
  auto prob = [&](int64_t i) { return std::exp(static_cast<double>(c[i].logit - mx)) / sum; };

  // top-p: the smallest prefix, by probability, whose mass reaches p. Only that prefix needs
  // sorting, so sort a growing head (64, 512, ... candidates) until it holds the mass: with a
  // 32k-152k vocabulary a full sort per token would cost milliseconds on every decode step.
  if (params_.top_p < 1.0f) {
    int64_t sorted = 0, keep = n;
    double cum = 0;
    for (int64_t head = std::min<int64_t>(64, n);; head = std::min<int64_t>(head * 8, n)) {
      std::partial_sort(c + sorted, c + head, c + n, by_logit);
      for (; sorted < head; ++sorted) {
        cum += prob(sorted);
        if (cum >= params_.top_p) break;
      }
      if (sorted < head) {
        keep = sorted + 1;
        break;
      }
      if (head == n) break;
    }
    n = std::max<int64_t>(keep, 1);
  }
  // min-p: tokens at least min_p times as likely as the best (kept in their current order).
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p / sum;  // p_max = exp(mx - mx) / sum
    n = std::partition(c, c + n,
                       [&](const Candidate& x) {
                         return std::exp(static_cast<double>(x.logit - mx)) / sum >= floor;
                       }) -
        c;
    n = std::max<int64_t>(n, 1);
  }
  // Temperature, then a draw.
  const double inv_t = 1.0 / params_.temperature;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += std::exp((c[i].logit - mx) * inv_t);
  // 53 random bits → [0, 1): the same on every platform, unlike std::uniform_real_distribution.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc += std::exp((c[i].logit - mx) * inv_t);
    if (u < acc) return c[i].id;
  }
  return c[n - 1].id;
}

}  // namespace eight
