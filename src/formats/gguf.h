#pragma once
// GGUF v2/v3 reader and writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// The reader treats every file as untrusted: each length, count, dimension, offset and size is
// bounds-checked (with overflow checks) against the bytes actually present, and every failure is
// an eight::Error naming the field or tensor and the offending numbers. Tensors are zero-copy views
// over the file mapping.
//
// Shapes: GGUF stores ggml `ne` (innermost first). TensorInfo::shape is PyTorch order (outermost
// first), i.e. ne reversed; TensorInfo::ne keeps the file's order.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace eight::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// A metadata value: a scalar, a string, or an array of values (arrays may nest).
class Value {
 public:
  Value() = default;
  static Value u8(uint8_t v) { return Value(ValueType::UINT8, static_cast<uint64_t>(v)); }
  static Value i8(int8_t v) { return Value(ValueType::INT8, static_cast<int64_t>(v)); }
  static Value u16(uint16_t v) { return Value(ValueType::UINT16, static_cast<uint64_t>(v)); }
  static Value i16(int16_t v) { return Value(ValueType::INT16, static_cast<int64_t>(v)); }
  static Value u32(uint32_t v) { return Value(ValueType::UINT32, static_cast<uint64_t>(v)); }
  static Value i32(int32_t v) { return Value(ValueType::INT32, static_cast<int64_t>(v)); }
  static Value u64(uint64_t v) { return Value(ValueType::UINT64, v); }
  static Value i64(int64_t v) { return Value(ValueType::INT64, v); }
  static Value f32(float v) { return Value(ValueType::FLOAT32, static_cast<double>(v)); }
  static Value f64(double v) { return Value(ValueType::FLOAT64, v); }
  static Value boolean(bool v);
  static Value string(std::string v);
  // An array whose elements all have type `elem` (checked).
  static Value array(ValueType elem, std::vector<Value> items);
  static Value string_array(const std::vector<std::string>& items);
  static Value f32_array(const std::vector<float>& items);
  static Value i32_array(const std::vector<int32_t>& items);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::ARRAY; }
  bool is_string() const { return type_ == ValueType::STRING; }
  bool is_integer() const;
  bool is_float() const { return type_ == ValueType::FLOAT32 || type_ == ValueType::FLOAT64; }

  // Typed access; throws Error naming the types when the value does not convert exactly
  // (a negative number as unsigned, a float as integer, an out-of-range narrowing).
  uint64_t as_u64() const;
  int64_t as_i64() const;
  uint32_t as_u32() const;
  int32_t as_i32() const;
  double as_f64() const;  // any number
  float as_f32() const { return static_cast<float>(as_f64()); }
  bool as_bool() const;
  const std::string& as_string() const;
  // Arrays.
  ValueType elem_type() const;  // element type of an array
  // Every element as a Value. Arrays of scalars and strings are stored packed (about as many bytes
  // as in the file), so the first call builds the Value list once; prefer at()/string_at() or the
  // as_*s() converters for large arrays such as vocabularies.
  const std::vector<Value>& items() const;
  size_t size() const;  // element count of an array, 0 for scalars
  Value at(size_t i) const;
  std::string_view string_at(size_t i) const;  // element i of a string array, no copy
  std::vector<std::string> as_strings() const;
  std::vector<float> as_f32s() const;
  std::vector<int64_t> as_i64s() const;

  // Display form; long arrays summarized as "[a, b, c, ... (N items)]".
  std::string str(size_t max_items = 8) const;

  // Same type and same contents (arrays element by element).
  bool operator==(const Value& o) const;

  struct ArrayData;  // packed array storage (gguf_value.cpp)
  // Builds an array from packed storage (used by the reader).
  static Value from_array_data(std::shared_ptr<const ArrayData> data);
  const ArrayData* array_data() const { return arr_.get(); }

 private:
  Value(ValueType t, uint64_t u) : type_(t), u_(u) {}
  Value(ValueType t, int64_t i) : type_(t), i_(i) {}
  Value(ValueType t, double d) : type_(t), d_(d) {}
  const ArrayData& array_or_throw(const char* what) const;

  ValueType type_ = ValueType::UINT8;
  uint64_t u_ = 0;
  int64_t i_ = 0;
  double d_ = 0;
  bool b_ = false;
  std::string s_;
  std::shared_ptr<const ArrayData> arr_;
};

// Fixed byte size of a scalar value type in the file (0 for STRING and ARRAY).
size_t value_type_size(ValueType t);
// Whether a raw type id from a file names a value type.
bool value_type_valid(uint32_t id);

