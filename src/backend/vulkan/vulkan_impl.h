#pragma once
// Internals of the Vulkan backend shared by its .cpp files: the instance, the per-device context
// (logical device, compute queue, command recording, descriptor sets, staging, pipelines) and the
// dispatch helper the kernels use. Only files in backend/vulkan include this.
#include <vulkan/vulkan.h>

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
  void release(Buffer::Handle& h);  // deferred while recorded work may still use it

  // Recording. `push` holds the shader's whole push-constant block; its first args.size() uint32
  // fields are overwritten with the binding remainders. groups: x, y, z workgroup counts.
  void dispatch(const std::string& shader, std::span<const Arg> args, std::span<uint8_t> push,
                uint32_t gx, uint32_t gy, uint32_t gz);
  void upload(const Buffer& dst, size_t offset, const void* src, size_t bytes);
  void download(const Buffer& src, size_t offset, void* dst, size_t bytes);
  void synchronize();

 private:
  void begin_locked();
  void submit_and_wait_locked();
  void barrier_locked();
  const Pipeline& pipeline_locked(const std::string& shader, uint32_t bindings,
                                  uint32_t push_bytes);
  void ensure_staging_locked();
  void load_pipeline_cache();
  void save_pipeline_cache_locked();
  void free_handle(Buffer::Handle& h);

  int index_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props_{};
  VkPhysicalDeviceMemoryProperties mem_props_{};
  uint64_t max_allocation_ = 0;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  uint32_t descriptor_sets_used_ = 0;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  bool pipeline_cache_dirty_ = false;
  std::map<std::string, Pipeline> pipelines_;
  bool recording_ = false;
  int64_t budget_ = -1;  // < 0: not set, use the default

  // Host-visible staging buffer, filled front to back between submissions.
  Buffer::Handle staging_;
  void* staging_map_ = nullptr;
  size_t staging_size_ = 0, staging_head_ = 0;
  bool staging_on_device_heap_ = false;

  std::vector<Buffer::Handle> deferred_;  // released after the next fence wait
  std::mutex mutex_;
};

}  // namespace detail
}  // namespace eight::vulkan
