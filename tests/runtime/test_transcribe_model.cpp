// The transcription loop on a real (random-weight) Whisper model through WhisperState: beam
// search, best-of sampling, fallback, word and token timestamps, a model with a short audio
// context, and a file whose vocabulary is incomplete (only placeholders to print). Checks only
// what does not depend on model quality: structure, order, bounds and determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "models/whisper_random_model.h"
#include "runtime/speech/transcribe.h"
#include "test_util.h"

namespace eight {
namespace {

std::vector<float> chirps(double seconds) {
  std::vector<float> s(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < s.size(); ++i) {
    const double t = static_cast<double>(i) / 16000;
    s[i] = static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * (300 + 200 * t) * t) *
                              (std::fmod(t, 2.0) < 1.2 ? 1.0 : 0.0));
  }
  return s;
}

void check_result(const whisper::TranscribeResult& r, const whisper::SpecialTokens& sp) {
  double last_end = 0;
  for (size_t i = 0; i < r.segments.size(); ++i) {
    const auto& s = r.segments[i];
    EXPECT_EQ(s.id, static_cast<int>(i));
    EXPECT_LE(0, s.start);
    EXPECT_LE(s.start, s.end);
    EXPECT_LE(s.end, r.duration + 1e-9);
    EXPECT_EQ(s.tokens.size(), s.token_probs.size());
    if (s.tokens.empty()) continue;
    EXPECT_GE(s.start, last_end - 1e-9);
    last_end = s.end;
    EXPECT_GE(s.tokens[0], sp.timestamp_begin);  // segments open with a timestamp
    for (int32_t t : s.tokens) EXPECT_TRUE(t < sp.eot || t >= sp.timestamp_begin) << t;
    for (const auto& w : s.words) {
      EXPECT_LE(0, w.start);
      EXPECT_LE(w.start, w.end);
      EXPECT_LE(w.end, r.duration + 1e-9);
    }
    size_t text_tokens = 0;
    for (int32_t t : s.tokens) text_tokens += t < sp.eot;
    if (!s.token_times.empty()) {
      EXPECT_EQ(s.token_times.size(), text_tokens);
    }
  }
}

TEST(TranscribeModel, BeamBestOfFallbackAndWords) {
  testing::TempDir dir;
  const std::string path = dir.file("w.bin");
  testing::write_random_whisper({}, path);
  auto model = whisper::Model::load(path);
  ThreadPool pool(1);
  whisper::Transcriber t(model, pool);
  whisper::TranscribeOptions o;
  o.language = "en";
  o.beam_size = 3;
  o.best_of = 2;
  o.temperatures = {0.0f, 0.6f};
  o.max_tokens_per_window = 12;
  o.word_timestamps = true;
  const auto audio = chirps(8);
  int segments_seen = 0;
  double progress = 0;
  const auto r = t.run(audio, o,
                       {.on_segment = [&](const whisper::Segment&) { ++segments_seen; },
                        .on_progress = [&](double done, double) { progress = done; }});
  EXPECT_EQ(segments_seen, static_cast<int>(r.segments.size()));
  EXPECT_DOUBLE_EQ(progress, 8.0);
  EXPECT_GE(r.windows, 1);
  check_result(r, model->special());
  // Same input, same options: the same transcript (sampling is seeded per window).
  const auto again = t.run(audio, o);
  ASSERT_EQ(again.segments.size(), r.segments.size());
  for (size_t i = 0; i < r.segments.size(); ++i)
    EXPECT_EQ(again.segments[i].tokens, r.segments[i].tokens);
}

TEST(TranscribeModel, ShortAudioContextAndLanguageDetection) {
  testing::TempDir dir;
  const std::string path = dir.file("w.bin");
  testing::write_random_whisper({.n_audio_ctx = 100, .n_text_ctx = 64}, path);
  auto model = whisper::Model::load(path);
  ThreadPool pool(1);
  whisper::Transcriber t(model, pool);
  whisper::TranscribeOptions o;
  o.beam_size = 1;
  o.temperatures = {0.0f};
  const auto r = t.run(chirps(40), o);
  EXPECT_FALSE(r.language.empty());
  EXPECT_GE(r.windows, 2);  // 40 s needs two windows at least
  check_result(r, model->special());
  o.language = "xx";
  EXPECT_THROW(t.run(chirps(1), o), Error);
}

}  // namespace
}  // namespace eight
