// The Whisper decoding loop against a scripted model (tests/runtime/whisper_fake.h): window
// seeking by timestamp pairs, segments that cover the loud parts of a long file, language
// detection, greedy / beam / best-of search, beam cache reordering, VAD, and word alignment.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "runtime/speech/transcribe.h"
#include "runtime/speech/transcribe_search.h"
#include "runtime/speech/transcribe_vad.h"
#include "test_util.h"
#include "whisper_fake.h"

namespace eight {
namespace {

using testing::fake_tokenizer;
using testing::kFakeVocab;
using testing::kHello;
using testing::ScriptedModel;

// A crude 80-band filter bank over the 201 STFT bins: enough for loud-vs-silent frames.
Tensor test_filters() {
  Tensor f = Tensor::zeros({80, 201}, DType::F32);
  for (int m = 0; m < 80; ++m)
    for (int k = 2 * m; k < 2 * m + 4 && k < 201; ++k) f.data<float>()[m * 201 + k] = 1.f;
  return f;
}

// Silence with 1 kHz tone bursts at the given [start, end) seconds.
std::vector<float> bursts(double seconds, const std::vector<std::pair<double, double>>& on) {
  std::vector<float> s(static_cast<size_t>(seconds * 16000), 0.f);
  for (auto [b, e] : on)
    for (size_t i = static_cast<size_t>(b * 16000);
         i < static_cast<size_t>(e * 16000) && i < s.size(); ++i)
      s[i] = 0.5f * static_cast<float>(std::sin(2 * std::numbers::pi * 1000.0 * i / 16000.0));
  return s;
}

whisper::TranscribeOptions fake_options() {
  whisper::TranscribeOptions o;
  o.language = "en";
  o.beam_size = 0;
  o.temperatures = {0.f};
  o.max_initial_timestamp = 30.f;  // the fake starts speaking wherever the window's sound is
  o.logprob_threshold = NAN;
  o.compression_ratio_threshold = 0;
  return o;
}

TEST(TranscribeLoop, SegmentsFollowTheSoundAcrossWindows) {
  const std::vector<std::pair<double, double>> on = {{1, 4},   {10, 12}, {28.5, 33},
                                                     {50, 52}, {70, 74}, {95, 99.5}};
  const auto audio = bursts(100, on);
  ScriptedModel model(2);
  std::vector<double> progress;
  int callbacks = 0;
  whisper::TranscribeCallbacks cb;
  cb.on_segment = [&](const whisper::Segment&) { ++callbacks; };
  cb.on_progress = [&](double done, double total) {
    EXPECT_DOUBLE_EQ(total, 100.0);
    progress.push_back(done);
  };
  const auto r = whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio,
                                             fake_options(), cb, {});
  std::vector<const whisper::Segment*> spoken;
  for (const auto& s : r.segments)
    if (!s.text.empty()) spoken.push_back(&s);
  ASSERT_EQ(spoken.size(), on.size()) << r.text;
  EXPECT_EQ(callbacks, static_cast<int>(r.segments.size()));
  double last_end = 0;
  for (size_t i = 0; i < on.size(); ++i) {
    const auto& s = *spoken[i];
    EXPECT_EQ(s.text, " hello");
    // Loudness edges blur by a frame or two of the 25 ms STFT window.
    EXPECT_NEAR(s.start, on[i].first, 0.06) << i;
    EXPECT_NEAR(s.end, on[i].second, 0.06) << i;
    EXPECT_GE(s.start, last_end);
    EXPECT_LE(s.end, r.duration);
    last_end = s.end;
  }
  for (size_t i = 1; i < r.segments.size(); ++i) EXPECT_EQ(r.segments[i].id, static_cast<int>(i));
  ASSERT_FALSE(progress.empty());
  EXPECT_DOUBLE_EQ(progress.back(), 100.0);
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GE(progress[i], progress[i - 1]);
  EXPECT_EQ(r.language, "en");
  // The burst cut at 30 s is decoded again from the last complete pair (12 s), not skipped.
  EXPECT_GE(r.windows, 5);
}

TEST(TranscribeLoop, DetectsLanguageOnTheFirstWindow) {
  const auto audio = bursts(20, {{2, 3}});
  ScriptedModel model(2);
  const auto sp = whisper::special_tokens_for(kFakeVocab);
  model.detected_language_token = sp.language(2);  // "de"
  auto o = fake_options();
  o.language = "auto";
  const auto r =
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {});
  EXPECT_EQ(r.language, "de");
  // The detection pass encodes the padded first 30 s; the shorter window is encoded again.
  EXPECT_EQ(model.encodes, 2);
  EXPECT_EQ(model.history(0)[1], sp.language(2));
}

