// OpenAI's transcription loop (whisper/transcribe.py): windows, seeking by timestamp tokens,
// temperature fallback, no-speech skipping, previous-text conditioning and word timestamps.
#include "runtime/speech/transcribe.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "formats/mel.h"
#include "runtime/speech/transcribe_align.h"
#include "runtime/speech/transcribe_search.h"
#include "runtime/speech/transcribe_vad.h"

namespace eight::whisper {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

// mel[:, seek : seek + size] zero-padded to 3000 frames (OpenAI's pad_or_trim).
Tensor window_mel(const Tensor& mel, int64_t seek, int64_t size) {
  const int64_t n_mels = mel.size(0), total = mel.size(1);
  Tensor out = Tensor::zeros({n_mels, kWindowFrames}, DType::F32);
  size = std::clamp<int64_t>(std::min<int64_t>(size, total - seek), 0, kWindowFrames);
  for (int64_t m = 0; m < n_mels; ++m)
    std::memcpy(out.data<float>() + m * kWindowFrames, mel.data<float>() + m * total + seek,
                sizeof(float) * static_cast<size_t>(size));
  return out;
}

int detect_language(DecoderModel& model, const SpecialTokens& sp) {
  const int nv = model.n_vocab();
  Tensor logits = Tensor::empty({1, nv}, DType::F32);
  const int32_t sot = sp.sot;
  model.truncate(0, 0);
  model.decode(0, std::span<const int32_t>(&sot, 1), logits.data<float>(), nullptr);
  const float* row = logits.data<float>();
  int best = 0;
  for (int i = 1; i < sp.n_languages; ++i)
    if (row[sp.language(i)] > row[sp.language(best)]) best = i;
  return best;
}

}  // namespace

void validate_transcribe_options(const TranscribeOptions& o, const SpecialTokens& sp) {
  check(!o.temperatures.empty(), "[transcribe] no temperatures given");
  for (float t : o.temperatures)
    check(t >= 0 && t <= 2, "[transcribe] temperature must be in [0, 2], got ", t);
  check(o.beam_size >= 0 && o.beam_size <= 16, "[transcribe] beam size must be 0..16, got ",
        o.beam_size);
  check(o.best_of >= 1 && o.best_of <= 16, "[transcribe] best_of must be 1..16, got ", o.best_of);
  check(o.patience > 0, "[transcribe] patience must be positive, got ", o.patience);
  check(o.max_tokens_per_window >= 0, "[transcribe] max tokens per window must not be negative");
  check(!o.translate || sp.multilingual,
        "[transcribe] this model is English-only and cannot translate");
  if (o.language != "auto" && !o.language.empty()) {
    const int idx = whisper_language_index(o.language);
    check(idx >= 0 && idx < sp.n_languages, "[transcribe] unknown language '", o.language,
          "' (use a code such as en, de, fr, or auto)");
    check(sp.multilingual || o.language == "en",
          "[transcribe] this model is English-only; "
          "language '",
          o.language, "' is not available");
  }
}

double compression_ratio(std::string_view text) {
  if (text.empty()) return 0.0;
  uLongf bound = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> out(bound);
  const int rc = compress2(out.data(), &bound, reinterpret_cast<const Bytef*>(text.data()),
                           static_cast<uLong>(text.size()), Z_DEFAULT_COMPRESSION);
  check(rc == Z_OK, "[transcribe] zlib compress failed with code ", rc);
  return static_cast<double>(text.size()) / static_cast<double>(bound);
}

