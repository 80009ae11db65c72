// Sampler: greedy, top-k/top-p/min-p truncation, temperature, penalties, seeded reproducibility,
// and the stop-string matcher used while streaming.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/llm/generate.h"
#include "runtime/llm/sampler.h"
#include "test_util.h"

namespace eight {
namespace {

std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) ++h[s.sample(logits.data())];
  return h;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s({.temperature = 0.0f}, 5);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 2.0f, 0.0f}.data()), 1);
  EXPECT_EQ(s.sample(std::vector<float>{NAN, -5.0f, -4.0f, -6.0f, -4.5f}.data()), 2);
}

TEST(Sampler, AllowedMaskLimitsTheCandidates) {
  // Bits 0, 2 and 37 of a 40-token vocabulary: the best logit (token 5) is not allowed.
  std::vector<float> logits(40, 0.0f);
  logits[5] = 9.0f;
  logits[2] = 1.0f;
  logits[37] = 0.5f;
  const uint32_t allowed[2] = {0b101u, 1u << 5};
  Sampler greedy({.temperature = 0.0f}, 40);
  EXPECT_EQ(greedy.sample(logits.data(), allowed), 2);
  Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 3}, 40);
  std::map<int32_t, int> h;
  for (int i = 0; i < 3000; ++i) ++h[s.sample(logits.data(), allowed)];
  EXPECT_EQ(h.size(), 3u);
  EXPECT_GT(h[0], 0);
  EXPECT_GT(h[2], h[37]);  // p(2) : p(37) : p(0) = e^1 : e^0.5 : 1
  const uint32_t none[2] = {0, 0};
  EXPECT_THROW(s.sample(logits.data(), none), Error);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  const std::vector<float> logits{1.0f, 3.0f, 2.9f, 2.8f, 0.0f, -1.0f};
  Sampler s({.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .min_p = 0.0f, .seed = 7}, 6);
  const auto h = histogram(s, logits, 2000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(2));
}

TEST(Sampler, TopPAndMinPTruncate) {
  // Probabilities ~ [0.64, 0.24, 0.09, 0.03]: top_p 0.7 keeps two; min_p 0.3 keeps two as well
  // (0.09 < 0.3·0.64), min_p 0.1 keeps three.
  const std::vector<float> logits{3.0f, 2.0f, 1.0f, 0.0f};
  Sampler p({.temperature = 1.0f, .top_k = 0, .top_p = 0.7f, .min_p = 0.0f, .seed = 1}, 4);
  EXPECT_EQ(histogram(p, logits, 3000).size(), 2u);
  Sampler m({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.3f, .seed = 1}, 4);
  EXPECT_EQ(histogram(m, logits, 3000).size(), 2u);
  Sampler m2({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.1f, .seed = 1}, 4);
  EXPECT_EQ(histogram(m2, logits, 3000).size(), 3u);
}

TEST(Sampler, TemperatureMatchesSoftmaxFrequencies) {
  const std::vector<float> logits{1.0f, 0.0f};
  const float temp = 0.5f;
  Sampler s({.temperature = temp, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 3}, 2);
  const int n = 20000;
  const auto h = histogram(s, logits, n);
  const double p0 = 1.0 / (1.0 + std::exp(-1.0 / temp));  // 0.881
  EXPECT_NEAR(h.at(0) / static_cast<double>(n), p0, 0.015);
}

TEST(Sampler, SameSeedSameTokensAndResetReplays) {
  const auto logits = testing::random_floats(1000, -3, 3);
  const SamplerParams p{.temperature = 1.2f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42};
  Sampler a(p, 1000), b(p, 1000);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 50; ++i) ta.push_back(a.sample(logits.data()));
  for (int i = 0; i < 50; ++i) tb.push_back(b.sample(logits.data()));
  EXPECT_EQ(ta, tb);
  a.reset();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(logits.data()), ta[i]);
  Sampler c({.temperature = 1.2f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 43}, 1000);
  std::vector<int32_t> tc;
  for (int i = 0; i < 50; ++i) tc.push_back(c.sample(logits.data()));
  EXPECT_NE(ta, tc);
}

TEST(Sampler, PenaltiesDiscourageRecentTokens) {
  const std::vector<float> logits{2.0f, 1.9f, -1.0f};
  Sampler rep({.temperature = 0.0f, .repeat_penalty = 1.5f}, 3);
  rep.accept(0);  // 2.0 / 1.5 = 1.33 < 1.9
  EXPECT_EQ(rep.sample(logits.data()), 1);
  Sampler pres({.temperature = 0.0f, .presence_penalty = 0.2f}, 3);
  pres.accept(0);  // 1.8 < 1.9
  EXPECT_EQ(pres.sample(logits.data()), 1);
  Sampler freq({.temperature = 0.0f, .frequency_penalty = 0.06f}, 3);
  freq.accept(0);  // 1.94 > 1.9 after one, 1.88 < 1.9 after two
  EXPECT_EQ(freq.sample(logits.data()), 0);
  freq.accept(0);
  EXPECT_EQ(freq.sample(logits.data()), 1);
  // The window forgets: with last_n = 2, two other tokens push 0 out.
  Sampler win({.temperature = 0.0f, .repeat_penalty = 1.5f, .penalty_last_n = 2}, 3);
  win.accept(0);
  win.accept(2);
  win.accept(2);
  EXPECT_EQ(win.sample(logits.data()), 0);
}

TEST(Sampler, RejectsBadParameters) {
  EXPECT_THROW(Sampler({.temperature = NAN}, 10), Error);
  EXPECT_THROW(Sampler({.repeat_penalty = 0.0f}, 10), Error);
  EXPECT_THROW(Sampler({}, 0), Error);
}

TEST(StopMatcher, HoldsBackPartialMatchesAndCutsAtTheStop) {
  StopMatcher m({"</s>", "User:"});
  std::string out;
  out += m.push("Hello <");
  EXPECT_EQ(out, "Hello ");  // "<" might start "</s>"
  out += m.push("b> Us");
  EXPECT_EQ(out, "Hello <b> ");
  out += m.push("er: more");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out, "Hello <b> ");
  EXPECT_EQ(m.flush(), "");
  StopMatcher n({"##"});
  std::string o2 = n.push("a#");
  o2 += n.flush();
  EXPECT_EQ(o2, "a#");
  EXPECT_FALSE(n.stopped());
}

}  // namespace
}  // namespace eight
