#include "formats/ct2_model.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace eight::ct2 {
namespace {

// Sequential little-endian reader over the parts read back to back. Every read is checked
// against the bytes that remain, so a truncated or lying file ends in an Error.
class Cursor {
 public:
  Cursor(const ModelBin& m) : m_(m) {
    uint64_t at = 0;
    for (const auto& p : m.parts) {
      starts_.push_back(at);
      at += p->size();
    }
  }

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return m_.size - pos_; }

  void need(uint64_t n, const std::string& what) const {
    check(n <= remaining(), "[ct2] ", m_.path, ": ", what, " needs ", n, " bytes at offset ", pos_,
          " but the file has ", m_.size);
  }
  void read(void* dst, uint64_t n, const std::string& what) {
    need(n, what);
    copy_out(pos_, n, static_cast<uint8_t*>(dst));
    pos_ += n;
  }
  template <class T>
  T value(const std::string& what) {
    T v;
    read(&v, sizeof(T), what);
    return v;
  }
  std::string string(const std::string& what) {
    const uint16_t len = value<uint16_t>(what + " length");
    check(len >= 1, "[ct2] ", m_.path, ": ", what, " at offset ", pos_ - 2, " has length 0");
    std::string s(len, '\0');
    read(s.data(), len, what);
    check(s.back() == '\0', "[ct2] ", m_.path, ": ", what, " at offset ", pos_ - len,
          " does not end in NUL");
    s.pop_back();
    check(s.find('\0') == std::string::npos, "[ct2] ", m_.path, ": ", what, " at offset ",
          pos_ - len, " has a NUL inside");
    return s;
  }
  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }

  // Copies [at, at + n) of the joined bytes into dst (n already checked).
  void copy_out(uint64_t at, uint64_t n, uint8_t* dst) const {
    size_t i = part_of(at);
    while (n > 0) {
      const uint64_t local = at - starts_[i];
      const uint64_t take = std::min<uint64_t>(n, m_.parts[i]->size() - local);
      std::memcpy(dst, static_cast<const uint8_t*>(m_.parts[i]->data()) + local, take);
      dst += take, at += take, n -= take;
      ++i;
    }
  }
  // The part holding byte `at` (at < size).
  size_t part_of(uint64_t at) const {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), at);
    return static_cast<size_t>(it - starts_.begin()) - 1;
  }
  uint64_t start_of(size_t part) const { return starts_[part]; }

 private:
  const ModelBin& m_;
  std::vector<uint64_t> starts_;
  uint64_t pos_ = 0;
};

DType to_dtype(VarType t) {
  switch (t) {
    case VarType::F32:
      return DType::F32;
    case VarType::I8:
      return DType::I8;
    case VarType::I16:
      return DType::I16;
    case VarType::I32:
      return DType::I32;
    case VarType::F16:
      return DType::F16;
    case VarType::BF16:
      return DType::BF16;
  }
  return DType::F32;
}

Variable read_variable(Cursor& c, const ModelBin& m, uint32_t index) {
  Variable v;
  const uint64_t header_at = c.pos();
  v.name = c.string("variable " + std::to_string(index) + " name");
  const uint8_t rank = c.value<uint8_t>("rank of '" + v.name + "'");
  check(rank <= kMaxRank, "[ct2] ", m.path, ": variable '", v.name, "' at offset ", header_at,
        " has rank ", int(rank), " (at most ", kMaxRank, ")");
  uint64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = c.value<uint32_t>("dimension of '" + v.name + "'");
    check(!__builtin_mul_overflow(numel, uint64_t{d}, &numel), "[ct2] ", m.path, ": variable '",
          v.name, "' has too many elements");
    v.shape.push_back(d);
  }
  uint64_t nbytes = 0;
  if (m.binary_version >= 4) {
    const uint8_t id = c.value<uint8_t>("type of '" + v.name + "'");
    check(id <= 5, "[ct2] ", m.path, ": variable '", v.name, "' has unknown type id ", int(id),
          " (known: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)");
    v.type = static_cast<VarType>(id);
    nbytes = c.value<uint32_t>("byte count of '" + v.name + "'");
  } else {
    // Before version 4 the type was implied by the item size (CTranslate2's own old rule).
    const uint8_t item = c.value<uint8_t>("item size of '" + v.name + "'");
    check(item == 4 || item == 2 || item == 1, "[ct2] ", m.path, ": variable '", v.name,
          "' has item size ", int(item), " (known: 4 f32, 2 i16, 1 i8)");
    v.type = item == 4 ? VarType::F32 : (item == 2 ? VarType::I16 : VarType::I8);
    const uint64_t count = c.value<uint32_t>("element count of '" + v.name + "'");
    nbytes = count * item;
  }
  uint64_t expected = 0;
  check(!__builtin_mul_overflow(numel, uint64_t{var_type_size(v.type)}, &expected) &&
            nbytes == expected,
        "[ct2] ", m.path, ": variable '", v.name, "' of shape ", v.shape.str(), " and type ",
        var_type_name(v.type), " has ", nbytes, " bytes of data (expected ", expected, ")");
  c.need(nbytes, "data of '" + v.name + "'");
  v.offset = c.pos();
  v.nbytes = nbytes;
  c.skip(nbytes, "data of '" + v.name + "'");
  return v;
}

}  // namespace

const char* var_type_name(VarType t) {
  static const char* names[] = {"float32", "int8", "int16", "int32", "float16", "bfloat16"};
  return names[static_cast<int>(t)];
}

