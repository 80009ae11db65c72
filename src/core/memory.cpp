#include "core/memory.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace eight {

std::string Device::name() const {
  return kind == DeviceKind::CPU ? std::string("cpu") : cat("vulkan:", index);
}

namespace {

void raise_peak(std::atomic<int64_t>& peak, int64_t value) {
  int64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

std::atomic<int64_t> g_heap_limit{0};

}  // namespace

void MemoryTracker::add(MemoryKind kind, int64_t bytes) {
  int64_t heap, mapped;
  if (kind == MemoryKind::Heap) {
    heap = heap_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    mapped = mapped_.load(std::memory_order_relaxed);
    raise_peak(heap_peak_, heap);
  } else {
    mapped = mapped_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    heap = heap_.load(std::memory_order_relaxed);
  }
  raise_peak(peak_, heap + mapped);
}

void MemoryTracker::sub(MemoryKind kind, int64_t bytes) {
  (kind == MemoryKind::Heap ? heap_ : mapped_).fetch_sub(bytes, std::memory_order_relaxed);
}

MemoryStats MemoryTracker::stats() const {
  MemoryStats s;
  s.heap_current = heap_.load();
  s.mapped_current = mapped_.load();
  s.current = s.heap_current + s.mapped_current;
  s.peak = peak_.load();
  s.heap_peak = heap_peak_.load();
  return s;
}

void MemoryTracker::reset_peak() {
  peak_.store(heap_.load() + mapped_.load());
  heap_peak_.store(heap_.load());
}

MemoryTracker& memory_tracker(Device device) {
  static MemoryTracker cpu;
  static MemoryTracker gpu[16];
  if (device.kind == DeviceKind::CPU) return cpu;
  check(device.index >= 0 && device.index < 16, "[memory] no tracker for device ", device.name());
  return gpu[device.index];
}

void set_host_heap_limit(int64_t bytes) {
  g_heap_limit.store(bytes);
}
int64_t host_heap_limit() {
  return g_heap_limit.load();
}

void* host_alloc(size_t bytes, bool zero) {
  auto& tracker = memory_tracker(Device::cpu());
  const int64_t limit = g_heap_limit.load();
  if (limit > 0) {
    const int64_t now = tracker.stats().heap_current;
    check(now + static_cast<int64_t>(bytes) <= limit, "[memory] allocating ",
          format_bytes(static_cast<int64_t>(bytes)), " would bring host memory to ",
          format_bytes(now + static_cast<int64_t>(bytes)), ", over the budget of ",
          format_bytes(limit));
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  check(rounded >= bytes, "[memory] allocation size ", bytes, " overflows");
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  check(p != nullptr, "[memory] the system refused an allocation of ",
        format_bytes(static_cast<int64_t>(bytes)));
  if (zero) std::memset(p, 0, rounded);
  tracker.add(MemoryKind::Heap, static_cast<int64_t>(bytes));
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  std::free(p);
  memory_tracker(Device::cpu()).sub(MemoryKind::Heap, static_cast<int64_t>(bytes));
}

std::string format_bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  const double ab = std::fabs(b);
  char buf[64];
  if (ab >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (ab >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else if (ab >= 1024.0)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

int64_t parse_bytes(const std::string& text) {
  const char* s = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(s, &end);
  check(end != s && std::isfinite(value) && value >= 0, "[memory] '", text,
        "' is not a size (examples: 8GiB, 7.5GB, 512MiB)");
  std::string unit;
  for (const char* p = end; *p; ++p)
    if (!std::isspace(static_cast<unsigned char>(*p)))
      unit += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
  double mult = 1;
  if (unit.empty() || unit == "b")
    mult = 1;
  else if (unit == "k" || unit == "kib")
    mult = 1024.0;
  else if (unit == "m" || unit == "mib")
    mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb")
    mult = 1e3;
  else if (unit == "mb")
    mult = 1e6;
  else if (unit == "gb")
    mult = 1e9;
  else if (unit == "tb")
    mult = 1e12;
  else
    fail("[memory] unknown size unit '", unit, "' in '", text,
         "' (use B, KiB, MiB, GiB, KB, MB, GB)");
  const double bytes = value * mult;
  check(bytes < 9.0e18, "[memory] size '", text, "' is too large");
  return static_cast<int64_t>(bytes);
}

}  // namespace eight
