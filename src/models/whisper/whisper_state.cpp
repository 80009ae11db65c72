// WhisperState: every buffer of one audio window's decoding, carved from one tracked allocation
// made in the constructor (encoder activations, cross-attention K/V, per-sequence self-attention
// caches, decoder scratch), so encode() and decode() allocate nothing themselves.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/whisper/whisper_internal.h"

namespace eight::whisper {

namespace {

// Lays tensors out one after another in a storage (64-byte aligned), or only measures when the
// storage is null.
class Carver {
 public:
  explicit Carver(std::shared_ptr<HostStorage> s) : s_(std::move(s)) {}
  Tensor take(const Dims& shape, DType t) {
    const size_t bytes = dtype_row_bytes(t, shape.product());
    Tensor out;
    if (s_) out = Tensor::from_storage(s_, off_, shape, t);
    off_ += (bytes + 63) / 64 * 64;
    return out;
  }
  size_t size() const { return off_; }

 private:
  std::shared_ptr<HostStorage> s_;
  size_t off_ = 0;
};

void carve(const HParams& hp, int max_seq, int max_tok, int n_threads, StateData& s, Carver& c) {
  const int64_t D = hp.n_audio_state, ctx = hp.n_audio_ctx, frames = 2 * ctx;
  const int64_t dt = hp.n_text_state, L = hp.n_text_layer;
  EncoderBuffers& e = s.enc;
  e.conv_in = c.take({frames + 2, std::max<int64_t>(hp.n_mels, D)}, DType::F32);
  e.x = c.take({ctx, D}, DType::F32);
  e.h = c.take({ctx, D}, DType::F32);
  e.qkv = c.take({ctx, 3 * D}, DType::F32);
  e.attn = c.take({ctx, D}, DType::F32);
  // The MLP hidden [ctx, 4D] also holds conv1's im2col [2ctx, 3·n_mels] and conv2's [ctx, 3D].
  e.big = c.take({ctx, std::max<int64_t>(4 * D, 6 * hp.n_mels)}, DType::F32);
  e.scores = c.take({n_threads, std::min<int64_t>(kScoreRows, ctx), ctx}, DType::F32);
  e.vt = c.take({D, ctx}, DType::F32);
  const int64_t H = hp.n_text_head;
  s.cross_k = c.take({L, H, ctx, dt / H}, DType::F16);
  s.cross_v = c.take({L, H, ctx, dt / H}, DType::F16);
  s.self_k = c.take({L, max_seq, max_tok, dt}, DType::F16);
  s.self_v = c.take({L, max_seq, max_tok, dt}, DType::F16);
  const int64_t rows = std::max(max_tok, max_seq);
  DecoderBuffers& d = s.dec;
  d.x = c.take({rows, dt}, DType::F32);
  d.h = c.take({rows, dt}, DType::F32);
  d.q = c.take({rows, dt}, DType::F32);
  d.k = c.take({rows, dt}, DType::F32);
  d.v = c.take({rows, dt}, DType::F32);
  d.attn = c.take({rows, dt}, DType::F32);
  d.mlp = c.take({rows, 4 * dt}, DType::F32);
  d.pos = c.take({rows}, DType::I32);
}

}  // namespace

struct WhisperState::Impl : StateData {};

int64_t state_bytes_for(const HParams& hp, int max_sequences, int max_tokens, int n_threads) {
  StateData probe;
  Carver c(nullptr);
  carve(hp, max_sequences, max_tokens, n_threads, probe, c);
  return static_cast<int64_t>(c.size());
}

// Memory owned by the caller of decode(), re-pointed per call.
struct CallerStorage final : Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  void* data() const override { return ptr; }
  size_t size() const override { return bytes; }
};

Tensor StateData::logits_view(float* data, int64_t rows, int64_t cols) {
  logits_storage->ptr = data;
  logits_storage->bytes = static_cast<size_t>(rows * cols) * sizeof(float);
  return Tensor::from_storage(logits_storage, 0, {rows, cols}, DType::F32);
}

WhisperState::WhisperState(std::shared_ptr<const Model> model, int max_sequences, int max_tokens,
                           ThreadPool& pool)
    : model_(std::move(model)), impl_(std::make_unique<Impl>()) {
  check(model_ != nullptr, "[whisper] WhisperState needs a model");
  const HParams& hp = model_->hparams();
  check(max_sequences >= 1 && max_sequences <= 1024, "[whisper] max_sequences ", max_sequences,
        " must be in [1, 1024]");
  check(max_tokens >= 1 && max_tokens <= hp.n_text_ctx, "[whisper] max_tokens ", max_tokens,
        " must be in [1, n_text_ctx = ", hp.n_text_ctx, "]");
  Impl& s = *impl_;
  s.pool = &pool;
  s.max_sequences = max_sequences;
  s.max_tokens = max_tokens;
  s.bytes = state_bytes_for(hp, max_sequences, max_tokens, pool.size());
  s.storage = std::make_shared<HostStorage>(static_cast<size_t>(s.bytes));
  Carver c(s.storage);
  carve(hp, max_sequences, max_tokens, pool.size(), s, c);
  for (int t = 0; t < pool.size(); ++t) s.serial.push_back(std::make_unique<ThreadPool>(1));
  s.length.assign(max_sequences, 0);
  s.logits_storage = std::make_shared<CallerStorage>();
}

