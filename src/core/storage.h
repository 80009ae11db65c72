#pragma once
// Storage: the bytes behind tensors. Kinds: a tracked host heap buffer, a read-only mapping of a
// file (weights used in place, zero copy), and (in backend/vulkan) device memory. Tensors hold a
// shared_ptr to their storage because many views share one file mapping or arena.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/memory.h"

namespace eight {

class Storage {
 public:
  virtual ~Storage() = default;
  virtual void* data() const = 0;
  virtual size_t size() const = 0;
  virtual Device device() const { return Device::cpu(); }
  virtual bool writable() const { return true; }
};

// A tracked heap allocation.
class HostStorage final : public Storage {
 public:
  explicit HostStorage(size_t bytes, bool zero = false) : buffer_(bytes, zero) {}
  void* data() const override { return buffer_.data(); }
  size_t size() const override { return buffer_.size(); }

 private:
  HostBuffer buffer_;
};

// A whole file mapped read-only. The mapping is counted as MemoryKind::Mapped on the CPU tracker.
class MappedFile final : public Storage {
 public:
  // Throws Error naming the path and the system's reason when the file cannot be opened/mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile() override;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  void* data() const override { return data_; }
  size_t size() const override { return size_; }
  bool writable() const override { return false; }
  const std::string& path() const { return path_; }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data_); }
  // Hint the kernel that [offset, offset+len) will be read soon / sequentially.
  void advise_willneed(size_t offset, size_t len) const;

 private:
  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Bytes borrowed from memory owned elsewhere (e.g. a test's vector); the caller keeps it alive.
class BorrowedStorage final : public Storage {
 public:
  BorrowedStorage(void* data, size_t size, bool writable = true)
      : data_(data), size_(size), writable_(writable) {}
  void* data() const override { return data_; }
  size_t size() const override { return size_; }
  bool writable() const override { return writable_; }

 private:
  void* data_;
  size_t size_;
  bool writable_;
};

// Reads a whole small file (a config, a tokenizer, a tag list) into a string. Errors name `who`
// (e.g. "[blip]") and the path when the file cannot be read or holds more than max_bytes, so a
// huge or special file never becomes an unbounded allocation.
std::string read_small_file(const std::string& path, const char* who,
                            int64_t max_bytes = int64_t{1} << 30);

}  // namespace eight