// Packed array storage, close to the file's own layout so a vocabulary costs about its file size:
// scalars little-endian back to back, strings concatenated with their end offsets, nested arrays
// as Values.
struct Value::ArrayData {
  ValueType elem = ValueType::UINT8;
  size_t count = 0;
  std::string bytes;           // scalar elements (value_type_size(elem) each) or string bytes
  std::vector<uint64_t> ends;  // string arrays: end of element i in `bytes`
  std::vector<Value> values;   // arrays of arrays
  mutable std::once_flag items_once;
  mutable std::vector<Value> items;  // built by Value::items() on first use
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  Dims shape;               // PyTorch order (outermost first)
  std::vector<int64_t> ne;  // ggml order as stored (innermost first)
  uint64_t offset = 0;      // relative to the start of the data section
  uint64_t nbytes = 0;      // bytes of tensor data
  int64_t numel() const { return shape.product(); }
};

class File {
 public:
  // Maps and parses a file. Throws Error for anything malformed.
  static File open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests). `name` is used in messages.
  static File parse(std::shared_ptr<Storage> bytes, const std::string& name = "<memory>");
  // A file put together in memory: the metadata as given and each tensor a view of memory owned
  // elsewhere (a Hugging Face directory's safetensors mapping, used in place without writing a
  // GGUF). path() is `name`; file_size() is the tensors' bytes; storage() is null. Throws Error
  // on a repeated key or tensor name or a non-contiguous tensor.
  static File assemble(std::string name, std::vector<std::pair<std::string, Value>> kv,
                       std::vector<std::pair<std::string, Tensor>> tensors);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of tensor data
  uint64_t file_size() const { return storage_ ? storage_->size() : assembled_bytes_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Required typed getters: throw Error "[gguf] missing key 'x' in <file>" or a type error.
  const Value& get(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  float get_f32(const std::string& key) const;
  // Optional getters with a fallback.
  std::string get_string(const std::string& key, const std::string& fallback) const;
  uint32_t get_u32(const std::string& key, uint32_t fallback) const;
  float get_f32(const std::string& key, float fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  // general.architecture, or "" when absent.
  std::string architecture() const { return get_string("general.architecture", ""); }

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // A zero-copy view of a tensor's data (read-only mapping). Throws Error when absent.
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const TensorInfo& info) const;
  // Total parameter count (elements over all tensors).
  int64_t parameter_count() const;

 private:
  std::string name_;
  std::shared_ptr<Storage> storage_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> kv_index_, tensor_index_;
  std::vector<Tensor> views_;  // assemble(): tensor i's data (empty for a parsed file)
  uint64_t assembled_bytes_ = 0;
};

// Writes GGUF v3 files that llama.cpp reads. Metadata keeps insertion order (set() on an existing
// key replaces it in place). Tensors are declared first and their data produced on demand while
// writing, so a 7B model can be converted without holding it in memory.
class Writer {
 public:
  Writer& set(const std::string& key, Value value);
  bool has(const std::string& key) const;
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  void remove(const std::string& key);
  // Copies every metadata key of `file` (in order).
  Writer& copy_metadata(const File& file);

  // Declares a tensor whose bytes come from `data` (a contiguous tensor of the same dtype and
  // shape, kept alive until write()).
  void add_tensor(const std::string& name, const Tensor& data);
  // Declares a tensor whose bytes are produced at write time by `produce(dst)`, which must fill
  // exactly dtype_row_bytes(type, numel) bytes.
  void add_tensor(const std::string& name, DType type, const Dims& shape,
                  std::function<void(uint8_t* dst)> produce);
  size_t tensor_count() const { return tensors_.size(); }
  // Tensor names may have up to 63 bytes (llama.cpp's GGML_MAX_NAME is 64 with the terminator);
  // files for stable-diffusion.cpp, which builds ggml with GGML_MAX_NAME=160, may raise it.
  void set_max_name_bytes(size_t n) { max_name_bytes_ = n; }

  // Writes to `path` via a temporary file in the same folder, renamed into place only when
  // complete (an interrupted write leaves no partial file). `progress(done, total)` is called
  // after each tensor.
  void write(const std::string& path,
             const std::function<void(size_t done, size_t total)>& progress = {}) const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    Dims shape;
    std::function<void(uint8_t*)> produce;
  };
  uint64_t alignment() const;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
  size_t max_name_bytes_ = 63;
};

// The llama.cpp file-type name for general.file_type ("Q4_K_M" for 15), or "" when unknown.
std::string file_type_name(uint32_t file_type);

}  // namespace eight::gguf