WhisperState::~WhisperState() = default;

void WhisperState::encode(const Tensor& mel) {
  Impl& s = *impl_;
  s.encoded = false;
  std::fill(s.length.begin(), s.length.end(), 0);
  run_encoder(*model_, s, mel);
  compute_cross_kv(*model_, s);
  s.encoded = true;
}

const Tensor& WhisperState::encoder_output() const {
  check(impl_->encoded, "[whisper] encoder_output() before encode()");
  return impl_->enc.x;
}

void WhisperState::decode(int seq, std::span<const int32_t> tokens, float* logits_out,
                          CrossAttentionCapture* capture) {
  Impl& s = *impl_;
  check(seq >= 0 && seq < s.max_sequences, "[whisper] decode: sequence ", seq, " is outside [0, ",
        s.max_sequences, ")");
  if (tokens.empty()) return;
  const int one[1] = {seq};
  run_decoder(*model_, s, one, tokens, true, logits_out, capture);
}

void WhisperState::decode_rows(int seq, std::span<const int32_t> tokens, std::span<const int> rows,
                               float* logits_out) {
  Impl& s = *impl_;
  check(seq >= 0 && seq < s.max_sequences, "[whisper] decode: sequence ", seq, " is outside [0, ",
        s.max_sequences, ")");
  check(static_cast<int64_t>(rows.size()) <= s.dec.q.size(0),
        "[whisper] decode_rows: ", rows.size(), " rows exceed the state's ", s.dec.q.size(0),
        " rows of scratch");
  for (const int r : rows)
    check(r >= 0 && static_cast<size_t>(r) < tokens.size(), "[whisper] decode_rows: row ", r,
          " is outside the ", tokens.size(), " tokens");
  if (tokens.empty()) return;
  const int one[1] = {seq};
  run_decoder(*model_, s, one, tokens, true, logits_out, nullptr, &rows);
}

void WhisperState::decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens,
                                float* logits_out) {
  Impl& s = *impl_;
  check(seqs.size() == tokens.size(), "[whisper] decode_batch: ", seqs.size(), " sequences but ",
        tokens.size(), " tokens");
  for (size_t i = 0; i < seqs.size(); ++i) {
    check(seqs[i] >= 0 && seqs[i] < s.max_sequences, "[whisper] decode_batch: sequence ", seqs[i],
          " is outside [0, ", s.max_sequences, ")");
    for (size_t j = 0; j < i; ++j)
      check(seqs[j] != seqs[i], "[whisper] decode_batch: sequence ", seqs[i], " appears twice");
  }
  if (seqs.empty()) return;
  run_decoder(*model_, s, seqs, tokens, false, logits_out, nullptr);
}

int WhisperState::seq_length(int seq) const {
  check(seq >= 0 && seq < impl_->max_sequences, "[whisper] sequence ", seq, " is outside [0, ",
        impl_->max_sequences, ")");
  return impl_->length[seq];
}

void WhisperState::truncate(int seq, int n) {
  check(n >= 0 && n <= seq_length(seq), "[whisper] truncate: sequence ", seq, " holds ",
        seq_length(seq), " tokens, cannot keep ", n);
  impl_->length[seq] = n;
}

void WhisperState::copy_sequence(int src, int dst) {
  Impl& s = *impl_;
  const int n = seq_length(src);
  seq_length(dst);  // range check
  if (src == dst) return;
  const int64_t L = model_->hparams().n_text_layer;
  for (int64_t l = 0; l < L; ++l)
    for (const Tensor* cache : {&s.self_k, &s.self_v}) {
      const Tensor layer = cache->select(0, l);
      const size_t bytes = static_cast<size_t>(n) * layer.stride_bytes(1);
      std::memcpy(layer.row(dst), layer.row(src), bytes);
    }
  s.length[dst] = n;
}

int WhisperState::max_sequences() const {
  return impl_->max_sequences;
}
int WhisperState::max_tokens() const {
  return impl_->max_tokens;
}
int64_t WhisperState::state_bytes() const {
  return impl_->bytes;
}

}  // namespace eight::whisper
