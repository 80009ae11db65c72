// GGUF v3 writer: header built in memory, tensor data produced one tensor at a time into one reused
// tracked buffer, all written to a temporary file that is renamed into place only when complete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/memory.h"
#include "formats/gguf.h"

namespace eight::gguf {
namespace {

constexpr int kMaxDimsInFile = 4;

template <class T>
void put(std::string& out, T v) {
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  out.append(b, sizeof v);
}

void put_string(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}

void put_array_payload(std::string& out, const Value& v) {
  const auto& a = *v.array_data();
  put<uint32_t>(out, static_cast<uint32_t>(a.elem));
  put<uint64_t>(out, a.count);
  if (a.elem == ValueType::STRING) {
    for (size_t i = 0; i < a.count; ++i) put_string(out, v.string_at(i));
  } else if (a.elem == ValueType::ARRAY) {
    for (const auto& item : a.values) put_array_payload(out, item);
  } else {
    out += a.bytes;  // packed exactly as the file stores them
  }
}

void put_value(std::string& out, const Value& v) {
  switch (v.type()) {
    case ValueType::UINT8:
      return put(out, static_cast<uint8_t>(v.as_u64()));
    case ValueType::INT8:
      return put(out, static_cast<int8_t>(v.as_i64()));
    case ValueType::UINT16:
      return put(out, static_cast<uint16_t>(v.as_u64()));
    case ValueType::INT16:
      return put(out, static_cast<int16_t>(v.as_i64()));
    case ValueType::UINT32:
      return put(out, v.as_u32());
    case ValueType::INT32:
      return put(out, v.as_i32());
    case ValueType::FLOAT32:
      return put(out, v.as_f32());
    case ValueType::BOOL:
      return put(out, static_cast<uint8_t>(v.as_bool()));
    case ValueType::UINT64:
      return put(out, v.as_u64());
    case ValueType::INT64:
      return put(out, v.as_i64());
    case ValueType::FLOAT64:
      return put(out, v.as_f64());
    case ValueType::STRING:
      return put_string(out, v.as_string());
    case ValueType::ARRAY:
      return put_array_payload(out, v);
  }
}

uint64_t pad_to(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

// A temporary file beside the destination; removed unless commit() renamed it into place.
class TempFile {
 public:
  explicit TempFile(const std::string& dest) : dest_(dest) {
    const auto dir = std::filesystem::path(dest).parent_path();
    std::string base = ".";
    base += std::filesystem::path(dest).filename().string();
    base += ".tmp-XXXXXX";
    path_ = ((dir.empty() ? std::filesystem::path(".") : dir) / base).string();
    fd_ = ::mkstemp(path_.data());
    check(fd_ >= 0, "[gguf] cannot create a temporary file beside '", dest,
          "': ", std::strerror(errno));
    ::fchmod(fd_, 0644);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      check(w > 0, "[gguf] writing '", path_, "' failed: ", std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void commit() {
    check(::fsync(fd_) == 0, "[gguf] flushing '", path_, "' failed: ", std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    check(rc == 0, "[gguf] closing '", path_, "' failed: ", std::strerror(errno));
    check(::rename(path_.c_str(), dest_.c_str()) == 0, "[gguf] renaming '", path_, "' to '", dest_,
          "' failed: ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string dest_, path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

Writer& Writer::set(const std::string& key, Value value) {
  check(!key.empty(), "[gguf] metadata keys must not be empty");
  if (key == "general.alignment") {
    check(value.is_integer() && value.as_u64() > 0 && std::has_single_bit(value.as_u64()) &&
              value.as_u64() <= UINT32_MAX,
          "[gguf] general.alignment must be a nonzero power of two, got ", value.str());
  }
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  kv_.emplace_back(key, std::move(value));
  return *this;
}

bool Writer::has(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return true;
  return false;
}

void Writer::remove(const std::string& key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

Writer& Writer::copy_metadata(const File& file) {
  for (const auto& [k, v] : file.metadata()) set(k, v);
  return *this;
}

void Writer::add_tensor(const std::string& name, const Tensor& data) {
  check(data.defined(), "[gguf] tensor '", name, "' has no data");
  check(data.device() == Device::cpu(), "[gguf] tensor '", name, "' is on ", data.device().name(),
        "; copy it to the host first");
  check(data.is_contiguous(), "[gguf] tensor '", name, "' must be contiguous");
  const size_t bytes = data.nbytes();
  add_tensor(name, data.dtype(), data.shape(),
             [data, bytes](uint8_t* dst) { std::memcpy(dst, data.raw(), bytes); });
}

void Writer::add_tensor(const std::string& name, DType type, const Dims& shape,
                        std::function<void(uint8_t* dst)> produce) {
  check(!name.empty() && name.size() <= max_name_bytes_, "[gguf] tensor name '", name, "' has ",
        name.size(), " bytes (1 to ", max_name_bytes_, " allowed)");
  check(shape.size() >= 1 && shape.size() <= kMaxDimsInFile, "[gguf] tensor '", name,
        "' has shape ", shape.str(), ": 1 to ", kMaxDimsInFile, " dimensions allowed");
  for (int64_t d : shape)
    check(d > 0, "[gguf] tensor '", name, "' has shape ", shape.str(), ": dimensions must be > 0");
  check(!dtype_is_internal(type), "[gguf] tensor '", name, "' has type ", dtype_name(type),
        ", which GGUF has no id for (convert it to f16, bf16 or a quantized type first)");
  const int64_t bs = dtype_block_size(type);
  check(shape[shape.size() - 1] % bs == 0, "[gguf] tensor '", name, "' of type ", dtype_name(type),
        " has rows of ", shape[shape.size() - 1], " elements, not a multiple of ", bs);
  check(static_cast<bool>(produce), "[gguf] tensor '", name, "' has no data producer");
  for (const auto& t : tensors_)
    check(t.name != name, "[gguf] tensor '", name, "' was added twice");
  tensors_.push_back({name, type, shape, std::move(produce)});
}

uint64_t Writer::alignment() const {
  for (const auto& [k, v] : kv_)
    if (k == "general.alignment") return v.as_u64();
  return 32;
}

void Writer::write(const std::string& path,
                   const std::function<void(size_t done, size_t total)>& progress) const {
  const uint64_t align = alignment();
  std::string header;
  header.append("GGUF");
  put<uint32_t>(header, 3);
  put<uint64_t>(header, tensors_.size());
  put<uint64_t>(header, kv_.size());
  for (const auto& [k, v] : kv_) {
    put_string(header, k);
    put<uint32_t>(header, static_cast<uint32_t>(v.type()));
    put_value(header, v);
  }
  uint64_t offset = 0, max_bytes = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors_) {
    put_string(header, t.name);
    put<uint32_t>(header, static_cast<uint32_t>(t.shape.size()));
    for (int d = t.shape.size() - 1; d >= 0; --d) put<uint64_t>(header, t.shape[d]);  // ggml ne
    put<uint32_t>(header, static_cast<uint32_t>(t.type));
    put<uint64_t>(header, offset);
    sizes.push_back(dtype_row_bytes(t.type, t.shape.product()));
    max_bytes = std::max(max_bytes, sizes.back());
    offset = pad_to(offset + sizes.back(), align);
  }
  header.resize(pad_to(header.size(), align), '\0');

  TempFile out(path);
  out.write(header.data(), header.size());
  HostBuffer buffer(max_bytes + align);  // + room for the zero padding after each tensor
  for (size_t i = 0; i < tensors_.size(); ++i) {
    uint8_t* dst = buffer.as<uint8_t>();
    tensors_[i].produce(dst);
    const uint64_t padded = pad_to(sizes[i], align);
    std::memset(dst + sizes[i], 0, padded - sizes[i]);
    out.write(dst, padded);
    if (progress) progress(i + 1, tensors_.size());
  }
  out.commit();
}

}  // namespace eight::gguf