TEST(TranscribeLoop, NoSpeechWindowsAreSkipped) {
  const auto audio = bursts(40, {{2, 3}, {35, 36}});
  ScriptedModel model(2);
  model.nospeech_logit = 30.f;  // no_speech_prob ~ 1
  auto o = fake_options();
  o.logprob_threshold = 0.5f;  // every window counts as unlikely, so the silence rule applies
  const auto r =
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {});
  EXPECT_TRUE(r.segments.empty());
  EXPECT_EQ(r.windows, 2);  // each skipped window advances a whole window
  EXPECT_EQ(r.fallbacks, 0);
  o.no_speech_threshold = 0;  // disabled: the same windows give text
  const auto kept =
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {});
  EXPECT_FALSE(kept.text.empty());
}

TEST(TranscribeLoop, SilenceIsSkippedByVad) {
  const auto audio = bursts(90, {{5, 7}, {80, 82}});
  ScriptedModel model(2);
  auto o = fake_options();
  o.vad = true;
  const auto r =
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {});
  int spoken = 0;
  for (const auto& s : r.segments) spoken += !s.text.empty();
  EXPECT_EQ(spoken, 2);
  EXPECT_EQ(r.windows, 2);  // one per speech region; the 70 s between is never decoded
  ASSERT_GE(r.segments.size(), 2u);
  EXPECT_NEAR(r.segments.back().start, 80, 0.06);
}

TEST(TranscribeLoop, VadRegions) {
  const auto audio = bursts(30, {{1, 2}, {2.5, 3}, {10, 11}});
  const auto regions = whisper::detect_speech(audio, 16000, {.min_silence_s = 1.0, .pad_s = 0.1});
  ASSERT_EQ(regions.size(), 2u);  // the 0.5 s gap is bridged, the 7 s one is not
  EXPECT_NEAR(regions[0].begin / 16000.0, 0.9, 0.03);
  EXPECT_NEAR(regions[0].end / 16000.0, 3.1, 0.03);
  EXPECT_NEAR(regions[1].begin / 16000.0, 9.9, 0.03);
  EXPECT_TRUE(whisper::detect_speech(std::vector<float>(16000, 0.f), 16000).empty());
}

TEST(TranscribeLoop, WordTimestampsFromAlignment) {
  const auto audio = bursts(10, {{1, 4}});
  ScriptedModel model(2);
  auto o = fake_options();
  o.word_timestamps = true;
  const auto r = whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {},
                                             {{0, 0}, {0, 1}});
  ASSERT_FALSE(r.segments.empty());
  const auto& s = r.segments[0];
  ASSERT_EQ(s.words.size(), 1u);
  EXPECT_EQ(s.words[0].word, " hello");
  // DTW gives [0, 4.0] s; OpenAI's pause rule then clips a first word longer than twice the
  // median duration (0.7 s) to end - 1.4 s, and the segment takes the word's edges.
  EXPECT_NEAR(s.words[0].end, 4.0, 1e-9);
  EXPECT_NEAR(s.words[0].start, 2.6, 1e-9);
  EXPECT_DOUBLE_EQ(s.start, s.words[0].start);
  EXPECT_DOUBLE_EQ(s.end, s.words[0].end);
  EXPECT_GT(s.words[0].probability, 0.99);
  ASSERT_EQ(s.token_times.size(), 1u);  // token level: straight from the alignment
  EXPECT_EQ(s.token_times[0].id, kHello);
  EXPECT_DOUBLE_EQ(s.token_times[0].start, 0.0);
  EXPECT_DOUBLE_EQ(s.token_times[0].end, 4.0);
}

