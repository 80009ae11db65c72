// GGUF reader. Layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv_count × (string key, u32 value type, value), tensor_count × (string name, u32 n_dims,
// u64 ne[n_dims], u32 ggml type, u64 offset), padding to general.alignment, tensor data. A string
// is a u64 byte length then the bytes; an array is a u32 element type, a u64 count, the elements.
//
// Every field is read through Cursor, which checks the bytes exist before touching them; counts
// are checked against the smallest encoding their items could have before anything is reserved,
// so a corrupt count fails instead of allocating.
#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "formats/gguf.h"

namespace eight::gguf {
namespace {

constexpr int kMaxArrayDepth = 8;       // nested arrays deeper than this are surely corrupt
constexpr uint32_t kMaxDimsInFile = 4;  // GGML_MAX_DIMS

class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }
  const std::string& name() const { return name_; }

  // `what` is a callable returning the field's description; it only runs on failure.
  template <class What>
  void need(uint64_t n, const What& what) const {
    if (n > remaining())
      fail("[gguf] ", name_, ": truncated: ", what(), " at byte ", pos_, " needs ", n,
           " bytes but the file has ", size_);
  }
  template <class T, class What>
  T read(const What& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, here(), sizeof v);
    pos_ += sizeof v;
    return v;
  }
  template <class What>
  std::string_view read_bytes(uint64_t n, const What& what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(here()), n);
    pos_ += n;
    return s;
  }
  template <class What>
  std::string_view read_string(const What& what) {
    const uint64_t len = read<uint64_t>([&] { return what() + " length"; });
    if (len > remaining())
      fail("[gguf] ", name_, ": ", what(), " at byte ", pos_, " claims ", len, " bytes but only ",
           remaining(), " remain in the file");
    return read_bytes(len, what);
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
};

// A non-owning reference to a callable describing the field being read (only called on failure);
// type-erased so the recursive array reader does not instantiate itself endlessly.
class Describe {
 public:
  template <class F>
  Describe(const F& f)  // NOLINT: implicit by design, like std::function_ref
      : obj_(&f), fn_([](const void* o) { return (*static_cast<const F*>(o))(); }) {}
  std::string operator()() const { return fn_(obj_); }

 private:
  const void* obj_;
  std::string (*fn_)(const void*);
};

// A name as shown in messages: a corrupt length can make a "name" megabytes long.
std::string clip(std::string_view s) {
  constexpr size_t kMax = 96;
  if (s.size() <= kMax) return std::string(s);
  return cat(s.substr(0, kMax), "... (", s.size(), " bytes)");
}

// Smallest number of bytes an element of type t can occupy in the file.
uint64_t min_encoded_size(ValueType t) {
  if (t == ValueType::STRING) return 8;     // length only
  if (t == ValueType::ARRAY) return 4 + 8;  // element type and count
  return value_type_size(t);
}

template <class What>
ValueType read_value_type(Cursor& c, const What& what) {
  const uint32_t id = c.read<uint32_t>([&] { return what() + " type"; });
  if (!value_type_valid(id))
    fail("[gguf] ", c.name(), ": ", what(), " has unknown value type ", id, " (at byte ",
         c.pos() - 4, ")");
  return static_cast<ValueType>(id);
}

