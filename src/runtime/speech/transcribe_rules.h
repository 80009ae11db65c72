#pragma once
// The logit filters OpenAI's decoding.py applies before each sampled token, in its order:
//   SuppressBlank        at the first sampled position, no " " and no <|endoftext|>
//   SuppressTokens       non-speech symbols and the special tokens that never belong in output
//   ApplyTimestampRules  <|notimestamps|> never; timestamps come in pairs (after a lone timestamp
//                        only another timestamp or <|endoftext|>; after a pair only text);
//                        timestamps never decrease and a segment is never empty; the first
//                        sampled token is a timestamp no later than max_initial_timestamp; and
//                        when the timestamps' total probability beats every single text token,
//                        a timestamp is forced.
// Apply them to one hypothesis' logits before sampling; apply_logit_rules says which tokens each
// rule forbids.
#include <cstdint>
#include <span>
#include <vector>

#include "formats/whisper_ggml.h"

namespace eight::whisper {

class WhisperTokenizer;

struct LogitRules {
  SpecialTokens special;
  int32_t n_vocab = 0;
  bool suppress_blank = true;
  std::vector<int32_t> blank_tokens;     // encode(" ") + eot
  std::vector<int32_t> suppress;         // always -inf
  bool timestamps = true;                // false: <|notimestamps|> mode, no timestamp rules
  int max_initial_timestamp_index = 50;  // in 0.02 s steps; < 0: no limit

  // OpenAI's defaults for a tokenizer: suppress_tokens="-1" (non-speech symbols when
  // suppress_non_speech) plus translate, transcribe, sot, startofprev, startoflm, nospeech.
  static LogitRules defaults(const WhisperTokenizer& tok, int32_t n_vocab, bool suppress_blank,
                             bool suppress_non_speech, bool timestamps,
                             float max_initial_timestamp);
};

// Applies every rule to one hypothesis' logits (F32 [n_vocab], modified in place). `sampled` are
// the tokens this hypothesis has sampled so far in this window (after the prompt).
void apply_logit_rules(const LogitRules& rules, std::span<const int32_t> sampled, float* logits);

// out[i] = logits[i] - logsumexp(logits) (out may equal logits).
void log_softmax(const float* logits, int n, float* out);
// log(sum(exp(x))) over n values, -inf when all are -inf.
double logsumexp(const float* x, int n);

}  // namespace eight::whisper
