#pragma once
// Whisper (encoder–decoder speech model) over a whisper.cpp ggml file. The model is immutable and
// shared; a WhisperState holds one audio window's encoder output (the cross-attention K/V of every
// decoder layer) and the decoder's self-attention caches for up to `max_sequences` hypotheses
// (beams or best-of samples), which the decoding loop in runtime/transcribe drives.
//
// Shapes (PyTorch order): mel F32 [n_mels, 3000]; encoder output [n_audio_ctx=1500, n_audio_state];
// logits F32 [n_tokens, n_vocab].
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/whisper_ggml.h"

namespace eight::whisper {

class Model {
 public:
  // Maps the file and binds every tensor; throws Error naming a missing or misshapen tensor.
  // With a GPU (Device::vulkan(i)) the audio encoder's transformer blocks run there (the
  // convolutions, the decoder and the cross-attention projections stay on the host). Throws
  // Error when the device budget refuses the blocks' weights.
  static std::shared_ptr<const Model> load(const std::string& path,
                                           Device encoder_device = Device::cpu());
  static std::shared_ptr<const Model> from_file(ModelFile file,
                                                Device encoder_device = Device::cpu());

  const ModelFile& file() const { return file_; }
  const HParams& hparams() const { return file_.hparams; }
  const SpecialTokens& special() const { return file_.special; }
  // Bytes of weights (the mapped tensors), for the planner and `eight show`.
  int64_t weight_bytes() const;
  // The text of a token id (its stored bytes; special tokens give "" ), and the id of a
  // language code ("en", "de", ...) or -1 when the model does not know it.
  const std::string& token_text(int32_t id) const;
  int32_t language_token(const std::string& code) const;
  static const std::vector<std::string>& language_codes();  // OpenAI's order: en, zh, de, ...

  // Weights (set by load; see whisper_model.cpp for the tensor names).
  struct Layer;  // defined in the implementation
  struct Weights;
  const Weights& weights() const { return *weights_; }

 private:
  ModelFile file_;
  std::shared_ptr<Weights> weights_;
};

// Cross-attention weights captured during decode() for word-level timestamps:
// for each requested (layer, head), F32 [n_tokens, n_audio_ctx] (softmax probabilities).
struct CrossAttentionCapture {
  std::vector<std::pair<int, int>> heads;  // (decoder layer, head) to record
  std::vector<Tensor> weights;             // filled by decode(), one per entry of `heads`
};

class WhisperState {
 public:
  // max_sequences: hypotheses decoded side by side (beam size or best-of); max_tokens: the
  // longest token sequence per hypothesis (at most n_text_ctx). Memory is allocated here once.
  WhisperState(std::shared_ptr<const Model> model, int max_sequences, int max_tokens,
               ThreadPool& pool);
  ~WhisperState();

  // Runs the encoder on one 30 s window of mel frames (F32 [n_mels, 3000]) and computes every
  // decoder layer's cross-attention K/V. Clears all sequences.
  void encode(const Tensor& mel);
  // The encoder output of the last encode(): F32 [n_audio_ctx, n_audio_state].
  const Tensor& encoder_output() const;

  // Appends `tokens` to sequence `seq` (its cache holds seq_length(seq) tokens already) and writes
  // the logits after each appended token to logits_out: F32 [tokens.size(), n_vocab], contiguous.
  // Throws Error when seq is out of range or the sequence would exceed max_tokens.
  void decode(int seq, std::span<const int32_t> tokens, float* logits_out,
              CrossAttentionCapture* capture = nullptr);
  // As decode(), but writes only the logits after the appended tokens listed in `rows` (indices
  // into `tokens`, any order) to logits_out: F32 [rows.size(), n_vocab]. A prompt needs one or two
  // rows, and the vocabulary product (n_vocab x n_text_state per row) is most of a long prompt's
  // work. Throws Error for a row outside tokens.
  void decode_rows(int seq, std::span<const int32_t> tokens, std::span<const int> rows,
                   float* logits_out);
  // One step for several sequences at once (one token each, batched through the weights):
  // logits_out F32 [seqs.size(), n_vocab].
  void decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens, float* logits_out);

  int seq_length(int seq) const;
  // Keeps the first n tokens of seq's cache; copy_sequence makes dst's cache equal to src's
  // (beam reordering).
  void truncate(int seq, int n);
  void copy_sequence(int src, int dst);

  const Model& model() const { return *model_; }
  int max_sequences() const;
  int max_tokens() const;
  // Bytes this state holds (caches + activations), for the planner check.
  int64_t state_bytes() const;

 private:
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

// The alignment heads OpenAI publishes for the official checkpoints, chosen by the model's shape
// (n_text_layer, n_text_state, n_vocab); for other models, every head of the last half of the
// decoder layers (OpenAI's default).
std::vector<std::pair<int, int>> alignment_heads(const HParams& hp);

}  // namespace eight::whisper