Value read_value(Cursor& c, ValueType type, int depth, Describe what) {
  if (type == ValueType::STRING) return Value::string(std::string(c.read_string(what)));
  switch (type) {
    case ValueType::UINT8:
      return Value::u8(c.read<uint8_t>(what));
    case ValueType::INT8:
      return Value::i8(c.read<int8_t>(what));
    case ValueType::UINT16:
      return Value::u16(c.read<uint16_t>(what));
    case ValueType::INT16:
      return Value::i16(c.read<int16_t>(what));
    case ValueType::UINT32:
      return Value::u32(c.read<uint32_t>(what));
    case ValueType::INT32:
      return Value::i32(c.read<int32_t>(what));
    case ValueType::FLOAT32:
      return Value::f32(c.read<float>(what));
    case ValueType::BOOL:
      return Value::boolean(c.read<uint8_t>(what) != 0);
    case ValueType::UINT64:
      return Value::u64(c.read<uint64_t>(what));
    case ValueType::INT64:
      return Value::i64(c.read<int64_t>(what));
    case ValueType::FLOAT64:
      return Value::f64(c.read<double>(what));
    default:
      break;
  }
  if (depth >= kMaxArrayDepth)
    fail("[gguf] ", c.name(), ": ", what(), " nests arrays more than ", kMaxArrayDepth,
         " deep (at byte ", c.pos(), ")");
  const ValueType elem = read_value_type(c, [&] { return what() + " element"; });
  const uint64_t count = c.read<uint64_t>([&] { return what() + " count"; });
  const uint64_t min_size = min_encoded_size(elem);
  if (count > c.remaining() / min_size)
    fail("[gguf] ", c.name(), ": ", what(), " claims ", count, " items of type ",
         value_type_name(elem), " (at least ", min_size, " bytes each) but only ", c.remaining(),
         " bytes remain in the file (at byte ", c.pos(), ")");
  auto data = std::make_shared<Value::ArrayData>();
  data->elem = elem;
  data->count = count;
  if (elem == ValueType::STRING) {
    // A first pass sums the lengths (checking each) so the packed bytes are reserved exactly,
    // instead of growing by doubling to up to twice their size.
    Cursor scan = c;
    uint64_t total = 0;
    for (uint64_t i = 0; i < count; ++i)
      total += scan.read_string([&] { return cat(what(), " item ", i); }).size();
    data->bytes.reserve(total);
    data->ends.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      data->bytes += c.read_string([&] { return cat(what(), " item ", i); });
      data->ends.push_back(data->bytes.size());
    }
  } else if (elem == ValueType::ARRAY) {
    for (uint64_t i = 0; i < count; ++i)
      data->values.push_back(
          read_value(c, elem, depth + 1, [&] { return cat(what(), " item ", i); }));
  } else {
    data->bytes = c.read_bytes(count * min_size, what);
  }
  return Value::from_array_data(std::move(data));
}

// x rounded up to a multiple of a power of two `a`, or nullopt on overflow.
std::optional<uint64_t> align_up(uint64_t x, uint64_t a) {
  const uint64_t rem = x & (a - 1);
  if (rem == 0) return x;
  if (a - rem > UINT64_MAX - x) return std::nullopt;
  return x + (a - rem);
}

TensorInfo read_tensor_info(Cursor& c, uint64_t index, uint64_t alignment) {
  TensorInfo t;
  t.name = std::string(c.read_string([&] { return cat("name of tensor ", index); }));
  const auto what = [&](const char* field) {
    return [&t, field] { return cat("tensor '", clip(t.name), "' ", field); };
  };
  const uint32_t n_dims = c.read<uint32_t>(what("n_dims"));
  if (n_dims > kMaxDimsInFile)
    fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' has ", n_dims, " dimensions (at most ",
         kMaxDimsInFile, ")");
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne = c.read<uint64_t>(what("dimension"));
    if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX))
      fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' dimension ", d, " is ",
           static_cast<int64_t>(ne), " (must be positive)");
    if (static_cast<int64_t>(ne) > INT64_MAX / numel)
      fail("[gguf] ", c.name(), ": tensor '", clip(t.name),
           "' element count overflows at dimension ", d, " (", numel, " x ", ne, ")");
    numel *= static_cast<int64_t>(ne);
    t.ne.push_back(static_cast<int64_t>(ne));
  }
  for (int d = static_cast<int>(n_dims) - 1; d >= 0; --d) t.shape.push_back(t.ne[d]);
  const uint32_t type_id = c.read<uint32_t>(what("type"));
  const auto type = dtype_from_id(type_id);
  if (!type)
    fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' has unknown type id ", type_id);
  t.type = *type;
  const auto& info = dtype_info(t.type);
  const int64_t row = n_dims ? t.ne[0] : 1;
  if (row % info.block_size != 0)
    fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' of type ", info.name, " has rows of ",
         row, " elements, not a multiple of its block size ", info.block_size);
  // numel / block_size * block_bytes, checked: the result must fit in a file anyway.
  const uint64_t blocks = static_cast<uint64_t>(numel / info.block_size);
  if (blocks > UINT64_MAX / info.block_bytes)
    fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' size overflows (", numel,
         " elements of ", info.name, ")");
  t.nbytes = blocks * info.block_bytes;
  t.offset = c.read<uint64_t>(what("offset"));
  if (t.offset % alignment != 0)
    fail("[gguf] ", c.name(), ": tensor '", clip(t.name), "' offset ", t.offset,
         " is not a multiple of the alignment ", alignment);
  return t;
}

}  // namespace

