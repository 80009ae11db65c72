#pragma once
// Speech-to-text with a Whisper model: OpenAI's transcription algorithm (whisper/transcribe.py and
// decoding.py). The whole file's log-mel spectrogram is cut into 30 s windows; each window is
// decoded (greedy, beam search or best-of sampling, with OpenAI's token suppression and timestamp
// rules) and the next window starts where the last complete timestamp pair ended. A window whose
// text is too repetitive (zlib compression ratio) or too unlikely (average log-probability) is
// decoded again at the next temperature; a window that looks silent (no-speech probability) is
// skipped. Word timestamps come from the decoder's cross-attention on the alignment heads,
// aligned to audio frames with dynamic time warping.
//
//   auto model = whisper::Model::load(path);
//   whisper::Transcriber t(model, pool);
//   TranscribeResult r = t.run(samples_16k, options);
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/whisper/whisper.h"
#include "runtime/speech/whisper_tokenizer.h"

namespace eight::whisper {

// Constants of OpenAI's audio front end: 100 mel frames per second, two frames per encoder
// position, so one timestamp token step is 0.02 s.
inline constexpr int kSampleRate = 16000;
inline constexpr int kFramesPerSecond = 100;
inline constexpr int kWindowFrames = 3000;
inline constexpr double kTimePrecision = 0.02;

struct TranscribeOptions {
  std::string language = "auto";  // "auto": detect on the first window ("en" for .en models)
  bool translate = false;         // task: translate to English instead of transcribe
  // Fallback temperatures, tried in order until a window passes the thresholds.
  std::vector<float> temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
  int beam_size = 5;      // at temperature 0; 0 or 1 = greedy
  float patience = 1.0f;  // beam search stops after round(beam_size * patience) finished hypotheses
  int best_of = 5;        // samples drawn at temperature > 0
  float length_penalty = 0.0f;               // 0: rank by logprob / length (OpenAI's default)
  float compression_ratio_threshold = 2.4f;  // <= 0 disables
  float logprob_threshold = -1.0f;           // avg logprob below it → fallback (NaN disables)
  float no_speech_threshold = 0.6f;          // <= 0 disables the silence skip
  bool condition_on_previous_text = true;
  std::string initial_prompt;
  bool suppress_blank = true;
  bool suppress_non_speech = true;  // OpenAI's suppress_tokens="-1"
  float max_initial_timestamp = 1.0f;
  bool without_timestamps = false;  // <|notimestamps|>: one segment per window
  int max_tokens_per_window = 0;    // sampled tokens per window; 0 = n_text_ctx / 2
  bool word_timestamps = false;
  std::string prepend_punctuations = "\"'“¿([{-";
  std::string append_punctuations = "\"'.。,，!！?？:：”)]}、";
  // Energy-based voice activity detection: windows are laid only over speech regions (see
  // transcribe_vad.h); silences longer than vad_min_silence_s are skipped.
  bool vad = false;
  float vad_min_silence_s = 2.0f;
  uint64_t seed = 0;  // sampling at temperature > 0
};

struct WordTiming {
  std::string word;
  double start = 0, end = 0;
  double probability = 0;
};

// When a text token was spoken (from the cross-attention alignment), absolute seconds.
struct TokenTiming {
  int32_t id = 0;
  double start = 0, end = 0;
  double probability = 0;
};

struct Segment {
  int id = 0;
  int64_t seek = 0;  // mel frame where the window that produced it starts
  double start = 0, end = 0;
  std::string text;
  std::vector<int32_t> tokens;     // text and timestamp tokens
  std::vector<float> token_probs;  // per token of `tokens`: its probability when chosen
  float temperature = 0;
  double avg_logprob = 0;
  double compression_ratio = 0;
  double no_speech_prob = 0;
  std::vector<WordTiming> words;
  std::vector<TokenTiming> token_times;  // per text token, with word_timestamps
};

struct TranscribeResult {
  std::string text;
  std::string language;
  double duration = 0;  // seconds of audio
  std::vector<Segment> segments;
  // Timing of the run (seconds), for the real-time factor.
  double encode_seconds = 0, decode_seconds = 0, total_seconds = 0;
  int windows = 0, fallbacks = 0;
};

struct TranscribeCallbacks {
  std::function<void(const Segment&)> on_segment;  // each segment as soon as it is final
  // (seconds of audio done, total seconds)
  std::function<void(double, double)> on_progress;
};

class Transcriber {
 public:
  // One WhisperState sized for max(beam_size, best_of) + 1 hypotheses is created per run.
  Transcriber(std::shared_ptr<const Model> model, ThreadPool& pool);

  // samples: mono 16 kHz. Throws Error for bad options (unknown language, translate on an
  // English-only model) before any decoding.
  TranscribeResult run(std::span<const float> samples, const TranscribeOptions& options,
                       const TranscribeCallbacks& callbacks = {});

  const WhisperTokenizer& tokenizer() const { return tokenizer_; }
  const Model& model() const { return *model_; }

 private:
  std::shared_ptr<const Model> model_;
  ThreadPool& pool_;
  WhisperTokenizer tokenizer_;
};

class DecoderModel;
// The transcription loop over any DecoderModel (Transcriber::run wraps a WhisperState): mel of the
// whole file, windows, fallback, segments, words. `heads` are the alignment heads for words.
TranscribeResult transcribe_samples(DecoderModel& model, const WhisperTokenizer& tok,
                                    const Tensor& mel_filters, std::span<const float> samples,
                                    const TranscribeOptions& options,
                                    const TranscribeCallbacks& callbacks,
                                    const std::vector<std::pair<int, int>>& heads);

// Throws Error for options that cannot work with these special tokens (unknown language,
// translate on an English-only model, out-of-range beam size, ...).
void validate_transcribe_options(const TranscribeOptions& options, const SpecialTokens& special);

// zlib compression ratio of the UTF-8 text (len(text) / len(zlib.compress(text))), OpenAI's
// repetition measure.
double compression_ratio(std::string_view text);

}  // namespace eight::whisper
