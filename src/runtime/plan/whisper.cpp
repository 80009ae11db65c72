#include "runtime/plan/whisper.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "formats/whisper_ct2.h"

namespace eight {

WhisperMemory plan_whisper_memory(const whisper::HParams& hp, DType weight_type, int hypotheses,
                                  int max_tokens, int n_threads) {
  check(hypotheses >= 1 && max_tokens >= 1 && n_threads >= 1, "[planner] whisper: hypotheses ",
        hypotheses, ", max tokens ", max_tokens, " and threads ", n_threads, " must be >= 1");
  const int64_t D = hp.n_audio_state, C = hp.n_audio_ctx, M = hp.n_mels;
  const int64_t Le = hp.n_audio_layer, L = hp.n_text_layer, V = hp.n_vocab;
  const int64_t B = hypotheses, N = max_tokens, T = n_threads;
  auto bytes = [](DType t, int64_t n) { return static_cast<int64_t>(dtype_row_bytes(t, n)); };
  const DType conv_type = weight_type == DType::F32 ? DType::F32 : DType::F16;

  WhisperMemory m;
  const int64_t matrices = Le * 12 * D * D + L * 16 * D * D;
  // f32 vectors: per encoder layer 2 norms (4D) + q, v, out biases (3D) + MLP biases (5D); per
  // decoder layer 3 norms (6D) + 6 attention biases + MLP biases (5D); ln_post, ln; conv biases.
  const int64_t vectors = Le * 12 * D + L * 17 * D + 4 * D + 2 * D;
  m.weights = bytes(weight_type, matrices) + bytes(weight_type, V * D) +
              2 * bytes(conv_type, 3 * D * (M + D)) + 4 * (C * D + hp.n_text_ctx * D + vectors);
  m.encoder = 4 * ((2 * C + 2) * std::max(M, D) + 6 * C * D + C * std::max(4 * D, 6 * M) +
                   T * std::min<int64_t>(256, C) * C + D * C);
  m.cross_kv = 2 * L * C * D * 2;
  m.self_kv = 2 * L * B * N * D * 2;
  const int64_t R = std::max(N, B);
  m.decoder = 4 * R * 10 * D + 4 * R;
  return m;
}

WhisperMemory plan_whisper_file(const std::string& path, int hypotheses, int max_tokens,
                                int n_threads) {
  if (whisper::is_ct2_dir(path)) {
    // A CTranslate2 directory is read (its tensors are not laid out as the ggml formula's, and
    // int8 matrices are repacked): the mapping stays counted, plus every tensor that is not a
    // view into it (copied for alignment, repacked or converted).
    const whisper::ModelFile f = whisper::load_ct2(path);
    WhisperMemory m =
        plan_whisper_memory(f.hparams, f.weight_type, hypotheses, max_tokens, n_threads);
    int64_t file = 0;
    for (const auto& p : whisper::ct2_model_files(path))
      file += static_cast<int64_t>(std::filesystem::file_size(p));
    m.misaligned_copies = f.copied_bytes;
    // Mapped bytes beyond the weights' own (names, headers; an int8 file's bytes are fewer than
    // its repacked weights, whose copies are billed above).
    m.file_overhead = std::max<int64_t>(0, file - m.weights);
    return m;
  }
  // The loader's own header walk (mapped, nothing copied) so the plan and the loader cannot
  // disagree about sizes or alignment.
  const whisper::ModelFile f = whisper::scan(path);
  WhisperMemory m =
      plan_whisper_memory(f.hparams, f.weight_type, hypotheses, max_tokens, n_threads);
  m.misaligned_copies = f.copied_bytes;
  m.file_overhead = static_cast<int64_t>(std::filesystem::file_size(path)) - f.tensor_bytes;
  return m;
}

}  // namespace eight
