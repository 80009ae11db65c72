// Pieces of the Whisper decoding algorithm checked against hand-computed cases: the timestamp
// and suppression rules, DTW, the median filter, word splitting and punctuation merging, the
// tokenizer (against OpenAI's token ids in the golden JSON) and the transcript writers.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>

#include "runtime/speech/transcribe_align.h"
#include "runtime/speech/transcribe_rules.h"
#include "runtime/speech/transcript_format.h"
#include "test_util.h"
#include "whisper_fake.h"

namespace eight {
namespace {

using testing::fake_tokenizer;
using testing::kFakeVocab;
using testing::kHello;
using testing::kWorld;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct RulesCase : ::testing::Test {
  whisper::SpecialTokens sp = whisper::special_tokens_for(kFakeVocab);
  whisper::LogitRules rules =
      whisper::LogitRules::defaults(fake_tokenizer(), kFakeVocab, true, true, true, 1.0f);
  std::vector<float> logits = std::vector<float>(kFakeVocab, 0.f);
  int32_t ts(int i) const { return sp.timestamp_begin + i; }
  bool allowed(int32_t id) const { return logits[id] > -kInf; }
  void apply(std::vector<int32_t> sampled) {
    whisper::apply_logit_rules(rules, sampled, logits.data());
  }
};

TEST_F(RulesCase, FirstTokenIsAnEarlyTimestamp) {
  apply({});
  for (int32_t id : {kHello, int32_t{'a'}, sp.eot, sp.notimestamps, sp.sot})
    EXPECT_FALSE(allowed(id)) << id;
  EXPECT_TRUE(allowed(ts(0)));
  EXPECT_TRUE(allowed(ts(50)));  // 1.00 s
  EXPECT_FALSE(allowed(ts(51)));
}

TEST_F(RulesCase, LoneTimestampNeedsItsPartnerOrTheEnd) {
  logits[sp.eot] = 10.f;  // (else the timestamps' mass would mask it, <|endoftext|> included)
  apply({ts(5), kHello, ts(7)});
  EXPECT_FALSE(allowed(kHello));
  EXPECT_TRUE(allowed(sp.eot));
  EXPECT_FALSE(allowed(ts(6)));
  EXPECT_TRUE(allowed(ts(7)));  // closing the pair at the same time is fine
  EXPECT_TRUE(allowed(ts(300)));
}

TEST_F(RulesCase, AfterAPairComesText) {
  apply({ts(5), kHello, ts(7), ts(7)});
  EXPECT_TRUE(allowed(kHello));
  for (int i = 0; i <= 1500; ++i) EXPECT_FALSE(allowed(ts(i))) << i;
}

TEST_F(RulesCase, TimestampsNeverGoBackAndSegmentsAreNotEmpty) {
  logits[kWorld] = 10.f;
  apply({ts(5), kHello});
  EXPECT_TRUE(allowed(kWorld));
  EXPECT_FALSE(allowed(ts(5)));  // strictly later than the open timestamp
  EXPECT_TRUE(allowed(ts(6)));
}

TEST_F(RulesCase, SuppressedTokens) {
  logits['.'] = 10.f;  // text clearly ahead of the timestamps' mass
  apply({ts(0), kHello});
  for (int32_t id : {sp.translate, sp.transcribe, sp.sot, sp.prev, sp.solm, sp.nospeech,
                     sp.notimestamps, int32_t{'#'}, int32_t{'@'}, int32_t{259}})  // 259 = " '"
    EXPECT_FALSE(allowed(id)) << id;
  EXPECT_TRUE(allowed(int32_t{'.'}));
}

TEST_F(RulesCase, TimestampForcedWhenTheirMassWins) {
  // Text token 'a' has the single best logit, but 1501 timestamps at 0 outweigh it.
  std::fill(logits.begin(), logits.end(), -30.f);
  logits['a'] = 5.f;
  for (int i = 0; i <= 1500; ++i) logits[ts(i)] = 1.f;
  apply({ts(0), kHello});
  EXPECT_FALSE(allowed('a'));
  EXPECT_TRUE(allowed(ts(3)));
  // ...and not when the text token dominates.
  std::fill(logits.begin(), logits.end(), -30.f);
  logits['a'] = 10.f;
  for (int i = 0; i <= 1500; ++i) logits[ts(i)] = 1.f;
  apply({ts(0), kHello});
  EXPECT_TRUE(allowed('a'));
}

TEST(TranscribeAlign, DtwHandComputed) {
  const float diag[] = {0, 9, 9, 9, 0, 9, 9, 9, 0};
  auto p = whisper::dtw(diag, 3, 3);
  EXPECT_EQ(p.text, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(p.time, (std::vector<int>{0, 1, 2}));
  const float two[] = {0, 0, 9, 9, 9, 9, 0, 0};
  p = whisper::dtw(two, 2, 4);
  EXPECT_EQ(p.text, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(p.time, (std::vector<int>{0, 1, 2, 3}));
  // Ties: OpenAI prefers left over diagonal-or-up when they are equal.
  const float zeros[] = {0, 0, 0, 0};
  p = whisper::dtw(zeros, 2, 2);
  EXPECT_EQ(p.text, (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(p.time, (std::vector<int>{0, 0, 1}));
  EXPECT_THROW(whisper::dtw(zeros, 0, 2), Error);
}

// Property check on random costs: the path is a valid monotonic alignment whose cost is the
// minimum, computed here by an independent row-major dynamic program.
TEST(TranscribeAlign, DtwPathIsOptimal) {
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 1 + static_cast<int>(testing::rng()() % 9),
              m = 1 + static_cast<int>(testing::rng()() % 31);
    const auto x = testing::random_floats(static_cast<size_t>(n) * m, -1.f, 1.f);
    const auto p = whisper::dtw(x.data(), n, m);
    ASSERT_EQ(p.text.front(), 0);
    ASSERT_EQ(p.time.front(), 0);
    ASSERT_EQ(p.text.back(), n - 1);
    ASSERT_EQ(p.time.back(), m - 1);
    double cost = x[0];
    for (size_t k = 1; k < p.text.size(); ++k) {
      const int di = p.text[k] - p.text[k - 1], dj = p.time[k] - p.time[k - 1];
      ASSERT_TRUE((di == 1 && dj == 1) || (di == 1 && dj == 0) || (di == 0 && dj == 1));
      cost += x[static_cast<size_t>(p.text[k]) * m + p.time[k]];
    }
    std::vector<double> best(static_cast<size_t>(n) * m);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) {
        double b = i == 0 && j == 0 ? 0 : std::numeric_limits<double>::infinity();
        if (i > 0) b = std::min(b, best[(i - 1) * m + j]);
        if (j > 0) b = std::min(b, best[i * m + j - 1]);
        if (i > 0 && j > 0) b = std::min(b, best[(i - 1) * m + j - 1]);
        best[i * m + j] = b + x[static_cast<size_t>(i) * m + j];
      }
    EXPECT_NEAR(cost, best.back(), 1e-4) << n << "x" << m;
  }
}

TEST(TranscribeAlign, MedianFilterReflects) {
  float x[] = {1, 5, 2, 8, 3, 7, 7, 7, 7, 7};
  whisper::median_filter(x, 2, 5, 3);
  EXPECT_EQ(std::vector<float>(x, x + 5), (std::vector<float>{5, 2, 5, 3, 8}));
  float short_row[] = {3, 1};
  whisper::median_filter(short_row, 1, 2, 7);  // too short for the padding: unchanged
  EXPECT_EQ(short_row[0], 3);
  EXPECT_THROW(whisper::median_filter(x, 1, 5, 4), Error);
}

TEST(TranscribeAlign, WordsAndPunctuation) {
  const auto& tok = fake_tokenizer();
  // " hello" "," " world" "." : punctuation becomes its own piece, then merges back.
  const std::vector<int32_t> tokens = {kHello, ',', kWorld, '.'};
  const auto split = whisper::split_to_word_tokens(tok, tokens, "en");
  EXPECT_EQ(split.words, (std::vector<std::string>{" hello", ",", " world", "."}));
  // Bytes of one UTF-8 character stay together ("é" = C3 A9), then join the word before.
  const std::vector<int32_t> accented = {kHello, 0xC3, 0xA9};
  const auto s2 = whisper::split_to_word_tokens(tok, accented, "en");
  EXPECT_EQ(s2.words, (std::vector<std::string>{" hello\xC3\xA9"}));
  EXPECT_EQ(s2.tokens[0].size(), 3u);
  // Space-free languages keep every character as a word.
  EXPECT_EQ(whisper::split_to_word_tokens(tok, accented, "ja").words.size(), 2u);

  std::vector<whisper::AlignedWord> words = {{" \"", {'"'}, 0, 1, 1},
                                             {" hello", {kHello}, 1, 2, 1},
                                             {",", {','}, 2, 3, 1},
                                             {" world", {kWorld}, 3, 4, 1},
                                             {".", {'.'}, 4, 5, 1}};
  whisper::merge_punctuations(words, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、");
  std::vector<std::string> got;
  for (const auto& w : words) got.push_back(w.word);
  EXPECT_EQ(got, (std::vector<std::string>{"", " \" hello,", "", " world.", ""}));
  EXPECT_EQ(words[1].tokens, (std::vector<int32_t>{'"', kHello, ','}));
}

TEST(TranscribeAlign, WordsFromPath) {
  const auto& tok = fake_tokenizer();
  const std::vector<int32_t> tokens = {kHello, kWorld};
  const std::vector<float> probs = {0.5f, 0.9f};
  // Rows: <|notimestamps|>-row 0 ... path reaches row 1 at frame 10, row 2 at frame 30.
  whisper::DtwPath path;
  for (int f = 0; f < 50; ++f) {
    path.text.push_back(f < 10 ? 0 : f < 30 ? 1 : 2);
    path.time.push_back(f);
  }
  const auto words = whisper::words_from_path(tok, tokens, probs, path, "en");
  ASSERT_EQ(words.size(), 2u);
  EXPECT_EQ(words[0].word, " hello");
  EXPECT_DOUBLE_EQ(words[0].start, 0.0);
  EXPECT_DOUBLE_EQ(words[0].end, 0.2);
  EXPECT_DOUBLE_EQ(words[1].start, 0.2);
  EXPECT_DOUBLE_EQ(words[1].end, 0.6);
  EXPECT_FLOAT_EQ(words[1].probability, 0.9f);
  const auto times = whisper::token_times_from_path(tokens, probs, path);
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times[1].id, kWorld);
  EXPECT_DOUBLE_EQ(times[0].start, 0.0);
  EXPECT_DOUBLE_EQ(times[0].end, 0.2);
  EXPECT_DOUBLE_EQ(times[1].start, 0.2);
  EXPECT_DOUBLE_EQ(times[1].end, 0.6);
}

TEST(WhisperTokenizer, MatchesOpenAiIds) {
  EIGHT_REQUIRE_SHARED();
  const std::string dir = testing::shared_dir() + "/golden/whisper/";
  const auto file = whisper::load(dir + "whisper-tiny-f16.bin");
  const whisper::WhisperTokenizer tok(file.vocab, file.special);
  std::ifstream in(dir + "whisper-tiny-f16.json");
  const auto j = nlohmann::json::parse(in);
  const std::vector<int32_t> forced = j["forced_tokens"].get<std::vector<int32_t>>();
  const std::vector<int32_t> text_ids(forced.begin() + 4, forced.end());
  EXPECT_EQ(tok.encode(j["forced_text"].get<std::string>()), text_ids);
  EXPECT_EQ(tok.decode(forced), j["forced_text"].get<std::string>());
  EXPECT_EQ(tok.decode({forced[0], forced[1], 50364, 400}, true),
            "<|startoftranscript|><|en|><|0.00|> And");
  // OpenAI's non_speech_tokens for the multilingual vocabulary begins with " -" and " '".
  const auto ns = tok.non_speech_tokens();
  EXPECT_GT(ns.size(), 40u);
  EXPECT_EQ(ns[0], tok.encode(" -")[0]);
}

whisper::TranscribeResult sample_result() {
  whisper::TranscribeResult r;
  r.language = "en";
  r.duration = 3725.5;
  whisper::Segment a;
  a.id = 0;
  a.start = 0.0;
  a.end = 2.5;
  a.text = " Hello --> there.";
  a.tokens = {50364, kHello, 50489};
  a.words = {{" Hello", 0.0, 1.0, 0.9}, {" there.", 1.0, 2.5, 0.8}};
  whisper::Segment silent;
  silent.id = 1;
  silent.start = silent.end = 2.5;
  whisper::Segment b;
  b.id = 2;
  b.start = 3723.25;
  b.end = 3725.5;
  b.text = " Bye \xC3";  // cut inside a UTF-8 character
  r.segments = {a, silent, b};
  r.text = a.text + b.text;
  return r;
}

TEST(TranscriptFormat, SrtAndVttSyntax) {
  const auto r = sample_result();
  const std::string srt = whisper::format_transcript(r, whisper::TranscriptFormat::Srt);
  EXPECT_EQ(srt.substr(0, 50), "1\n00:00:00,000 --> 00:00:02,500\nHello -> there.\n\n2");
  const std::regex cue(R"((\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n[^\n]+\n\n)");
  std::string rest = srt;
  int n = 0;
  for (std::smatch m; std::regex_search(rest, m, cue); rest = m.suffix()) {
    EXPECT_EQ(m.position(0), 0);
    EXPECT_EQ(std::stoi(m[1]), ++n);
  }
  EXPECT_EQ(n, 2);
  EXPECT_TRUE(rest.empty());
  EXPECT_NE(srt.find("01:02:03,250 --> 01:02:05,500"), std::string::npos);
  const std::string vtt = whisper::format_transcript(r, whisper::TranscriptFormat::Vtt);
  EXPECT_EQ(vtt.substr(0, 8), "WEBVTT\n\n");
  EXPECT_NE(vtt.find("01:02:03.250 --> 01:02:05.500\nBye \xEF\xBF\xBD\n\n"), std::string::npos);
  EXPECT_EQ(whisper::format_transcript(r, whisper::TranscriptFormat::Txt),
            "Hello --> there.\nBye \xEF\xBF\xBD\n");
  EXPECT_EQ(whisper::format_timestamp(59.9996), "00:01:00.000");
}

TEST(TranscriptFormat, JsonShapes) {
  const auto r = sample_result();
  const auto j =
      nlohmann::json::parse(whisper::format_transcript(r, whisper::TranscriptFormat::Json));
  EXPECT_EQ(j["language"], "en");
  ASSERT_EQ(j["segments"].size(), 3u);
  for (const auto& s : j["segments"])
    for (const char* key : {"id", "seek", "start", "end", "text", "tokens", "temperature",
                            "avg_logprob", "compression_ratio", "no_speech_prob", "words"})
      EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(j["segments"][0]["words"][1]["word"], " there.");
  const auto v = nlohmann::json::parse(
      whisper::format_transcript(r, whisper::TranscriptFormat::VerboseJson, "translate", true));
  EXPECT_EQ(v["task"], "translate");
  EXPECT_EQ(v["language"], "english");
  EXPECT_DOUBLE_EQ(v["duration"].get<double>(), 3725.5);
  EXPECT_EQ(v["words"].size(), 2u);
  EXPECT_FALSE(v["segments"][0].contains("words"));
  EXPECT_THROW(whisper::parse_transcript_format("docx"), Error);
}

}  // namespace
}  // namespace eight
