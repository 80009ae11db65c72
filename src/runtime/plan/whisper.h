#pragma once
// What a Whisper run costs in memory, from the hyperparameters and weight type alone (nothing
// loaded): the weights as whisper.cpp lays them out, the encoder's activations for one 30 s
// window, the cross-attention K/V of every decoder layer (one window, shared by all hypotheses),
// each hypothesis's self-attention cache, and the decoder's scratch rows.
//
//   D = n_audio_state = n_text_state, C = n_audio_ctx, M = n_mels, L = n_text_layer,
//   B = hypotheses (beam size or best-of), N = max tokens per hypothesis, t = threads
//   weights     matrices (4·D² attention + 8·D² MLP per encoder layer, 8·D² + 8·D² per decoder
//               layer, the n_vocab·D token embedding) in the file's type; conv kernels 3·D·(M+D)
//               in f16 (f32 files: f32), counted twice (the loader keeps a re-laid-out copy);
//               positional embeddings, norms and biases in f32
//   encoder     4·[(2C+2)·max(M, D) + 6·C·D + C·max(4D, 6M) + t·min(256, C)·C + D·C]
//               (padded conv input, x, norm, q‖k‖v, attention out, MLP hidden / im2col, per-thread
//               score blocks, Vᵀ)
//   cross K/V   2 · L · C · D · 2 bytes (f16)
//   self K/V    2 · L · B · N · D · 2 bytes (f16)
//   decoder     4·R·(10·D) + 4·R with R = max(N, B) rows
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "formats/whisper_ggml.h"

namespace eight {

struct WhisperMemory {
  int64_t weights = 0;  // what whisper::Model::weight_bytes() reports
  // The rest of the file mapping (header, mel filters, vocabulary) and the tensors whose data is
  // misaligned in the file (whisper.cpp writes no padding), which the reader copies to the heap
  // while the mapping stays counted. Known only with the file (plan_whisper_file).
  int64_t file_overhead = 0;
  int64_t misaligned_copies = 0;
  int64_t encoder = 0;
  int64_t cross_kv = 0;
  int64_t self_kv = 0;
  int64_t decoder = 0;
  int64_t state() const { return encoder + cross_kv + self_kv + decoder; }
  int64_t total() const { return weights + file_overhead + misaligned_copies + state(); }
};

// weight_type: the type of the file's matrices (F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
WhisperMemory plan_whisper_memory(const whisper::HParams& hp, DType weight_type, int hypotheses,
                                  int max_tokens, int n_threads);

// The same for a whisper.cpp file from its headers alone (hyperparameters, then each tensor's
// header, skipping the data), with the file overhead and misaligned copies filled in.
WhisperMemory plan_whisper_file(const std::string& path, int hypotheses, int max_tokens,
                                int n_threads);

}  // namespace eight
