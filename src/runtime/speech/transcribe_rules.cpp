// Logit filters of OpenAI's decoding.py (SuppressBlank, SuppressTokens, ApplyTimestampRules).
#include "runtime/speech/transcribe_rules.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "runtime/speech/whisper_tokenizer.h"

namespace eight::whisper {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void fill_range(float* logits, int32_t begin, int32_t end, int32_t n_vocab) {
  begin = std::max<int32_t>(begin, 0);
  end = std::min<int32_t>(end, n_vocab);
  for (int32_t i = begin; i < end; ++i) logits[i] = kNegInf;
}
}  // namespace

LogitRules LogitRules::defaults(const WhisperTokenizer& tok, int32_t n_vocab, bool suppress_blank,
                                bool suppress_non_speech, bool timestamps,
                                float max_initial_timestamp) {
  const SpecialTokens& s = tok.special();
  LogitRules r;
  r.special = s;
  r.n_vocab = n_vocab;
  r.suppress_blank = suppress_blank;
  r.blank_tokens = tok.encode_if_possible(" ");
  r.blank_tokens.push_back(s.eot);
  if (suppress_non_speech) r.suppress = tok.non_speech_tokens();
  for (int32_t id : {s.translate, s.transcribe, s.sot, s.prev, s.solm, s.nospeech})
    r.suppress.push_back(id);
  r.timestamps = timestamps;
  r.max_initial_timestamp_index =
      max_initial_timestamp >= 0 ? static_cast<int>(std::lround(max_initial_timestamp / 0.02)) : -1;
  return r;
}

double logsumexp(const float* x, int n) {
  float mx = kNegInf;
  for (int i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (mx == kNegInf) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(sum);
}

void log_softmax(const float* logits, int n, float* out) {
  const double lse = logsumexp(logits, n);
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - lse);
}

void apply_logit_rules(const LogitRules& r, std::span<const int32_t> sampled, float* logits) {
  const SpecialTokens& s = r.special;
  const int32_t nv = r.n_vocab;
  check(nv > s.timestamp_begin, "[whisper rules] n_vocab ", nv,
        " leaves no timestamp tokens after ", s.timestamp_begin);
  if (r.suppress_blank && sampled.empty())
    for (int32_t id : r.blank_tokens)
      if (id >= 0 && id < nv) logits[id] = kNegInf;
  for (int32_t id : r.suppress)
    if (id >= 0 && id < nv) logits[id] = kNegInf;
  if (!r.timestamps) return;  // <|notimestamps|> mode: OpenAI applies no timestamp rules
  logits[s.notimestamps] = kNegInf;

  const size_t n = sampled.size();
  const bool last_ts = n >= 1 && sampled[n - 1] >= s.timestamp_begin;
  const bool penultimate_ts = n < 2 || sampled[n - 2] >= s.timestamp_begin;
  if (last_ts) {
    if (penultimate_ts)
      fill_range(logits, s.timestamp_begin, nv, nv);  // a pair just closed: text must follow
    else
      fill_range(logits, 0, s.eot, nv);  // a lone timestamp: its partner or the end
  }
  int32_t last_timestamp = -1;
  for (int32_t t : sampled)
    if (t >= s.timestamp_begin) last_timestamp = t;
  if (last_timestamp >= 0) {
    // Never earlier than the last timestamp; strictly later unless closing a pair, so every
    // segment has a nonzero length and decoding cannot loop in place.
    const int32_t limit = (last_ts && !penultimate_ts) ? last_timestamp : last_timestamp + 1;
    fill_range(logits, s.timestamp_begin, limit, nv);
  }
  if (n == 0) {
    fill_range(logits, 0, s.timestamp_begin, nv);
    if (r.max_initial_timestamp_index >= 0)
      fill_range(logits, s.timestamp_begin + r.max_initial_timestamp_index + 1, nv, nv);
  }
  // Force a timestamp when their summed probability beats the best text token.
  const double lse_all = logsumexp(logits, nv);
  const double ts_logprob = logsumexp(logits + s.timestamp_begin, nv - s.timestamp_begin) - lse_all;
  float max_text = kNegInf;
  for (int32_t i = 0; i < s.timestamp_begin; ++i) max_text = std::max(max_text, logits[i]);
  const double max_text_logprob = max_text - lse_all;
  if (ts_logprob > max_text_logprob) fill_range(logits, 0, s.timestamp_begin, nv);
}

}  // namespace eight::whisper
