#pragma once
// CTranslate2 Whisper directories (faster-whisper's format: model.bin, config.json, vocabulary.*
// or tokenizer.json, optionally preprocessor_config.json) read into a whisper::ModelFile with
// whisper.cpp's (OpenAI's) tensor names, so whisper::Model binds either format the same way.
//
// CTranslate2's Whisper spec (python/ctranslate2/specs/whisper_spec.py, revisions 1..3) names
// the weights encoder/conv{1,2}/{weight,bias}, encoder/position_encodings/encodings,
// {encoder,decoder}/layer_N/self_attention/linear_0 (q, k, v fused along the rows; k's bias is
// zeros), .../linear_1 (out), decoder/layer_N/attention/linear_0 (q), linear_1 (k, v fused),
// linear_2 (out), .../ffn/linear_{0,1}, layer_norm/{gamma,beta}, decoder/embeddings/weight and
// decoder/projection/weight (an alias of the embedding). The fused weights become row slices
// (views, no copy).
//
// Quantized weights keep their 8 or 16 bits: CTranslate2 stores int8 rows w·s (s = 127/max|w|
// per row, one float32 per row in "<weight>_scale") and int16 as w·s with one scale per tensor.
// An int8 matrix becomes Q8_0 blocks with scale 1 (so the matrix kernel computes Σ q·x exactly
// as the int8 values), int16 becomes F16 (its values are integers |q| <= 1024, exact in F16),
// and the ModelFile gets "<name>.weight_scale" F32 [rows] holding the multipliers 1/s that
// whisper::Model applies to each output feature. Rows that are not whole Q8_0 blocks, and the
// convolutions (re-laid out at load anyway), are dequantized to F32 instead.
#include <string>
#include <vector>

#include "formats/ct2_model.h"
#include "formats/whisper_ggml.h"

namespace eight::whisper {

// True when `path` is a directory with config.json and model.bin (or model.bin.part1).
bool is_ct2_dir(const std::string& path);
// A whisper.cpp ggml file (magic "ggml") or a CT2 Whisper directory: what whisper::Model loads.
bool is_whisper_model(const std::string& path);
// The model.bin of a CT2 directory: {dir/model.bin}, or {dir/model.bin.part1, .part2, ...} when
// only the parts (a plain byte split) lie there. Throws Error when neither exists.
std::vector<std::string> ct2_model_files(const std::string& dir);

// Reads a CT2 Whisper directory. Throws Error naming the file and the problem.
ModelFile load_ct2(const std::string& dir);
// The same over an already parsed model.bin plus the directory's JSON/text files' contents
// (empty strings when absent): tests and the fuzz target.
ModelFile ct2_to_model_file(const ct2::ModelBin& bin, const std::string& config_json,
                            const std::string& vocabulary, bool vocabulary_is_json,
                            const std::string& tokenizer_json,
                            const std::string& preprocessor_json);

// Slaney-style mel filter bank (librosa.filters.mel(sr=16000, n_fft=400, n_mels), which
// OpenAI's mel_filters.npz and faster-whisper's feature extractor hold): F32 [n_mels, 201].
Tensor slaney_mel_filters(int n_mels);

// GPT-2 byte-level BPE strings ("Ġhello") back to the bytes they stand for; strings holding a
// character outside the 256-character alphabet (special tokens) are returned unchanged.
std::string byte_level_decode(const std::string& token);

}  // namespace eight::whisper
