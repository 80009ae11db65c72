#pragma once
// Reader for whisper.cpp's legacy ggml model files (magic "ggml", not GGUF). Layout, all
// little-endian: u32 magic 0x67676d6c; 11 × i32 hparams; mel filters (i32 n_mel, i32 n_fft,
// n_mel*n_fft f32); vocab (i32 count, then per token i32 length + bytes); then tensors until EOF,
// each: i32 n_dims, i32 name_len, i32 ggml type, n_dims × i32 ne (innermost first), name bytes,
// raw data with no alignment padding. The file is untrusted: every count and size is checked.
// Tensors are zero-copy views into the mapping (copied only when their data is misaligned for
// the element type), shapes in PyTorch order (ne reversed).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"

namespace eight::whisper {

inline constexpr uint32_t kGgmlMagic = 0x67676d6c;

struct HParams {
  int32_t n_vocab = 0;
  int32_t n_audio_ctx = 0;
  int32_t n_audio_state = 0;
  int32_t n_audio_head = 0;
  int32_t n_audio_layer = 0;
  int32_t n_text_ctx = 0;
  int32_t n_text_state = 0;
  int32_t n_text_head = 0;
  int32_t n_text_layer = 0;
  int32_t n_mels = 0;
  int32_t ftype = 0;  // qnt_version * 1000 + ggml file type
};

// Special-token ids. OpenAI's tokenizer lays them out after the byte-level BPE ranks:
// endoftext, startoftranscript, one token per language, translate, transcribe, startoflm,
// startofprev, nospeech, notimestamps, then 1501 timestamps (0.00 .. 30.00 s in 0.02 s steps).
// English-only models (.en, n_vocab 51864) have 50256 BPE ranks, multilingual ones 50257; v3
// (n_vocab 51866) has 100 languages instead of 99.
struct SpecialTokens {
  int32_t eot = 0;
  int32_t sot = 0;
  int32_t n_languages = 0;
  int32_t translate = 0;
  int32_t transcribe = 0;
  int32_t solm = 0;
  int32_t prev = 0;
  int32_t nospeech = 0;
  int32_t notimestamps = 0;
  int32_t timestamp_begin = 0;
  bool multilingual = false;
  int32_t language(int index) const { return sot + 1 + index; }
};
inline constexpr int32_t kTimestampTokens = 1501;

// Derives the special tokens from n_vocab; throws Error when n_vocab fits no known layout.
SpecialTokens special_tokens_for(int32_t n_vocab);

// The weight type a file-level ftype (after removing qnt_version * 1000) names.
DType ftype_to_dtype(int32_t ftype);

struct ModelFile {
  std::string path;
  HParams hparams;
  SpecialTokens special;
  DType weight_type = DType::F16;  // from hparams.ftype
  int32_t qnt_version = 0;
  Tensor mel_filters;                     // F32 [n_mel, n_fft], a view into the file
  std::vector<std::string> vocab;         // the stored token bytes, index = token id
  std::vector<std::string> tensor_names;  // in file order
  std::map<std::string, Tensor> tensors;  // views into the file, PyTorch order shapes
  int copied_tensors = 0;    // tensors whose data was misaligned in the file and so were copied
  int64_t copied_bytes = 0;  // their data
  int64_t tensor_bytes = 0;  // the data of every tensor in the file
  // A CTranslate2 directory (formats/whisper_ct2.h) also sets these from its config.json:
  std::string format = "ggml";                       // "ggml" or "ct2"
  std::vector<std::pair<int, int>> alignment_heads;  // (decoder layer, head); empty: defaults
  std::vector<int32_t> suppress_ids, suppress_ids_begin;
  std::string language, task;  // defaults for transcription ("" when the config names none)

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws Error naming the tensor when absent.
  const Tensor& tensor(const std::string& name) const;
};

// Limits for untrusted input.
inline constexpr int32_t kMaxNameLength = 512;
inline constexpr int32_t kMaxTokenLength = 1 << 16;
inline constexpr int32_t kMaxVocab = 1 << 20;

// Opens and maps `path`; throws Error naming the field and numbers on anything malformed.
ModelFile load(const std::string& path);
// The same over bytes already in a Storage (tests, in-memory files). `name` is used in messages.
ModelFile parse(std::shared_ptr<Storage> storage, const std::string& name);
// Headers only, for planning: the file is mapped and checked as load() does, but nothing is
// copied. Misaligned tensors stay views (copied_tensors / copied_bytes say what load() would
// copy), so the result must not feed a model.
ModelFile scan(const std::string& path);

// Writes `m` as a whisper.cpp ggml file: matrices and convolution kernels in `type` (F32 or F16;
// integer weights times their "<name>_scale" multipliers), positional embeddings, norms and biases
// F32, the text tokens of the vocabulary. (formats/whisper_ggml_write.cpp)
void write_ggml(const ModelFile& m, const std::string& path, DType type);

}  // namespace eight::whisper
