// MAGNeT masked decoding (see generate.h).
#include "models/magnet/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace eight::magnet {

float mask_probability(int step, int steps) {
  // torch.linspace(0, 1, steps) in float32 fills the first half from the start and the second
  // from the end; then cos(u · π · 0.5) in float32.
  float u = 0;
  if (steps > 1) {
    const float delta = 1.0f / static_cast<float>(steps - 1);
    u = step < steps / 2 ? delta * static_cast<float>(step)
                         : 1.0f - delta * static_cast<float>(steps - 1 - step);
  }
  const float phase = u * static_cast<float>(M_PI) * 0.5f;
  return std::cos(phase);
}

int64_t masked_spans(float mask_p, int64_t n_spans) {
  return std::max<int64_t>(static_cast<int64_t>(mask_p * static_cast<float>(n_spans)), 1);
}

float cfg_coefficient(float mask_p, float max_cfg, float min_cfg) {
  const double p = mask_p;
  return static_cast<float>(p * max_cfg + (1 - p) * min_cfg);
}

float temperature(float temp, int step, int steps, bool anneal) {
  if (!anneal) return temp;
  return static_cast<float>(static_cast<double>(temp) * (steps - 1 - step) / steps);
}

std::vector<int64_t> top_spans(const std::vector<float>& scores, int64_t k) {
  std::vector<int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, static_cast<int64_t>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    const float sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
    return sa != sb ? sa > sb : a < b;
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

int64_t sample_top_p(const float* probs, int64_t n, float top_p, double u,
                     std::vector<std::pair<float, int32_t>>& s) {
  s.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = {probs[i], static_cast<int32_t>(i)};
  std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  // Keep token j while the mass before it is at most p (the first always stays).
  size_t keep = s.size();
  if (top_p > 0) {
    double before = 0;
    for (size_t j = 0; j < s.size(); ++j) {
      if (before > top_p) {
        keep = j;
        break;
      }
      before += s[j].first;
    }
  }
  double total = 0;
  for (size_t j = 0; j < keep; ++j) total += s[j].first;
  double target = u * total, acc = 0;
  for (size_t j = 0; j < keep; ++j) {
    acc += s[j].first;
    if (target < acc) return s[j].second;
  }
  return s[keep - 1].second;
}

double uniform(uint64_t seed, uint64_t index) {
  // splitmix64 of (seed, index): a counter-based stream, independent of the thread order.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (index + 1) * 0xD1B54A32D192ED03ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

Tensor generate(const LM& lm, const Tensor& cond, int64_t frames, const GenerateOptions& opt,
                ThreadPool& pool) {
  const Config& c = lm.config();
  const int64_t K = c.n_q, span = c.span_len, card = c.card;
  check(static_cast<int64_t>(opt.steps.size()) == K, "[magnet] ", opt.steps.size(),
        " decoding step counts for ", K, " codebooks");
  for (int s : opt.steps) check(s >= 1 && s <= 1000, "[magnet] decoding steps ", s, " (1..1000)");
  check(std::isfinite(opt.temp) && opt.temp >= 0 && std::isfinite(opt.max_cfg) &&
            std::isfinite(opt.min_cfg) && opt.top_p >= 0 && opt.top_p <= 1,
        "[magnet] temperature ", opt.temp, ", cfg ", opt.max_cfg, "/", opt.min_cfg, ", top-p ",
        opt.top_p);
  const int64_t n_spans = frames / span, T = n_spans * span;
  check(n_spans >= 1 && frames <= (int64_t{1} << 20), "[magnet] ", frames,
        " frames: at least one span of ", span, " needed");
  const int total = std::accumulate(opt.steps.begin(), opt.steps.end(), 0);

  // Batch of two: the condition and the null condition, the same codes (CFG in one pass).
  Tensor codes = Tensor::empty({2, K, T}, DType::I32);
  std::fill(codes.data<int32_t>(), codes.data<int32_t>() + codes.numel(),
            static_cast<int32_t>(card));
  const std::vector<Tensor> conds = {cond, Tensor()};
  constexpr float kKeep = -1e4f;  // audiocraft's DONT_REMASK_ME_SCORE
  std::vector<std::vector<std::pair<float, int32_t>>> scratch(static_cast<size_t>(pool.size()));
  std::vector<std::vector<float>> probs(static_cast<size_t>(pool.size()),
                                        std::vector<float>(static_cast<size_t>(card)));
  int done = 0;
  for (int64_t stage = 0; stage < K; ++stage) {
    const int n = opt.steps[static_cast<size_t>(stage)];
    std::vector<float> scores(static_cast<size_t>(n_spans), 0.f), sampled_p(static_cast<size_t>(T));
    std::vector<uint8_t> span_masked(static_cast<size_t>(n_spans));
    std::vector<int32_t> seq(static_cast<size_t>(T), static_cast<int32_t>(card));
    for (int step = 0; step < n; ++step) {
      const float mask_p = mask_probability(step, n);
      std::fill(span_masked.begin(), span_masked.end(), 0);
      for (int64_t j : top_spans(scores, masked_spans(mask_p, n_spans))) {
        span_masked[static_cast<size_t>(j)] = 1;
        std::fill_n(seq.begin() + j * span, span, static_cast<int32_t>(card));
      }
      for (int64_t b = 0; b < 2; ++b)
        std::copy(seq.begin(), seq.end(), codes.data<int32_t>() + (b * K + stage) * T);
      const Tensor logits = lm.forward(codes, conds, stage, stage, pool);  // [2, 1, T, card]
      const float coef = cfg_coefficient(mask_p, opt.max_cfg, opt.min_cfg);
      const float inv_t = 1.0f / std::max(temperature(opt.temp, step, n, opt.anneal_temp), 1e-2f);
      const float* lc = logits.data<const float>();
      const float* lu = lc + T * card;
      const uint64_t draw0 = ((static_cast<uint64_t>(stage) << 16) + static_cast<uint64_t>(step))
                             << 32;
      pool.parallel_for(T, [&](int64_t t, int thread) {
        if (seq[static_cast<size_t>(t)] != card) return;  // kept: not resampled, not rescored
        std::vector<float>& p = probs[static_cast<size_t>(thread)];
        float mx = -INFINITY;
        for (int64_t v = 0; v < card; ++v) {
          const float u = lu[t * card + v], cl = lc[t * card + v];
          p[static_cast<size_t>(v)] = (u + (cl - u) * coef) * inv_t;
          mx = std::max(mx, p[static_cast<size_t>(v)]);
        }
        float sum = 0;
        for (float& x : p) sum += x = std::exp(x - mx);
        for (float& x : p) x /= sum;
        // argmax of the probabilities is argmax of the logits (first maximum, as torch.argmax)
        const int64_t tok = opt.sampling
                                ? sample_top_p(p.data(), card, opt.top_p,
                                               uniform(opt.seed, draw0 + static_cast<uint64_t>(t)),
                                               scratch[static_cast<size_t>(thread)])
                                : std::max_element(p.begin(), p.end()) - p.begin();
        sampled_p[static_cast<size_t>(t)] = p[static_cast<size_t>(tok)];
        seq[static_cast<size_t>(t)] = static_cast<int32_t>(tok);
      });
      for (int64_t j = 0; j < n_spans; ++j) {
        if (!span_masked[static_cast<size_t>(j)]) {
          scores[static_cast<size_t>(j)] = kKeep;
          continue;
        }
        float best = 0;
        for (int64_t i = 0; i < span; ++i)
          best = std::max(best, sampled_p[static_cast<size_t>(j * span + i)]);
        scores[static_cast<size_t>(j)] = 1 - best;
      }
      for (int64_t b = 0; b < 2; ++b)
        std::copy(seq.begin(), seq.end(), codes.data<int32_t>() + (b * K + stage) * T);
      ++done;
      if (opt.progress) opt.progress(static_cast<int>(stage), step, done, total);
    }
  }
  return codes.select(0, 0).contiguous();
}

}  // namespace eight::magnet
