#pragma once
// Decoding one 30 s window (OpenAI's DecodingTask): the prompt is run once on sequence 0 and
// copied to every hypothesis, then tokens are chosen step by step under the logit rules —
// greedy (temperature 0, one hypothesis), best-of sampling (temperature > 0, best_of independent
// samples) or beam search (temperature 0, beam_size beams, patience) — and the finished
// hypotheses are ranked by sum logprob / length (or OpenAI's length penalty).
#include <cstdint>
#include <span>
#include <vector>

#include "models/whisper/whisper.h"
#include "runtime/speech/transcribe_rules.h"

namespace eight::whisper {

// The model operations a window's decoding needs. WhisperState provides them; tests script them
// to check the search and the seeking loop without a trained model.
class DecoderModel {
 public:
  virtual ~DecoderModel() = default;
  virtual int n_vocab() const = 0;
  virtual int max_sequences() const = 0;
  virtual int max_tokens() const = 0;
  // Loads one window (mel F32 [n_mels, 3000]) and clears every sequence.
  virtual void encode(const Tensor& mel) = 0;
  // As WhisperState::decode / decode_batch / truncate / copy_sequence.
  virtual void decode(int seq, std::span<const int32_t> tokens, float* logits,
                      CrossAttentionCapture* capture) = 0;
  virtual void decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens,
                            float* logits) = 0;
  // decode() keeping only the logits after the listed rows of `tokens`: [rows.size(), n_vocab]
  // (WhisperState::decode_rows skips the others' vocabulary products). This default runs decode()
  // 32 tokens at a time through a buffer.
  virtual void decode_rows(int seq, std::span<const int32_t> tokens, std::span<const int> rows,
                           float* logits);
  virtual void truncate(int seq, int n) = 0;
  virtual void copy_sequence(int src, int dst) = 0;
};

struct SearchOptions {
  float temperature = 0;
  int beam_size = 0;  // > 1 with temperature 0: beam search
  float patience = 1.0f;
  int best_of = 1;           // hypotheses sampled at temperature > 0
  float length_penalty = 0;  // 0: rank by logprob / length
  int sample_len = 224;      // tokens sampled at most (the window's token budget)
  uint64_t seed = 0;
};

struct SearchResult {
  std::vector<int32_t> tokens;     // sampled tokens, without the final <|endoftext|>
  std::vector<float> token_probs;  // probability of each token when it was chosen
  double sum_logprob = 0;
  double avg_logprob = 0;     // sum_logprob / (tokens + 1), as OpenAI
  double no_speech_prob = 0;  // softmax at <|nospeech|> after <|startoftranscript|>
  float temperature = 0;
};

// Decodes one window whose encoder pass is already done. `prompt` is the full initial token
// sequence ([<|startofprev|> ...] <|sot|> lang task [<|notimestamps|>]); sot_index its
// <|startoftranscript|> position. Needs max_sequences() >= hypotheses + 1 for beam search (one
// spare cache for reordering beams).
SearchResult decode_window(DecoderModel& model, const LogitRules& rules,
                           std::span<const int32_t> prompt, int sot_index,
                           const SearchOptions& options);

// Reorders sequence caches so that slot i holds what slot src[i] held, using copy_sequence and
// the spare slot `spare` for cycles. Exposed for tests.
void reorder_sequences(DecoderModel& model, std::span<const int> src, int spare);

// Runs `tokens` through sequence `seq`, leaving only the logits after the last token in
// `last_logits` (and after token `keep_index`, when >= 0, in keep_logits).
void decode_prompt(DecoderModel& model, int seq, std::span<const int32_t> tokens,
                   float* last_logits, int keep_index = -1, float* keep_logits = nullptr);

}  // namespace eight::whisper
