// Device memory: the per-device budget, tracked allocations (Buffer), deferred frees and the
// staging buffers.
#include <algorithm>

#include "backend/vulkan/vulkan_impl.h"
#include "core/error.h"
#include "core/memory.h"

namespace eight::vulkan {
namespace detail {

int64_t Context::budget() {
  std::lock_guard lock(mutex_);
  return budget_locked();
}

int64_t Context::budget_locked() {
  if (budget_ >= 0) return budget_;
  int64_t usage = 0;
  const int64_t reported = device_local_heap_budget(physical_, &usage);
  // The driver's budget for this process (includes what eight holds now), else the heap size.
  const int64_t base = reported >= 0 ? reported : device_local_heap_size(physical_);
  budget_ = std::max<int64_t>(0, base - kDeviceReserveBytes);
  return budget_;
}

void Context::set_budget(int64_t bytes) {
  std::lock_guard lock(mutex_);
  budget_ = bytes;  // < 0: recomputed from the device on the next budget()
}

void Context::allocate(Buffer::Handle& h, size_t bytes) {
  // Shaders read whole 32-bit words, so the buffer ends on one (and Vulkan has no empty buffers).
  const VkDeviceSize size = word_size(bytes);
  VkBufferCreateInfo bi{.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                        .size = size,
                        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                        .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  check(max_allocation_ == 0 || size <= max_allocation_, "[vulkan] buffer of ", bytes,
        " bytes exceeds vulkan:", index_, "'s largest allocation (", max_allocation_, " bytes)");
  // Under the lock: the budget check and the tracker update are one step for concurrent callers.
  std::lock_guard lock(mutex_);
  vk_check(vkCreateBuffer(device_, &bi, nullptr, &h.buffer), "vkCreateBuffer");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device_, h.buffer, &req);
  const int64_t need = static_cast<int64_t>(req.size);
  auto& tracker = memory_tracker(Device::vulkan(index_));
  // The staging buffers are the runtime's own, inside the reserve the budget already leaves out.
  const int64_t held = tracker.stats().heap_current - staging_device_bytes_;
  const int64_t cap = budget_locked();
  if (held + need > cap) {
    vkDestroyBuffer(device_, h.buffer, nullptr);
    h.buffer = VK_NULL_HANDLE;
    fail("[vulkan] allocation of ", need, " bytes on vulkan:", index_, " refused: ", held,
         " bytes held + ", need, " requested exceeds the budget of ", cap, " bytes (",
         format_bytes(held), " + ", format_bytes(need), " > ", format_bytes(cap), ")");
  }
  int type = find_memory_type(mem_props_, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (type < 0) type = find_memory_type(mem_props_, req.memoryTypeBits, 0);
  VkMemoryAllocateInfo mi{.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                          .allocationSize = req.size,
                          .memoryTypeIndex = static_cast<uint32_t>(type)};
  const VkResult r =
      type < 0 ? VK_ERROR_OUT_OF_DEVICE_MEMORY : vkAllocateMemory(device_, &mi, nullptr, &h.memory);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(device_, h.buffer, nullptr);
    h.buffer = VK_NULL_HANDLE;
    h.memory = VK_NULL_HANDLE;
    fail("[vulkan] vkAllocateMemory of ", need, " bytes on vulkan:", index_,
         " failed: ", result_name(r), " (", held, " bytes held, budget ", cap, ")");
  }
  vk_check(vkBindBufferMemory(device_, h.buffer, h.memory, 0), "vkBindBufferMemory");
  h.tracked = need;
  tracker.add(MemoryKind::Heap, need);
}

void Context::free_handle(Buffer::Handle& h, bool staging) {
  if (h.buffer) vkDestroyBuffer(device_, h.buffer, nullptr);
  if (h.memory) vkFreeMemory(device_, h.memory, nullptr);
  if (h.tracked) {
    const bool device_heap = !staging || staging_on_device_heap_;
    memory_tracker(device_heap ? Device::vulkan(index_) : Device::cpu())
        .sub(MemoryKind::Heap, h.tracked);
    if (staging && device_heap) staging_device_bytes_ -= h.tracked;
  }
  h = {};
}

void Context::release(Buffer::Handle& h) {
  std::lock_guard lock(mutex_);
  // Recorded commands run in the next submission; submitted ones may still be running.
  const uint64_t last_use = recording_ ? submitted_ + 1 : submitted_;
  if (last_use > completed_) {
    garbage_.push_back({h, last_use});
    h = {};
  } else {
    free_handle(h);
  }
}

void Context::collect_garbage_locked() {
  std::erase_if(garbage_, [&](Garbage& g) {
    if (g.serial > completed_) return false;
    free_handle(g.handle);
    return true;
  });
}

void Context::ensure_staging_locked(Frame& f) {
  if (f.staging_map) return;
  VkBufferCreateInfo bi{
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = kStagingBytes,
      .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  vk_check(vkCreateBuffer(device_, &bi, nullptr, &f.staging.buffer), "vkCreateBuffer (staging)");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device_, f.staging.buffer, &req);
  // Host-cached when possible, so downloads read fast; coherent, so no explicit flushes.
  int type =
      find_memory_type(mem_props_, req.memoryTypeBits,
                       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                           VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  if (type < 0)
    type = find_memory_type(
        mem_props_, req.memoryTypeBits,
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
  if (type < 0) {
    free_handle(f.staging, true);
    fail("[vulkan] vulkan:", index_, " has no host-visible coherent memory for staging");
  }
  VkMemoryAllocateInfo mi{.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                          .allocationSize = req.size,
                          .memoryTypeIndex = static_cast<uint32_t>(type)};
  const VkResult r = vkAllocateMemory(device_, &mi, nullptr, &f.staging.memory);
  if (r != VK_SUCCESS) {
    free_handle(f.staging, true);
    vk_check(r, "vkAllocateMemory (staging buffer)");
  }
  vk_check(vkBindBufferMemory(device_, f.staging.buffer, f.staging.memory, 0),
           "vkBindBufferMemory");
  vk_check(vkMapMemory(device_, f.staging.memory, 0, VK_WHOLE_SIZE, 0, &f.staging_map),
           "vkMapMemory");
  // Staging is counted where it lives: system RAM on a discrete GPU (host tracker), the device's
  // heap on integrated GPUs and lavapipe. It is outside the device budget: the planner's reserve
  // covers these 2 x 32 MiB.
  const uint32_t heap = mem_props_.memoryTypes[type].heapIndex;
  staging_on_device_heap_ =
      (mem_props_.memoryHeaps[heap].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
  f.staging.tracked = static_cast<int64_t>(req.size);
  memory_tracker(staging_on_device_heap_ ? Device::vulkan(index_) : Device::cpu())
      .add(MemoryKind::Heap, f.staging.tracked);
  if (staging_on_device_heap_) staging_device_bytes_ += f.staging.tracked;
}
}  // namespace detail

void set_device_budget(int device, int64_t bytes) {
  detail::Context::get(device).set_budget(bytes);
}

int64_t device_budget(int device) {
  return detail::Context::get(device).budget();
}

BufferRef buffer_of(const Tensor& t) {
  const auto* b = dynamic_cast<const Buffer*>(t.storage().get());
  check(b != nullptr, "[vulkan] ", t.str(), " is not in Vulkan device memory");
  return {b, t.offset()};
}

Buffer::Buffer(int device, size_t bytes)
    : device_(device), size_(bytes), handle_(std::make_unique<Handle>()) {
  detail::Context::get(device).allocate(*handle_, bytes);
}

Buffer::~Buffer() {
  if (handle_ && handle_->buffer && !detail::shut_down())
    detail::Context::get(device_).release(*handle_);
}

}  // namespace eight::vulkan
