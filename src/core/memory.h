#pragma once
// Tracked memory. Every byte eight holds is counted per device, so the planner's estimates can be
// checked against what a run really used: heap allocations (HostBuffer, arenas, device buffers)
// and file mappings (weights used in place) are counted separately and together.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace eight {

enum class DeviceKind : uint8_t { CPU = 0, Vulkan = 1 };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  static Device cpu() { return {}; }
  static Device vulkan(int i) { return {DeviceKind::Vulkan, i}; }
  std::string name() const;  // "cpu", "vulkan:0"
};

enum class MemoryKind : uint8_t { Heap = 0, Mapped = 1 };

struct MemoryStats {
  int64_t current = 0;       // heap + mapped now
  int64_t peak = 0;          // max of current since the last reset
  int64_t heap_current = 0;  // allocations only
  int64_t heap_peak = 0;
  int64_t mapped_current = 0;  // file mappings only
};

// Per-device counters. Thread-safe; cheap enough for every allocation.
class MemoryTracker {
 public:
  void add(MemoryKind kind, int64_t bytes);
  void sub(MemoryKind kind, int64_t bytes);
  MemoryStats stats() const;
  // Restart peak tracking from the current value (tests measure one phase at a time).
  void reset_peak();

 private:
  std::atomic<int64_t> heap_{0}, mapped_{0}, peak_{0}, heap_peak_{0};
};

// The tracker of a device (CPU, Vulkan 0..15).
MemoryTracker& memory_tracker(Device device = Device::cpu());

// Optional cap for host heap allocations (the planner's RAM budget); 0 means no cap. An allocation
// that would exceed it throws Error naming the sizes, before touching memory.
void set_host_heap_limit(int64_t bytes);
int64_t host_heap_limit();

// Tracked, 64-byte aligned host allocation. Throws Error (never std::bad_alloc) when the system
// or the heap limit refuses. Not zeroed unless asked.
void* host_alloc(size_t bytes, bool zero = false);
void host_free(void* p, size_t bytes);

// RAII owner of one tracked host allocation.
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(size_t bytes, bool zero = false)
      : data_(bytes ? host_alloc(bytes, zero) : nullptr), size_(bytes) {}
  ~HostBuffer() { reset(); }
  HostBuffer(HostBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  HostBuffer& operator=(HostBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void reset() {
    if (data_) host_free(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }
  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Human-readable byte counts: "4.37 GiB", "512 MiB", "900 B".
std::string format_bytes(int64_t bytes);
// Parses "8GiB", "8G", "7.5 GB", "512MiB", "1024" (bytes). Throws Error on bad input.
int64_t parse_bytes(const std::string& text);

}  // namespace eight
