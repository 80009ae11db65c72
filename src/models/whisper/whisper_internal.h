#pragma once
// Private to src/models/whisper: the weight structs behind whisper::Model and the buffers behind
// WhisperState, shared by whisper_model.cpp (loading), whisper_encoder.cpp, whisper_decoder.cpp
// and whisper_state.cpp.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/whisper/whisper.h"
#include "nn/linear.h"

namespace eight::whisper {

// LayerNorm's epsilon in OpenAI's model.py (nn.LayerNorm default).
inline constexpr float kLayerNormEps = 1e-5f;

struct Norm {
  Tensor weight;  // [n_state] F32
  Tensor bias;    // [n_state] F32
};

// One ResidualAttentionBlock of OpenAI's model.py. Encoder blocks leave the cross_* fields empty.
struct Model::Layer {
  Norm attn_ln;        // blocks.N.attn_ln
  nn::Linear query;    // blocks.N.attn.query [n_state, n_state] + bias
  nn::Linear key;      // blocks.N.attn.key (no bias in Whisper)
  nn::Linear value;    // blocks.N.attn.value + bias
  nn::Linear out;      // blocks.N.attn.out + bias
  Norm cross_attn_ln;  // decoder: blocks.N.cross_attn_ln
  nn::Linear cross_query, cross_key, cross_value, cross_out;  // decoder: blocks.N.cross_attn.*
  Norm mlp_ln;                                                // blocks.N.mlp_ln
  nn::Linear mlp0;  // blocks.N.mlp.0 [4·n_state, n_state]
  nn::Linear mlp2;  // blocks.N.mlp.2 [n_state, 4·n_state]
};

struct Model::Weights {
  // encoder.conv1.weight [n_state, n_mels, 3] re-laid out (once, at load) as [n_state, 3·n_mels]
  // with the tap outermost: im2col rows are then three consecutive time-major input rows.
  Tensor conv1;
  Tensor conv1_bias;  // encoder.conv1.bias, stored [n_state, 1] by whisper.cpp → [n_state] F32
  Tensor conv2;       // encoder.conv2.weight [n_state, n_state, 3] → [n_state, 3·n_state]
  Tensor conv2_bias;
  Tensor enc_pos;  // encoder.positional_embedding [n_audio_ctx, n_audio_state] F32
  std::vector<Layer> enc;
  Norm ln_post;          // encoder.ln_post
  Tensor tok_emb;        // decoder.token_embedding.weight [n_vocab, n_text_state] (any matmul type)
  Tensor tok_emb_scale;  // [n_vocab] F32 row multipliers of integer embeddings, or undefined
  Tensor dec_pos;        // decoder.positional_embedding [n_text_ctx, n_text_state] F32
  std::vector<Layer> dec;
  Norm ln;  // decoder.ln
  // Bytes of the tensors copied at load (re-laid-out convs, F32 copies of F16 vectors).
  int64_t copied_bytes = 0;
};

// Moves the encoder blocks' weights to a GPU, where run_encoder then runs the blocks.
void place_encoder_blocks(Model::Weights& w, Device device);

// Buffers of one WhisperState, all allocated in its constructor from one tracked storage.
struct EncoderBuffers {
  Tensor conv_in;  // [2·n_ctx + 2, max(n_mels, D)]: time-major padded mel, then padded conv1 out
  Tensor x;        // [n_ctx, D] residual stream; after ln_post the encoder output
  Tensor h;        // [n_ctx, D] normed input of each sub-layer
  Tensor qkv;      // [n_ctx, 3·D]
  Tensor attn;     // [n_ctx, D]
  Tensor big;      // [n_ctx, max(4·D, 3·D, 6·n_mels)] MLP hidden / im2col columns
  Tensor scores;   // [n_threads, kScoreRows, n_ctx] each thread's block of attention weights
  Tensor vt;       // [D, n_ctx] Vᵀ of every head (head h: rows h·d .. h·d + d)
};

struct DecoderBuffers {
  Tensor x, h, q, k, v, attn;  // [rows, D]
  Tensor mlp;                  // [rows, 4·D]
  Tensor pos;                  // [rows] I32 positions of a batch's rows
};

struct CallerStorage;  // whisper_state.cpp

struct StateData {
  ThreadPool* pool = nullptr;
  // One single-thread pool per thread of `pool`: a task of a parallel region runs its own matrix
  // products on the calling thread through these (a one-thread pool never leaves the caller).
  std::vector<std::unique_ptr<ThreadPool>> serial;
  int max_sequences = 0;
  int max_tokens = 0;
  std::shared_ptr<HostStorage> storage;
  int64_t bytes = 0;
  EncoderBuffers enc;
  DecoderBuffers dec;
  Tensor cross_k, cross_v;  // [n_text_layer, n_audio_ctx, D] F16
  Tensor self_k, self_v;    // [n_text_layer, max_sequences, max_tokens, D] F16
  std::vector<int> length;  // tokens cached per sequence
  bool encoded = false;
  // The caller's logits buffer as a tensor. One storage object is re-pointed at each call's
  // buffer (the previous call's view is gone by then), so a decode step allocates nothing.
  std::shared_ptr<CallerStorage> logits_storage;
  Tensor logits_view(float* data, int64_t rows, int64_t cols);
};

// Rows of queries whose scores one encoder attention task holds ([kScoreRows, n_audio_ctx] floats,
// 1.5 MiB for 1500 positions). Taller blocks amortize the products' packing of K and Vᵀ.
inline constexpr int64_t kScoreRows = 256;

// Bytes of the buffers a WhisperState(max_sequences, max_tokens) on n_threads allocates.
int64_t state_bytes_for(const HParams& hp, int max_sequences, int max_tokens, int n_threads);

// Row-parallel helpers over [rows, n] F32 tensors (whisper_encoder.cpp). Each runs on the calling
// thread when there are few rows (a decode step), else on the pool.
Tensor buffer_view(const Tensor& buf, const Dims& shape);  // contiguous view at buf's start
void layer_norm_rows(ThreadPool& pool, const Tensor& x, const Tensor& y,
                     const Norm& n);                                // y may be x
void gelu_rows(ThreadPool& pool, const Tensor& x);                  // in place, exact GELU
void add_rows(ThreadPool& pool, const Tensor& x, const Tensor& y);  // x += y

// s[j] = exp((s[j] - max(s))·scale) over a row; returns the sum (the softmax's denominator).
// gelu_row: exact GELU in place (erf to ~1e-7). whisper_math.cpp.
float exp_shifted_row(float* s, int64_t n, float scale);
void gelu_row(float* x, int64_t n);

// The encoder and decoder passes (whisper_encoder.cpp, whisper_decoder.cpp).
void run_encoder(const Model& model, StateData& s, const Tensor& mel);
void compute_cross_kv(const Model& model, StateData& s);
void run_decoder(const Model& model, StateData& s, std::span<const int> seqs,
                 std::span<const int32_t> tokens, bool one_sequence, float* logits_out,
                 CrossAttentionCapture* capture);

}  // namespace eight::whisper
