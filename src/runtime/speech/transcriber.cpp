// Transcriber: one WhisperState per run driven by the transcription loop.
#include "runtime/speech/transcribe.h"
#include "runtime/speech/transcribe_search.h"

namespace eight::whisper {

namespace {

// DecoderModel over a WhisperState.
class StateModel final : public DecoderModel {
 public:
  explicit StateModel(WhisperState& s) : s_(s) {}
  int n_vocab() const override { return s_.model().hparams().n_vocab; }
  int max_sequences() const override { return s_.max_sequences(); }
  int max_tokens() const override { return s_.max_tokens(); }
  void encode(const Tensor& mel) override {
    // A model with a shorter audio context (test models, or a shrunk audio_ctx as whisper.cpp
    // allows) sees only the start of each window: two mel frames per encoder position.
    const int64_t frames = 2 * int64_t{s_.model().hparams().n_audio_ctx};
    s_.encode(frames < mel.size(1) ? mel.slice(1, 0, frames).contiguous() : mel);
  }
  void decode(int seq, std::span<const int32_t> tokens, float* logits,
              CrossAttentionCapture* capture) override {
    s_.decode(seq, tokens, logits, capture);
  }
  void decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens,
                    float* logits) override {
    s_.decode_batch(seqs, tokens, logits);
  }
  void truncate(int seq, int n) override { s_.truncate(seq, n); }
  void copy_sequence(int src, int dst) override { s_.copy_sequence(src, dst); }

 private:
  WhisperState& s_;
};

}  // namespace

Transcriber::Transcriber(std::shared_ptr<const Model> model, ThreadPool& pool)
    : model_(std::move(model)), pool_(pool), tokenizer_(model_->file().vocab, model_->special()) {}

TranscribeResult Transcriber::run(std::span<const float> samples, const TranscribeOptions& o,
                                  const TranscribeCallbacks& cb) {
  validate_transcribe_options(o, model_->special());
  bool sampling = false;
  for (float t : o.temperatures) sampling = sampling || t > 0;
  const int beams = o.beam_size > 1 ? o.beam_size + 1 : 1;
  const int n_seq = std::max(beams, sampling ? o.best_of : 1);
  WhisperState state(model_, n_seq, model_->hparams().n_text_ctx, pool_);
  StateModel sm(state);
  return transcribe_samples(sm, tokenizer_, model_->file().mel_filters, samples, o, cb,
                            model_->file().alignment_heads.empty()
                                ? alignment_heads(model_->hparams())
                                : model_->file().alignment_heads);  // a CT2 config's heads
}

}  // namespace eight::whisper
