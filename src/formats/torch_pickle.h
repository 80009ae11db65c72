#pragma once
// A restricted unpickler for PyTorch checkpoints (pickle protocols 0-5 as torch.save writes them).
//
// Pickle is a small stack machine whose GLOBAL/REDUCE opcodes can call any Python function; a
// hostile checkpoint uses that to run `os.system`. This reader executes nothing: it builds an inert
// tree of Values. GLOBAL/STACK_GLOBAL resolve only an allow-list (torch's tensor/parameter rebuild
// functions and storage types, collections.OrderedDict, torch.Size, builtins.set/frozenset, ...);
// every other global is an Error naming it ("global 'posix.system' is not allowed"). REDUCE of an
// allowed global is interpreted here (e.g. _rebuild_tensor_v2 becomes a Tensor value that refers
// to a storage by key); inert data globals (numpy scalars, torch.device, argparse.Namespace) become
// Object values holding their arguments and state.
//
// The input is untrusted: memo size, stack depth, nesting, string/bytes lengths, container sizes
// and the total number of opcodes are bounded (Limits), and every read is checked against the end
// of the buffer. Failures throw eight::Error naming the input, the opcode and its byte offset.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace eight::pickle {

struct Limits {
  size_t max_ops = 50'000'000;             // opcodes executed
  size_t max_stack = 1'000'000;            // values on the stack (all marks together)
  size_t max_memo = 10'000'000;            // memo entries
  size_t max_depth = 200;                  // container nesting of the result
  uint64_t max_string_bytes = 1ull << 30;  // one str/bytes value
  uint64_t max_total_bytes = 4ull << 30;   // all str/bytes values together
  size_t max_items = 50'000'000;           // elements in all containers together
  size_t max_values = 20'000'000;          // values created
};

// A storage referenced by a persistent id ('storage', <torch.XStorage>, key, location, numel).
struct StorageRef {
  std::string key;    // the zip entry name under data/, or the legacy storage key
  std::string dtype;  // safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32",
                      // "I16", "I8", "U8", "BOOL", "C64" ...
  size_t element_bytes = 0;
  int64_t numel = 0;     // elements as declared in the persistent id
  std::string location;  // "cpu", "cuda:0" (informational)
};

// A tensor made by torch._utils._rebuild_tensor(_v2) / _rebuild_parameter.
struct TensorRef {
  StorageRef storage;
  int64_t storage_offset = 0;  // elements
  std::vector<int64_t> shape, stride;
  bool requires_grad = false;
};

enum class Kind : uint8_t {
  None,
  Bool,
  Int,     // fits int64: `i`
  BigInt,  // a longer Python int: `s` holds its little-endian two's-complement bytes
  Float,
  Str,
  Bytes,
  List,
  Tuple,
  Dict,     // dict or collections.OrderedDict, in insertion order
  Set,      // set / frozenset
  Tensor,   // a TensorRef
  Storage,  // a bare StorageRef (rare: a storage saved on its own)
  Global,   // an allowed global itself, not called (e.g. torch.float32 passed as data)
  Object,   // an inert instance of an allowed data class (argparse.Namespace, numpy.dtype ...)
};

std::string_view kind_name(Kind k);  // "none", "dict", "tensor", ...

// One unpickled value. Values are owned by their Document and point at each other with plain
// pointers (pickles can build cycles through the memo; the Document frees them all at once).
struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                    // Str / Bytes / BigInt content; Global / Object name
  std::vector<const Value*> items;  // List / Tuple / Set items; Object arguments
  std::vector<std::pair<const Value*, const Value*>> dict;  // Dict entries in order
  const Value* state = nullptr;  // what BUILD set (Object attributes, an OrderedDict's _metadata)
  std::shared_ptr<const TensorRef> tensor;    // Kind::Tensor
  std::shared_ptr<const StorageRef> storage;  // Kind::Storage

  bool is(Kind k) const { return kind == k; }
  // Dict (or Object attribute) lookup by string key; nullptr when absent or not a dict.
  const Value* get(std::string_view key) const;
  // Short human description ("dict(3)", "str 'abc'", "tensor F32 [2, 3]").
  std::string describe() const;
};

// Owns every Value of one unpickled program.
class Document {
 public:
  const Value& root() const { return *root_; }
  Value* make(Kind k);
  void set_root(const Value* v) { root_ = v; }
  size_t size() const { return values_.size(); }

 private:
  std::deque<Value> values_;
  const Value* root_ = nullptr;
};

// Whether `module.name` is on the allow-list (exposed for tests and messages).
bool global_allowed(std::string_view module, std::string_view name);

// Runs the pickle program in [data, data+size) and returns the value STOP leaves. `name` is used
// in messages. `end` (optional) receives the offset just past STOP, so a caller can read the
// several pickles in a row of the legacy format.
std::shared_ptr<Document> unpickle(const uint8_t* data, size_t size, const std::string& name,
                                   const Limits& limits = {}, size_t* end = nullptr);

}  // namespace eight::pickle