File File::open(const std::string& path) {
  return parse(std::make_shared<MappedFile>(path), path);
}

File File::parse(std::shared_ptr<Storage> bytes, const std::string& name) {
  check(bytes != nullptr, "[gguf] ", name, ": no data");
  File f;
  f.name_ = name;
  f.storage_ = std::move(bytes);
  const uint64_t size = f.storage_->size();
  Cursor c(static_cast<const uint8_t*>(f.storage_->data()), size, f.name_);

  c.need(4, [] { return std::string("magic"); });
  const std::string_view magic = c.read_bytes(4, [] { return std::string("magic"); });
  if (magic != "GGUF")
    fail("[gguf] ", name, " is not a GGUF file (starts with ",
         Value::string(std::string(magic)).str(), ", expected \"GGUF\")");
  const uint32_t version = c.read<uint32_t>([] { return std::string("version"); });
  if (version == 1)
    fail("[gguf] ", name,
         ": GGUF v1 is not supported (it used 32-bit counts); convert the model "
         "again with a current llama.cpp");
  if (version > 0xffff && (version & 0xffff) == 0)
    fail("[gguf] ", name, ": version field ", version,
         " looks byte-swapped: big-endian GGUF files "
         "are not supported");
  if (version != 2 && version != 3)
    fail("[gguf] ", name, ": unsupported GGUF version ", version, " (supported: 2, 3)");
  f.version_ = version;

  const uint64_t n_tensors = c.read<uint64_t>([] { return std::string("tensor count"); });
  const uint64_t n_kv = c.read<uint64_t>([] { return std::string("metadata count"); });
  // Smallest possible entries: a key/value is 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > c.remaining() / 13 || n_tensors > c.remaining() / 24 ||
      n_kv * 13 + n_tensors * 24 > c.remaining())
    fail("[gguf] ", name, ": header claims ", n_kv, " metadata entries and ", n_tensors,
         " tensors, which cannot fit in the ", c.remaining(), " bytes after the header");

  // An entry in memory is several times larger than its smallest encoding, so a corrupt count is
  // not trusted for reserving: the lists grow with the entries actually read.
  constexpr uint64_t kReserveCap = 1024;
  f.kv_.reserve(std::min(n_kv, kReserveCap));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key(c.read_string([&] { return cat("key of metadata entry ", i); }));
    const auto what = [&] { return cat("metadata '", clip(key), "'"); };
    const ValueType type = read_value_type(c, what);
    Value v = read_value(c, type, 0, what);
    if (!f.kv_index_.emplace(key, f.kv_.size()).second)
      fail("[gguf] ", name, ": duplicate metadata key '", clip(key), "' (entry ", i, ")");
    f.kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = f.find("general.alignment")) {
    if (!a->is_integer())
      fail("[gguf] ", name, ": general.alignment is a ", value_type_name(a->type()),
           ", expected an integer");
    const uint64_t align = a->as_u64();
    if (align == 0 || !std::has_single_bit(align))
      fail("[gguf] ", name, ": general.alignment is ", a->str(), ", not a nonzero power of two");
    f.alignment_ = align;
  }

  f.tensors_.reserve(std::min(n_tensors, kReserveCap));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t = read_tensor_info(c, i, f.alignment_);
    if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second)
      fail("[gguf] ", name, ": duplicate tensor name '", clip(t.name), "' (tensor ", i, ")");
    f.tensors_.push_back(std::move(t));
  }

  const auto data_offset = align_up(c.pos(), f.alignment_);
  if (!data_offset)
    fail("[gguf] ", name, ": data section offset overflows (header ends at byte ", c.pos(),
         ", alignment ", f.alignment_, ")");
  f.data_offset_ = *data_offset;
  if (f.tensors_.empty()) return f;  // vocab-only files may end right after the header
  if (f.data_offset_ > size)
    fail("[gguf] ", name, ": data section starts at byte ", f.data_offset_, " but the file has ",
         size);
  const uint64_t data_size = size - f.data_offset_;
  for (const auto& t : f.tensors_) {
    if (t.offset > data_size)
      fail("[gguf] ", name, ": tensor '", clip(t.name), "' starts at data offset ", t.offset,
           ", past the end of the file (", size, " bytes, data from byte ", f.data_offset_, ")");
    if (t.nbytes > data_size - t.offset)
      fail("[gguf] ", name, ": tensor '", clip(t.name), "' ends at byte ",
           f.data_offset_ + t.offset + t.nbytes, " but the file has ", size);
  }
  // Tensors must not overlap (llama.cpp writes them back to back); overlap means corruption.
  std::vector<const TensorInfo*> order;
  order.reserve(f.tensors_.size());
  for (const auto& t : f.tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& prev = *order[i - 1];
    if (order[i]->offset < prev.offset + prev.nbytes)
      fail("[gguf] ", name, ": tensor '", clip(order[i]->name), "' at data offset ",
           order[i]->offset, " overlaps tensor '", clip(prev.name), "' (", prev.offset, " to ",
           prev.offset + prev.nbytes, ")");
  }
  return f;
}

