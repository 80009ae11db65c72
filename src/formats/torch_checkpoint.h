#pragma once
// PyTorch checkpoints (.pt, .pth, .bin, .ckpt) as torch.save writes them, read without Python:
//  - zip format (torch >= 1.6 default): entries ARCHIVE/data.pkl (the pickle), ARCHIVE/data/KEY
//    (one raw little-endian storage per key), ARCHIVE/byteorder, ARCHIVE/version; entries are
//    stored (deflated ones are inflated into tracked memory); ZIP64 records are understood.
//  - legacy format (_use_new_zipfile_serialization=False): pickles of the magic number, protocol
//    version and sys_info, then the object pickle, a pickle of the storage key list, and per key
//    an 8-byte element count followed by the raw storage.
//  - the pre-1.0 tar format is refused with a clear Error.
// The pickle is read by the restricted unpickler (formats/torch_pickle.h): nothing is executed,
// unknown globals are an Error naming them.
//
// Files are untrusted: every zip offset and size, every storage length, and every tensor's
// extent (offset + strides x shape) is checked against the bytes present, with overflow checks.
// Tensors are zero-copy views of the file mapping where the tensor is contiguous and aligned;
// otherwise a contiguous copy in tracked host memory.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "formats/torch_pickle.h"

namespace eight::torch {

struct TensorInfo {
  std::string name;   // dotted path in the object tree: "state_dict.encoder.layer.0.weight";
                      // list items by index ("0.weight"); a bare saved tensor is "root"
  std::string dtype;  // safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I16",
                      // "I8", "U8", "BOOL"
  size_t element_bytes = 0;
  Dims shape;
  Dims stride;                 // elements, as saved
  int64_t storage_offset = 0;  // elements
  std::string storage_key;     // tensors sharing a storage have the same key
  bool contiguous = true;      // stride is the C-contiguous one for shape
  int64_t numel() const { return shape.product(); }
};

// The eight dtype a torch dtype is viewed as (U8 and BOOL as I8, the same bytes). Throws Error
// for types eight cannot view (complex, float8, ...), naming the tensor.
DType view_dtype(const TensorInfo& info);

class Checkpoint {
 public:
  // Maps the file. Throws Error naming the path for anything unreadable, corrupt or disallowed.
  static Checkpoint open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests); `name` is used in messages.
  static Checkpoint parse(std::shared_ptr<Storage> bytes, const std::string& name = "<memory>",
                          const pickle::Limits& limits = {});

  const std::string& path() const { return name_; }
  const std::string& format() const { return format_; }  // "zip" or "legacy"
  // The unpickled object (dicts, lists, strings, numbers, tensor refs): non-tensor values such as
  // DeepBooru's `tags` list or audiocraft's `xp.cfg` are read from here.
  const pickle::Value& root() const { return doc_->root(); }
  // Every tensor in the tree, in the order the pickle holds them. A tensor reached twice (the
  // same object under two names) is listed under each name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // Read-only view (or contiguous copy, see above), dtype view_dtype(info): U8/BOOL bytes as I8.
  // Throws Error when absent or not viewable.
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const TensorInfo& info) const;

  // The prefix (with its trailing dot, or "") under which "the state dict" sits in common
  // wrappers: "state_dict.", "model.", "module.", "best_state.", "model.module." ...; the names
  // of tensors() that start with it, less the prefix, are the model's parameter names.
  std::string state_dict_prefix() const;
  // tensor(state_dict_prefix() + key).
  Tensor state_tensor(const std::string& key) const;

 private:
  struct StorageBytes {
    size_t offset = 0;  // into storage_ (or copy_)
    uint64_t size = 0;
    std::shared_ptr<Storage> holder;  // the file mapping or an inflated copy
  };
  void collect(const pickle::Value& v, const std::string& prefix, int depth);
  const StorageBytes& storage_bytes(const std::string& key, const std::string& tensor) const;

  std::string name_, format_;
  std::shared_ptr<Storage> storage_;
  std::shared_ptr<pickle::Document> doc_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, StorageBytes> storages_;
};

// True when the file starts like a torch checkpoint (zip holding a data.pkl, or a pickle with the
// legacy magic number), for format dispatch by content rather than extension.
bool looks_like_checkpoint(const std::string& path);

}  // namespace eight::torch
