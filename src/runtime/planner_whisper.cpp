#include "runtime/planner_whisper.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "core/error.h"

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

namespace {

// Little-endian reader over a FILE with the planner's error messages.
struct HeaderReader {
  std::FILE* f;
  const std::string& path;
  int32_t i32(const char* what) {
    int32_t v = 0;
    check(std::fread(&v, 4, 1, f) == 1, "[planner] '", path, "' ends inside ", what);
    return v;
  }
  void skip(int64_t n, const char* what) {
    check(n >= 0 && std::fseek(f, n, SEEK_CUR) == 0, "[planner] '", path, "' ends inside ", what);
  }
};

// The byte alignment whisper::load needs for a tensor of this type to be used in place.
int64_t alignment(DType t) {
  const int64_t bytes = static_cast<int64_t>(dtype_block_bytes(t));
  if (!dtype_is_quantized(t)) return bytes;
  return bytes % 4 == 0 ? 4 : (bytes % 2 == 0 ? 2 : 1);
}

DType ggml_type(int32_t id, const std::string& path) {
  switch (id) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 6:
      return DType::Q5_0;
    case 7:
      return DType::Q5_1;
    case 8:
      return DType::Q8_0;
    default:
      fail("[planner] '", path, "': tensor type ", id, " is not a whisper.cpp type");
  }
}

}  // namespace

WhisperMemory plan_whisper_file(const std::string& path, int hypotheses, int max_tokens,
                                int n_threads) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  check(f != nullptr, "[planner] cannot open '", path, "'");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  std::fseek(f, 0, SEEK_END);
  const int64_t file_bytes = std::ftell(f);
  std::rewind(f);
  HeaderReader in{f, path};
  check(static_cast<uint32_t>(in.i32("the magic")) == whisper::kGgmlMagic, "[planner] '", path,
        "' is not a whisper.cpp ggml file");
  int32_t h[11];
  for (int32_t& v : h) v = in.i32("the hyperparameters");
  for (int i = 0; i < 10; ++i)
    check(h[i] >= 1 && h[i] <= (1 << 20), "[planner] '", path, "': hyperparameter ", i, " = ", h[i],
          " is out of range");
  check(h[10] >= 0, "[planner] '", path, "': ftype ", h[10], " is negative");
  const whisper::HParams hp{.n_vocab = h[0],
                            .n_audio_ctx = h[1],
                            .n_audio_state = h[2],
                            .n_audio_head = h[3],
                            .n_audio_layer = h[4],
                            .n_text_ctx = h[5],
                            .n_text_state = h[6],
                            .n_text_head = h[7],
                            .n_text_layer = h[8],
                            .n_mels = h[9],
                            .ftype = h[10]};
  WhisperMemory m = plan_whisper_memory(hp, whisper::ftype_to_dtype(hp.ftype % 1000), hypotheses,
                                        max_tokens, n_threads);
  const int32_t n_mel = in.i32("the mel filters"), n_fft = in.i32("the mel filters");
  in.skip(int64_t{4} * n_mel * n_fft, "the mel filters");
  const int32_t n_tokens = in.i32("the vocabulary");
  check(n_tokens >= 0 && n_tokens <= whisper::kMaxVocab, "[planner] '", path, "': vocabulary of ",
        n_tokens);
  for (int32_t i = 0; i < n_tokens; ++i) in.skip(in.i32("the vocabulary"), "the vocabulary");
  int64_t tensor_bytes = 0;
  for (;;) {
    int32_t n_dims = 0;
    if (std::fread(&n_dims, 4, 1, f) != 1) break;  // end of file: the tensors are done
    const int32_t name_len = in.i32("a tensor header");
    const DType t = ggml_type(in.i32("a tensor header"), path);
    check(n_dims >= 1 && n_dims <= 4 && name_len >= 1 && name_len <= whisper::kMaxNameLength,
          "[planner] '", path, "': malformed tensor header (", n_dims, " dims, name of ", name_len,
          " bytes)");
    int64_t n = 1, ne0 = 0;
    for (int i = 0; i < n_dims; ++i) {
      const int32_t e = in.i32("a tensor header");
      check(e >= 1, "[planner] '", path, "': tensor dimension ", e);
      if (i == 0) ne0 = e;
      n *= e;
    }
    in.skip(name_len, "a tensor name");
    const int64_t bytes = static_cast<int64_t>(dtype_row_bytes(t, ne0)) * (n / ne0);
    if (std::ftell(f) % alignment(t) != 0) m.misaligned_copies += bytes;
    tensor_bytes += bytes;
    in.skip(bytes, "tensor data");
    check(std::ftell(f) <= file_bytes, "[planner] '", path,
          "' is truncated: a tensor's data ends at ", std::ftell(f), " but the file has ",
          file_bytes, " bytes");
  }
  m.file_overhead = file_bytes - tensor_bytes;
  return m;
}

}  // namespace eight