size_t var_type_size(VarType t) {
  static const size_t sizes[] = {4, 1, 2, 4, 2, 2};
  return sizes[static_cast<int>(t)];
}

const Variable& ModelBin::get(const std::string& name) const {
  const auto it = index.find(name);
  check(it != index.end(), "[ct2] ", path, ": variable '", name, "' is missing");
  return variables[it->second];
}

Tensor ModelBin::tensor(const std::string& name) const {
  const Variable& v = get(name);
  const DType dt = to_dtype(v.type);
  const Dims shape = v.shape.empty() ? Dims{1} : v.shape;
  const Cursor c(*this);
  if (v.nbytes > 0) {
    const size_t part = c.part_of(v.offset);
    const uint64_t local = v.offset - c.start_of(part);
    const auto* at = static_cast<const uint8_t*>(parts[part]->data()) + local;
    // No padding in the format: a view is used in place only where its type's alignment holds.
    if (local + v.nbytes <= parts[part]->size() &&
        reinterpret_cast<uintptr_t>(at) % var_type_size(v.type) == 0)
      return Tensor::from_storage(parts[part], static_cast<size_t>(local), shape, dt);
  }
  Tensor out = Tensor::empty(shape, dt);
  c.copy_out(v.offset, v.nbytes, static_cast<uint8_t*>(out.raw()));
  return out;
}

double ModelBin::scalar(const std::string& name) const {
  const Variable& v = get(name);
  check(v.numel() == 1, "[ct2] ", path, ": variable '", name, "' has shape ", v.shape.str(),
        ", expected a scalar");
  uint8_t bytes[4] = {};
  Cursor(*this).copy_out(v.offset, v.nbytes, bytes);
  switch (v.type) {
    case VarType::F32: {
      float f;
      std::memcpy(&f, bytes, 4);
      return f;
    }
    case VarType::I8:
      return static_cast<int8_t>(bytes[0]);
    case VarType::I16: {
      int16_t i;
      std::memcpy(&i, bytes, 2);
      return i;
    }
    case VarType::I32: {
      int32_t i;
      std::memcpy(&i, bytes, 4);
      return i;
    }
    default:
      fail("[ct2] ", path, ": scalar '", name, "' has type ", var_type_name(v.type));
  }
}

ModelBin parse(std::vector<std::shared_ptr<Storage>> parts, const std::string& name) {
  ModelBin m;
  m.path = name;
  check(!parts.empty(), "[ct2] ", name, ": no data");
  for (const auto& p : parts) {
    check(p != nullptr, "[ct2] ", name, ": no data");
    m.size += p->size();
  }
  m.parts = std::move(parts);
  Cursor c(m);
  m.binary_version = c.value<uint32_t>("binary version");
  check(m.binary_version >= 1 && m.binary_version <= kMaxBinaryVersion, "[ct2] ", name,
        ": binary version ", m.binary_version, " is not 1..", kMaxBinaryVersion,
        " (not a CTranslate2 model.bin, or one newer than this reader)");
  if (m.binary_version >= 2) {
    m.spec = c.string("spec name");
    m.revision = c.value<uint32_t>("spec revision");
  }
  const uint32_t n = c.value<uint32_t>("variable count");
  // A variable takes at least 9 header bytes (a 1-byte name and its NUL, rank, type, size), so
  // the bytes left bound the count before anything is reserved.
  check(n <= c.remaining() / 9, "[ct2] ", name, ": variable count ", n, " cannot fit in the ",
        c.remaining(), " bytes left");
  m.variables.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Variable v = read_variable(c, m, i);
    check(m.index.emplace(v.name, m.variables.size()).second, "[ct2] ", name, ": variable '",
          v.name, "' appears twice");
    m.variables.push_back(std::move(v));
  }
  if (m.binary_version >= 3) {
    const uint32_t n_alias = c.value<uint32_t>("alias count");
    check(n_alias <= c.remaining() / 6, "[ct2] ", name, ": alias count ", n_alias,
          " cannot fit in the ", c.remaining(), " bytes left");
    for (uint32_t i = 0; i < n_alias; ++i) {
      const std::string alias = c.string("alias " + std::to_string(i));
      const std::string target = c.string("target of alias '" + alias + "'");
      const auto it = m.index.find(target);
      check(it != m.index.end(), "[ct2] ", name, ": alias '", alias, "' names '", target,
            "', which is not a variable");
      check(m.index.emplace(alias, it->second).second, "[ct2] ", name, ": alias '", alias,
            "' is also a variable or an earlier alias");
      // CTranslate2 aliases the quantization scale along with the weight.
      const auto scale = m.index.find(target + "_scale");
      if (scale != m.index.end()) m.index.emplace(alias + "_scale", scale->second);
    }
  }
  check(c.remaining() == 0, "[ct2] ", name, ": ", c.remaining(), " bytes follow the last ",
        m.binary_version >= 3 ? "alias" : "variable", " at offset ", c.pos());
  return m;
}

ModelBin load(const std::vector<std::string>& paths) {
  check(!paths.empty(), "[ct2] no model.bin given");
  std::vector<std::shared_ptr<Storage>> parts;
  for (const auto& p : paths) parts.push_back(std::make_shared<MappedFile>(p));
  std::string name = paths[0];
  if (paths.size() > 1) name += " (+" + std::to_string(paths.size() - 1) + " parts)";
  return parse(std::move(parts), name);
}

}  // namespace eight::ct2
