#pragma once
// Reader for CTranslate2's model.bin (the weights of a CTranslate2 model directory, as
// faster-whisper and the Systran/faster-whisper-* repositories ship them). Layout, little-endian,
// no alignment padding anywhere (python/ctranslate2/specs/model_spec.py, _serialize):
//   u32 binary_version (1..6)
//   version >= 2: string spec name, u32 spec revision
//   u32 n_variables, then per variable:
//     string name; u8 rank; rank × u32 dims;
//     version >= 4: u8 type id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte count
//     version <  4: u8 item size (4 f32, 2 i16, 1 i8), u32 element count
//     the raw data
//   version >= 3: u32 n_aliases, then per alias: string alias, string target name
// where a string is u16 length (bytes + 1), the bytes, and a NUL. Variables are written in name
// order; an alias names a variable whose value equals another one's (e.g. Whisper's output
// projection is the token embedding), and CTranslate2 also aliases "<alias>_scale" to
// "<target>_scale". The file is untrusted: every count, length and size is checked against the
// bytes that remain. The file may come split into byte ranges (model.bin.part1, .part2, ...):
// the parts are read as one stream, and a tensor that straddles two parts is copied.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"

namespace eight::ct2 {

enum class VarType : uint8_t { F32 = 0, I8 = 1, I16 = 2, I32 = 3, F16 = 4, BF16 = 5 };
const char* var_type_name(VarType t);
size_t var_type_size(VarType t);

struct Variable {
  std::string name;
  Dims shape;  // empty for a scalar
  VarType type = VarType::F32;
  uint64_t offset = 0;  // of the data, in the whole (joined) file
  uint64_t nbytes = 0;
  int64_t numel() const { return shape.empty() ? 1 : shape.product(); }
};

// Limits for untrusted input (CTranslate2's own limits are the field widths).
inline constexpr int kMaxRank = 4;
inline constexpr uint32_t kMaxBinaryVersion = 6;

struct ModelBin {
  std::string path;  // for messages
  uint32_t binary_version = 0;
  std::string spec;  // "WhisperSpec"; empty for version 1
  uint32_t revision = 1;
  std::vector<Variable> variables;              // in file order
  std::map<std::string, size_t> index;          // name or alias → variables[i]
  std::vector<std::shared_ptr<Storage>> parts;  // the file's bytes, in order
  uint64_t size = 0;                            // bytes of all parts

  bool has(const std::string& name) const { return index.count(name) != 0; }
  // Throws Error naming the variable when absent.
  const Variable& get(const std::string& name) const;
  // The variable as a tensor of the matching DType (I8, I16, I32, F32, F16, BF16): a view into
  // the mapping, or a copy when the data is misaligned for its type or straddles two parts.
  Tensor tensor(const std::string& name) const;
  // A rank-0 (or one-element) numeric variable as a double; throws naming it otherwise.
  double scalar(const std::string& name) const;
};

// Parses the bytes of `parts` read back to back; `name` is used in messages.
ModelBin parse(std::vector<std::shared_ptr<Storage>> parts, const std::string& name);
// Maps and parses the files (one model.bin, or its parts in order).
ModelBin load(const std::vector<std::string>& paths);

}  // namespace eight::ct2