const Value* File::find(const std::string& key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& File::get(const std::string& key) const {
  const Value* v = find(key);
  check(v != nullptr, "[gguf] missing key '", key, "' in ", name_);
  return *v;
}

namespace {
// Runs a typed conversion of metadata `key`, naming the key and file when it fails.
template <class F>
auto convert(const File& f, const std::string& key, F&& fn) -> decltype(fn(f.get(key))) {
  const Value& v = f.get(key);
  try {
    return fn(v);
  } catch (const Error& e) {
    fail("[gguf] key '", key, "' in ", f.path(), ": ", e.what());
  }
}
}  // namespace

std::string File::get_string(const std::string& key) const {
  return convert(*this, key, [](const Value& v) { return v.as_string(); });
}
uint32_t File::get_u32(const std::string& key) const {
  return convert(*this, key, [](const Value& v) { return v.as_u32(); });
}
float File::get_f32(const std::string& key) const {
  return convert(*this, key, [](const Value& v) { return v.as_f32(); });
}
std::string File::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
uint32_t File::get_u32(const std::string& key, uint32_t fallback) const {
  return has(key) ? get_u32(key) : fallback;
}
float File::get_f32(const std::string& key, float fallback) const {
  return has(key) ? get_f32(key) : fallback;
}
bool File::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  return convert(*this, key, [](const Value& v) { return v.as_bool(); });
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor File::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  check(t != nullptr, "[gguf] no tensor '", name, "' in ", name_);
  return tensor(*t);
}

Tensor File::tensor(const TensorInfo& info) const {
  if (!views_.empty()) return views_[tensor_index_.at(info.name)];
  return Tensor::from_storage(storage_, data_offset_ + info.offset, info.shape, info.type);
}

File File::assemble(std::string name, std::vector<std::pair<std::string, Value>> kv,
                    std::vector<std::pair<std::string, Tensor>> tensors) {
  File f;
  f.name_ = std::move(name);
  f.version_ = 3;
  for (auto& [key, value] : kv) {
    check(f.kv_index_.emplace(key, f.kv_.size()).second, "[gguf] ", f.name_, ": key '", key,
          "' given twice");
    f.kv_.emplace_back(key, std::move(value));
  }
  for (auto& [tname, t] : tensors) {
    check(t.defined() && t.is_contiguous(), "[gguf] ", f.name_, ": tensor '", tname,
          "' must be a contiguous view");
    check(f.tensor_index_.emplace(tname, f.tensors_.size()).second, "[gguf] ", f.name_,
          ": tensor '", tname, "' given twice");
    TensorInfo info;
    info.name = tname;
    info.type = t.dtype();
    info.shape = t.shape();
    for (int64_t d = t.dim() - 1; d >= 0; --d) info.ne.push_back(t.size(d));
    info.nbytes = t.nbytes();
    f.assembled_bytes_ += info.nbytes;
    f.tensors_.push_back(std::move(info));
    f.views_.push_back(std::move(t));
  }
  return f;
}

int64_t File::parameter_count() const {
  int64_t n = 0;
  for (const auto& t : tensors_) n += t.numel();
  return n;
}

}  // namespace eight::gguf
