#pragma once
// safetensors reader (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {str: str}}, then the tensor bytes (offsets relative to the end of the header).
//
// Files are untrusted: the header length, every dtype, shape, offset pair and size is checked
// (with overflow checks) against the bytes present, tensors may not overlap, and each failure is
// an Error naming the file, the tensor and the numbers. Tensors are zero-copy views of the file
// mapping (copied only when their data is misaligned for the element type).
//
// Sharded checkpoints (model.safetensors.index.json with a "weight_map" of tensor -> shard file)
// open as one Checkpoint.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"

namespace eight::safetensors {

// Headers larger than this are refused before parsing (the format's own readers use 100 MB).
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct TensorInfo {
  std::string name;
  std::string dtype;  // as written: "F32", "F16", "BF16", "I32", "I64", "U8", ...
  size_t element_bytes = 0;
  Dims shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t numel() const { return shape.product(); }
};

// The eight dtype a safetensors dtype is viewed as: F32/F16/BF16/F64/I8/I16/I32/I64/F8_E4M3/
// F8_E5M2 map to themselves; U8 and BOOL are viewed as I8 (same bytes). Throws Error for types
// eight cannot view (U16, U32, U64), naming the tensor.
DType view_dtype(const TensorInfo& info);

class File {
 public:
  static File open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests); `name` is used in messages.
  static File parse(std::shared_ptr<Storage> bytes, const std::string& name = "<memory>");

  const std::string& path() const { return name_; }
  uint64_t data_offset() const { return data_offset_; }                // 8 + header length
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in offset order
  const TensorInfo* find_tensor(const std::string& name) const;
  // A view of the tensor's bytes (read-only). Throws Error when absent or not viewable.
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const TensorInfo& info) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string name_;
  std::shared_ptr<Storage> storage_;
  uint64_t data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A whole checkpoint: one .safetensors file, or the shards an index names.
class Checkpoint {
 public:
  // `path`: a .safetensors file, a model.safetensors.index.json, or a directory holding
  // model.safetensors or model.safetensors.index.json.
  static Checkpoint open(const std::string& path);

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo* find_tensor(const std::string& name) const;
  Tensor tensor(const std::string& name) const;  // Error naming the checkpoint when absent
  std::vector<std::string> names() const;        // sorted
  const std::vector<File>& files() const { return files_; }

 private:
  std::string path_;
  std::vector<File> files_;
  std::unordered_map<std::string, size_t> where_;  // tensor -> index in files_
};

}  // namespace eight::safetensors