TranscribeResult transcribe_samples(DecoderModel& model, const WhisperTokenizer& tok,
                                    const Tensor& mel_filters, std::span<const float> samples,
                                    const TranscribeOptions& o, const TranscribeCallbacks& cb,
                                    const std::vector<std::pair<int, int>>& heads) {
  const auto t_start = Clock::now();
  const SpecialTokens& sp = tok.special();
  validate_transcribe_options(o, sp);
  TranscribeResult result;
  const int64_t n = static_cast<int64_t>(samples.size());
  result.duration = static_cast<double>(n) / kSampleRate;

  // Log-mel of the whole file with 30 s of silence after it, so every window has real frames.
  Tensor padded = Tensor::zeros({n + int64_t{kSampleRate} * 30}, DType::F32);
  if (n > 0) std::memcpy(padded.data<float>(), samples.data(), sizeof(float) * samples.size());
  const Tensor mel = mel::log_mel_spectrogram(padded.data<float>(), padded.numel(), mel_filters, 0);
  padded = Tensor();
  const int64_t content_frames = mel.size(1) - kWindowFrames;

  // Where windows may go: the whole file, or only its speech regions.
  std::vector<std::pair<int64_t, int64_t>> clips;
  if (o.vad) {
    VadOptions vo;
    vo.min_silence_s = o.vad_min_silence_s;
    for (const SpeechRegion& r : detect_speech(samples, kSampleRate, vo)) {
      const int64_t b = r.begin * kFramesPerSecond / kSampleRate;
      const int64_t e = std::min(content_frames, r.end * kFramesPerSecond / kSampleRate + 1);
      if (e > b) clips.emplace_back(b, e);
    }
  } else if (content_frames > 0) {
    clips.emplace_back(0, content_frames);
  }

  // Language: given, English for .en models, or detected on the first window.
  int64_t encoded_seek = -1, encoded_size = -1;
  int lang_index = 0;
  if (o.language != "auto" && !o.language.empty()) {
    lang_index = whisper_language_index(o.language);
  } else if (sp.multilingual && !clips.empty()) {
    const auto t = Clock::now();
    const int64_t first = clips[0].first;
    model.encode(window_mel(mel, first, kWindowFrames));
    result.encode_seconds += seconds_since(t);
    if (content_frames - first >= kWindowFrames) {  // the first window is this same mel
      encoded_seek = first;
      encoded_size = kWindowFrames;
    }
    lang_index = detect_language(model, sp);
  }
  result.language = whisper_language_codes()[static_cast<size_t>(lang_index)];
  // English-only models take <|startoftranscript|> alone (OpenAI's sot_sequence).
  const std::vector<int32_t> sot_sequence =
      sp.multilingual ? std::vector<int32_t>{sp.sot, sp.language(lang_index),
                                             o.translate ? sp.translate : sp.transcribe}
                      : std::vector<int32_t>{sp.sot};

  const int n_text_ctx = model.max_tokens();
  const int sample_len = o.max_tokens_per_window > 0 ? o.max_tokens_per_window : n_text_ctx / 2;
  const LogitRules rules =
      LogitRules::defaults(tok, model.n_vocab(), o.suppress_blank, o.suppress_non_speech,
                           !o.without_timestamps, o.max_initial_timestamp);

  std::vector<int32_t> all_tokens;
  size_t prompt_reset_since = 0;
  if (!strip(o.initial_prompt).empty()) all_tokens = tok.encode(" " + strip(o.initial_prompt));
  double last_speech_timestamp = 0;
  double last_end = 0;

  size_t clip_idx = 0;
  int64_t seek = clips.empty() ? 0 : clips[0].first;
  while (clip_idx < clips.size()) {
    const auto [clip_start, clip_end] = clips[clip_idx];
    seek = std::max(seek, clip_start);
    if (seek >= clip_end) {
      if (++clip_idx < clips.size()) seek = clips[clip_idx].first;
      continue;
    }
    const double time_offset = static_cast<double>(seek) / kFramesPerSecond;
    const int64_t segment_size =
        std::min<int64_t>({kWindowFrames, content_frames - seek, clip_end - seek});
    const double segment_duration = static_cast<double>(segment_size) / kFramesPerSecond;
    const double window_end = time_offset + segment_duration;
    if (encoded_seek != seek || encoded_size != segment_size) {
      const auto t = Clock::now();
      model.encode(window_mel(mel, seek, segment_size));
      result.encode_seconds += seconds_since(t);
      encoded_seek = seek;
      encoded_size = segment_size;
    }
    ++result.windows;

    // The prompt: [<|startofprev|> previous text] <|sot|> lang task [<|notimestamps|>].
    std::vector<int32_t> prompt;
    const std::span<const int32_t> prev(all_tokens.data() + prompt_reset_since,
                                        all_tokens.size() - prompt_reset_since);
    if (!prev.empty()) {
      const size_t keep = std::min(prev.size(), static_cast<size_t>(n_text_ctx / 2 - 1));
      prompt.push_back(sp.prev);
      prompt.insert(prompt.end(), prev.end() - static_cast<std::ptrdiff_t>(keep), prev.end());
    }
    const int sot_index = static_cast<int>(prompt.size());
    prompt.insert(prompt.end(), sot_sequence.begin(), sot_sequence.end());
    if (o.without_timestamps) prompt.push_back(sp.notimestamps);

    // Decode, falling back to higher temperatures on repetitive or unlikely text.
    const auto t_dec = Clock::now();
    SearchResult r;
    double ratio = 0;
    for (size_t ti = 0; ti < o.temperatures.size(); ++ti) {
      const float temp = o.temperatures[ti];
      SearchOptions so{.temperature = temp,
                       .beam_size = temp == 0 ? o.beam_size : 0,
                       .patience = o.patience,
                       .best_of = temp > 0 ? o.best_of : 1,
                       .length_penalty = o.length_penalty,
                       .sample_len = sample_len,
                       .seed = o.seed + static_cast<uint64_t>(seek) * 31 + ti};
      r = decode_window(model, rules, prompt, sot_index, so);
      ratio = compression_ratio(tok.decode(r.tokens));
      bool fallback =
          (o.compression_ratio_threshold > 0 && ratio > o.compression_ratio_threshold) ||
          (!std::isnan(o.logprob_threshold) && r.avg_logprob < o.logprob_threshold);
      if (o.no_speech_threshold > 0 && r.no_speech_prob > o.no_speech_threshold) fallback = false;
      if (!fallback || ti + 1 == o.temperatures.size()) break;
      ++result.fallbacks;
    }
    result.decode_seconds += seconds_since(t_dec);

    if (o.no_speech_threshold > 0 && r.no_speech_prob > o.no_speech_threshold &&
        (std::isnan(o.logprob_threshold) || r.avg_logprob <= o.logprob_threshold)) {
      seek += segment_size;  // silence: skip the window
      if (cb.on_progress)
        cb.on_progress(static_cast<double>(std::min(seek, content_frames)) / kFramesPerSecond,
                       result.duration);
      continue;
    }

    // Segments between consecutive timestamp pairs; seek to the last complete pair.
    const std::vector<int32_t>& tokens = r.tokens;
    auto is_ts = [&](size_t i) { return tokens[i] >= sp.timestamp_begin; };
    const size_t nt = tokens.size();
    const bool single_ending = nt >= 2 && !is_ts(nt - 2) && is_ts(nt - 1);
    std::vector<size_t> slices;
    for (size_t i = 1; i < nt; ++i)
      if (is_ts(i - 1) && is_ts(i)) slices.push_back(i);
    std::vector<Segment> segs;
    auto add_segment = [&](size_t b, size_t e, double start, double end) {
      Segment s;
      s.seek = seek;
      s.start = std::clamp(start, time_offset, window_end);
      s.end = std::clamp(end, s.start, window_end);
      s.tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(b),
                      tokens.begin() + static_cast<std::ptrdiff_t>(e));
      s.token_probs.assign(r.token_probs.begin() + static_cast<std::ptrdiff_t>(b),
                           r.token_probs.begin() + static_cast<std::ptrdiff_t>(e));
      s.text = tok.decode(s.tokens);
      s.temperature = r.temperature;
      s.avg_logprob = r.avg_logprob;
      s.compression_ratio = ratio;
      s.no_speech_prob = r.no_speech_prob;
      segs.push_back(std::move(s));
    };
    if (!slices.empty()) {
      if (single_ending) slices.push_back(nt);
      size_t last = 0;
      for (size_t cur : slices) {
        const double start = (tokens[last] - sp.timestamp_begin) * kTimePrecision;
        const double end = (tokens[cur - 1] - sp.timestamp_begin) * kTimePrecision;
        add_segment(last, cur, time_offset + start, time_offset + end);
        last = cur;
      }
      if (single_ending)
        seek += segment_size;
      else
        seek += std::max<int64_t>(1, (tokens[last - 1] - sp.timestamp_begin) * 2);
    } else {
      double duration = segment_duration;
      int32_t last_ts = -1;
      for (int32_t t : tokens)
        if (t >= sp.timestamp_begin) last_ts = t;
      if (last_ts >= 0 && last_ts != sp.timestamp_begin)
        duration = (last_ts - sp.timestamp_begin) * kTimePrecision;
      // OpenAI starts this segment at the window start; its first timestamp, when it has one,
      // is where the model heard the speech begin, so that is used instead.
      const double start =
          nt > 0 && is_ts(0) ? (tokens[0] - sp.timestamp_begin) * kTimePrecision : 0;
      add_segment(0, nt, time_offset + start, time_offset + std::max(start, duration));
      seek += segment_size;
    }

    if (o.word_timestamps) {
      add_word_timestamps(segs, model, 0, tok, sot_sequence, static_cast<int>(segment_size), heads,
                          o, result.language, last_speech_timestamp);
      if (!single_ending) {
        double last_word_end = -1;
        for (const Segment& s : segs)
          if (!s.words.empty()) last_word_end = s.words.back().end;
        if (last_word_end > time_offset)
          seek =
              std::max<int64_t>(encoded_seek + 1, std::llround(last_word_end * kFramesPerSecond));
      }
    }

    for (Segment& s : segs) {
      // Words can move a segment's edges; keep segments in order and inside the window.
      s.start = std::clamp(s.start, last_end, std::max(last_end, window_end));
      s.end = std::clamp(s.end, s.start, std::max(s.start, window_end));
      if (s.start == s.end || strip(s.text).empty()) {
        s.text.clear();
        s.tokens.clear();
        s.token_probs.clear();
        s.words.clear();
        s.token_times.clear();
      } else {
        last_end = s.end;
      }
      s.id = static_cast<int>(result.segments.size());
      all_tokens.insert(all_tokens.end(), s.tokens.begin(), s.tokens.end());
      result.segments.push_back(s);
      if (cb.on_segment) cb.on_segment(result.segments.back());
    }
    if (!o.condition_on_previous_text || r.temperature > 0.5f)
      prompt_reset_since = all_tokens.size();
    if (cb.on_progress)
      cb.on_progress(static_cast<double>(std::min(seek, content_frames)) / kFramesPerSecond,
                     result.duration);
  }
  for (const Segment& s : result.segments) result.text += s.text;
  result.total_seconds = seconds_since(t_start);
  return result;
}

}  // namespace eight::whisper