TEST(TranscribeSearch, BeamSearchFindsTheBetterSequence) {
  // Greedy takes token 300 (p = 0.6) into a flat distribution; beam search finds 301 (p = 0.3)
  // followed by a certain <|endoftext|>.
  class Tree : public ScriptedModel {
   public:
    void decode(int seq, std::span<const int32_t> tokens, float* logits,
                whisper::CrossAttentionCapture*) override {
      auto& h = hist[seq];
      const auto sp = whisper::special_tokens_for(kFakeVocab);
      for (size_t i = 0; i < tokens.size(); ++i) {
        h.push_back(tokens[i]);
        float* out = logits + i * kFakeVocab;
        std::fill(out, out + kFakeVocab, 0.f);
        if (h.back() == sp.notimestamps) {
          // A normalized distribution: 0.6, 0.3 and 0.1 spread over everything else.
          std::fill(out, out + kFakeVocab, std::log(0.1f / (kFakeVocab - 2)));
          out[300] = std::log(0.6f);
          out[301] = std::log(0.3f);
        } else if (h.back() == 301) {
          out[sp.eot] = 30.f;
        }
      }
    }
    void decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens,
                      float* logits) override {
      for (size_t i = 0; i < seqs.size(); ++i)
        decode(seqs[i], tokens.subspan(i, 1), logits + i * kFakeVocab, nullptr);
    }
    void truncate(int seq, int n) override { hist[seq].resize(static_cast<size_t>(n)); }
    void copy_sequence(int src, int dst) override { hist[dst] = hist[src]; }
    std::map<int, std::vector<int32_t>> hist;
  } model;
  const auto sp = whisper::special_tokens_for(kFakeVocab);
  auto rules = whisper::LogitRules::defaults(fake_tokenizer(), kFakeVocab, false, false, false, 1);
  const std::vector<int32_t> prompt = {sp.sot, sp.language(0), sp.transcribe, sp.notimestamps};
  const auto greedy = whisper::decode_window(model, rules, prompt, 0, {.sample_len = 4});
  ASSERT_FALSE(greedy.tokens.empty());
  EXPECT_EQ(greedy.tokens[0], 300);
  const auto beam =
      whisper::decode_window(model, rules, prompt, 0, {.beam_size = 3, .sample_len = 4});
  ASSERT_EQ(beam.tokens.size(), 1u);
  EXPECT_EQ(beam.tokens[0], 301);
  EXPECT_NEAR(beam.sum_logprob, std::log(0.3), 1e-3);
  EXPECT_NEAR(beam.avg_logprob, std::log(0.3) / 2, 1e-3);
  EXPECT_NEAR(beam.token_probs[0], 0.3, 1e-3);
  // Sampling at a temperature draws from the same distribution; best-of keeps the best sample.
  const auto sampled = whisper::decode_window(
      model, rules, prompt, 0, {.temperature = 1.0f, .best_of = 5, .sample_len = 4, .seed = 3});
  EXPECT_FALSE(sampled.tokens.empty());
  EXPECT_EQ(sampled.temperature, 1.0f);
}

TEST(TranscribeSearch, ReorderSequencesHandlesCycles) {
  ScriptedModel model(6);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int> src(5);
    for (auto& s : src) s = static_cast<int>(testing::rng()() % 5);
    if (trial % 3 == 0) src = {1, 2, 3, 4, 0};  // a pure cycle
    for (int k = 0; k < 5; ++k) {
      model.truncate(k, 0);
      const int32_t t = 1000 + k;
      model.decode(k, std::span<const int32_t>(&t, 1), std::vector<float>(kFakeVocab).data(),
                   nullptr);
    }
    whisper::reorder_sequences(model, src, 5);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(model.history(k)[0], 1000 + src[k]) << trial;
  }
}

TEST(TranscribeLoop, BadOptionsAreErrors) {
  ScriptedModel model(2);
  const auto audio = bursts(2, {});
  auto o = fake_options();
  o.language = "xx";
  EXPECT_THROW(
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {}),
      Error);
  o = fake_options();
  o.beam_size = 5;  // needs 6 sequences, the state has 2
  EXPECT_THROW(whisper::transcribe_samples(model, fake_tokenizer(), test_filters(),
                                           bursts(3, {{1, 2}}), o, {}, {}),
               Error);
  o = fake_options();
  o.temperatures = {};
  EXPECT_THROW(
      whisper::transcribe_samples(model, fake_tokenizer(), test_filters(), audio, o, {}, {}),
      Error);
}

TEST(TranscribeLoop, CompressionRatio) {
  EXPECT_EQ(whisper::compression_ratio(""), 0.0);
  std::string rep;
  for (int i = 0; i < 50; ++i) rep += " the same words again";
  EXPECT_GT(whisper::compression_ratio(rep), 2.4);
  EXPECT_LT(whisper::compression_ratio(" And so my fellow Americans, ask not."), 2.4);
}

}  // namespace
}  // namespace eight
