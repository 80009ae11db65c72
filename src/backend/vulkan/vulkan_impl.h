#pragma once
// Internals of the Vulkan backend shared by its .cpp files: the instance, the per-device context
// (logical device, compute queue, command recording, descriptor sets, staging, pipelines) and the
// dispatch helper the kernels use. Only files in backend/vulkan include this.
#include <vulkan/vulkan.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backend/vulkan/vulkan.h"

namespace eight::vulkan {

struct Buffer::Handle {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  int64_t tracked = 0;  // bytes counted on the device's tracker (the allocation's size)
};

namespace detail {

// Whether the device contexts have been destroyed at process exit.
bool shut_down();

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.
const char* result_name(VkResult r);
// Throws Error "[vulkan] <what> failed: <result>" unless r is VK_SUCCESS.
void vk_check(VkResult r, const char* what);

// The process's instance (nullptr when the loader, a driver or instance creation is missing) and
// its physical devices in the loader's order.
VkInstance instance();
const std::vector<VkPhysicalDevice>& physical_devices();
bool has_device_extension(VkPhysicalDevice pd, const char* name);
// Index of the largest DEVICE_LOCAL heap (0 when none says so).
uint32_t device_local_heap(VkPhysicalDevice pd);
// That heap's size, and (VK_EXT_memory_budget) the budget the driver gives this process, or -1.
int64_t device_local_heap_size(VkPhysicalDevice pd);
int64_t device_local_heap_budget(VkPhysicalDevice pd, int64_t* usage);

// Each frame's staging buffer: uploads and downloads larger than this go through it in pieces.
inline constexpr size_t kStagingBytes = size_t{32} << 20;

// A memory type allowed by `bits` with all of `want`; -1 when there is none.
inline int find_memory_type(const VkPhysicalDeviceMemoryProperties& mp, uint32_t bits,
                            VkMemoryPropertyFlags want) {
  for (uint32_t i = 0; i < mp.memoryTypeCount; ++i)
    if ((bits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want)
      return static_cast<int>(i);
  return -1;
}

// Bytes a Buffer of `bytes` really holds: whole 32-bit words (shaders read words), at least one
// (Vulkan has no empty buffers).
inline VkDeviceSize word_size(size_t bytes) {
  return std::max<VkDeviceSize>(4, (bytes + 3) / 4 * 4);
}

// One argument of a dispatch: a range of a device buffer. The dispatcher binds it from an offset
// aligned to minStorageBufferOffsetAlignment and writes the remainder (bytes) into the push
// constants: the first 4-byte fields of every shader's push-constant block, in binding order.
struct Arg {
  const Buffer* buffer = nullptr;
  size_t offset = 0;
};

struct Pipeline {
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
  uint32_t bindings = 0, push_bytes = 0;
};

// What one submission owns: its command buffer, fence, descriptor sets and staging buffer. Two
// frames alternate, so the host records the next submission while the device runs the last.
struct Frame {
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  VkDescriptorPool descriptors = VK_NULL_HANDLE;
  uint32_t sets_used = 0;
  Buffer::Handle staging;  // host-visible, filled front to back, created on first use
  void* staging_map = nullptr;
  size_t staging_head = 0;
  uint64_t serial = 0;  // of its last submission
  bool in_flight = false;
};

class Context {
 public:
  explicit Context(int index);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The context of device `index`, created on first use (Error when there is no such device).
  static Context& get(int index);

  int index() const { return index_; }
  VkDevice device() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  const VkPhysicalDeviceProperties& properties() const { return props_; }

  // Memory.
  int64_t budget();
  void set_budget(int64_t bytes);  // < 0: the default
  void allocate(Buffer::Handle& h, size_t bytes);
  void release(Buffer::Handle& h);  // deferred while submitted or recorded work may use it

  // Recording. `push` holds the shader's whole push-constant block; its first args.size() uint32
  // fields are overwritten with the binding remainders. groups: x, y, z workgroup counts.
  void dispatch(const std::string& shader, std::span<const Arg> args, std::span<uint8_t> push,
                uint32_t gx, uint32_t gy, uint32_t gz);
  void upload(const Buffer& dst, size_t offset, const void* src, size_t bytes);
  void download(const Buffer& src, size_t offset, void* dst, size_t bytes);
  void copy(const Buffer& src, size_t src_offset, const Buffer& dst, size_t dst_offset,
            size_t bytes);
  void flush();        // submit what is recorded; do not wait
  void synchronize();  // submit and wait for everything

 private:
  Frame& frame() { return frames_[current_]; }
  int64_t budget_locked();
  void begin_locked();
  void flush_locked();
  void wait_locked(Frame& f);
  void synchronize_locked();
  void barrier_locked();
  const Pipeline& pipeline_locked(const std::string& shader, uint32_t bindings,
                                  uint32_t push_bytes);
  void ensure_staging_locked(Frame& f);
  void collect_garbage_locked();
  void load_pipeline_cache();
  void save_pipeline_cache_locked();
  void free_handle(Buffer::Handle& h, bool staging = false);

  int index_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props_{};
  VkPhysicalDeviceMemoryProperties mem_props_{};
  uint64_t max_allocation_ = 0;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  std::array<Frame, 2> frames_;
  size_t current_ = 0;                      // the frame being recorded (or recorded next)
  bool recording_ = false;                  // frame() has commands not yet submitted
  uint64_t submitted_ = 0, completed_ = 0;  // serials: submissions made / known finished
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  bool pipeline_cache_dirty_ = false;
  std::map<std::string, Pipeline> pipelines_;
  int64_t budget_ = -1;  // < 0: not set, use the default
  bool staging_on_device_heap_ = false;
  int64_t staging_device_bytes_ = 0;  // staging counted on the device tracker (outside the budget)

  // Buffers released while work that may use them is pending: freed once submission `serial`
  // has finished.
  struct Garbage {
    Buffer::Handle handle;
    uint64_t serial;
  };
  std::vector<Garbage> garbage_;
  std::mutex mutex_;
};

}  // namespace detail
}  // namespace eight::vulkan
