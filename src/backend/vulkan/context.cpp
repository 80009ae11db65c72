// The per-device context: logical device, compute queue, the two frames (command buffer, fence,
// descriptor sets) that recording alternates between, uploads/downloads, and the pipelines with
// their on-disk cache. Device memory is in memory.cpp.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "backend/vulkan/shader_table.h"
#include "backend/vulkan/vulkan_impl.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"

namespace eight::vulkan {
namespace detail {
namespace {

constexpr uint32_t kMaxBindings = 8;
// Descriptor sets per submission; recording more submits first.
constexpr uint32_t kDescriptorSets = 1024;

// Set once the contexts are gone at exit: a Buffer destroyed later (a static that outlived the
// registry) leaves its memory to the process exit instead of touching a destroyed device.
// Constant-initialized and trivially destructible, so it is readable at any point of the exit.
constinit std::atomic<bool> g_shut_down{false};

struct Registry {
  std::mutex mutex;
  std::array<std::unique_ptr<Context>, 16> contexts;
  Registry() {
    // The trackers must outlive the contexts, whose destructors release device memory.
    memory_tracker(Device::vulkan(0));
  }
  ~Registry() {
    // Before the process exits: finish the GPU's work and write the pipeline caches.
    for (auto& c : contexts) c.reset();
    g_shut_down = true;
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

std::filesystem::path cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "eight";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".cache" / "eight";
  return {};
}

std::filesystem::path pipeline_cache_path(const VkPhysicalDeviceProperties& p) {
  const auto dir = cache_dir();
  if (dir.empty()) return {};
  std::string uuid;
  for (uint8_t b : p.pipelineCacheUUID)
    uuid += cat(std::hex, static_cast<int>(b) >> 4, static_cast<int>(b) & 15);
  return dir / cat("vulkan-", std::hex, p.vendorID, "-", p.deviceID, "-", uuid, ".cache");
}

}  // namespace

bool shut_down() {
  return g_shut_down;
}

Context& Context::get(int index) {
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  check(index >= 0 && index < static_cast<int>(physical_devices().size()) && index < 16,
        "[vulkan] no device vulkan:", index, " (", describe_devices(), ")");
  auto& slot = reg.contexts[static_cast<size_t>(index)];
  if (!slot) {
    slot = std::make_unique<Context>(index);
    log_debug("[vulkan] vulkan:", index, " ", slot->properties().deviceName, " ready");
  }
  return *slot;
}

Context::Context(int index)
    : index_(index), physical_(physical_devices()[static_cast<size_t>(index)]) {
  VkPhysicalDeviceMaintenance3Properties m3{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 p2{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                 .pNext = &m3};
  vkGetPhysicalDeviceProperties2(physical_, &p2);
  props_ = p2.properties;
  max_allocation_ = m3.maxMemoryAllocationSize;
  vkGetPhysicalDeviceMemoryProperties(physical_, &mem_props_);

  // The first queue family with compute: the universal queue on every GPU eight targets (a
  // compute-only family would not run one stream of dependent dispatches any faster).
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &n, nullptr);
  std::vector<VkQueueFamilyProperties> families(n);
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &n, families.data());
  int family = -1;
  for (uint32_t i = 0; i < n && family < 0; ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = static_cast<int>(i);
  check(family >= 0, "[vulkan] device vulkan:", index, " (", props_.deviceName,
        ") has no compute queue");
  queue_family_ = static_cast<uint32_t>(family);

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qi{.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                             .queueFamilyIndex = queue_family_,
                             .queueCount = 1,
                             .pQueuePriorities = &priority};
  std::vector<const char*> exts;
  if (has_device_extension(physical_, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME))
    exts.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  VkDeviceCreateInfo di{.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                        .queueCreateInfoCount = 1,
                        .pQueueCreateInfos = &qi,
                        .enabledExtensionCount = static_cast<uint32_t>(exts.size()),
                        .ppEnabledExtensionNames = exts.data()};
  vk_check(vkCreateDevice(physical_, &di, nullptr, &device_), "vkCreateDevice");
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

  VkCommandPoolCreateInfo pi{.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                             .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                             .queueFamilyIndex = queue_family_};
  vk_check(vkCreateCommandPool(device_, &pi, nullptr, &pool_), "vkCreateCommandPool");
  VkDescriptorPoolSize size{.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                            .descriptorCount = kDescriptorSets * kMaxBindings};
  VkDescriptorPoolCreateInfo dpi{.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                 .maxSets = kDescriptorSets,
                                 .poolSizeCount = 1,
                                 .pPoolSizes = &size};
  for (Frame& f : frames_) {
    VkCommandBufferAllocateInfo ai{.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                   .commandPool = pool_,
                                   .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                   .commandBufferCount = 1};
    vk_check(vkAllocateCommandBuffers(device_, &ai, &f.cmd), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fi{.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    vk_check(vkCreateFence(device_, &fi, nullptr, &f.fence), "vkCreateFence");
    vk_check(vkCreateDescriptorPool(device_, &dpi, nullptr, &f.descriptors),
             "vkCreateDescriptorPool");
  }
  load_pipeline_cache();
}

Context::~Context() {
  std::lock_guard lock(mutex_);
  try {
    synchronize_locked();
  } catch (const Error& e) {
    log_warn("[vulkan] vulkan:", index_, " at shutdown: ", e.what());
  }
  vkDeviceWaitIdle(device_);
  if (pipeline_cache_dirty_) save_pipeline_cache_locked();
  for (auto& g : garbage_) free_handle(g.handle);
  for (Frame& f : frames_) {
    if (f.staging_map) vkUnmapMemory(device_, f.staging.memory);
    free_handle(f.staging, true);
    vkDestroyDescriptorPool(device_, f.descriptors, nullptr);
    vkDestroyFence(device_, f.fence, nullptr);
  }
  for (auto& [name, p] : pipelines_) {
    vkDestroyPipeline(device_, p.pipeline, nullptr);
    vkDestroyPipelineLayout(device_, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
  }
  vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  vkDestroyCommandPool(device_, pool_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

// ---- recording ----------------------------------------------------------------------------------

void Context::begin_locked() {
  if (recording_) return;
  Frame& f = frame();
  wait_locked(f);  // its previous submission must be done before its resources are reused
  VkCommandBufferBeginInfo bi{.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                              .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  vk_check(vkBeginCommandBuffer(f.cmd, &bi), "vkBeginCommandBuffer");
  recording_ = true;
}

void Context::barrier_locked() {
  // One global barrier after every command: later dispatches and copies see earlier writes, and
  // do not overwrite what earlier ones still read. Per-buffer barriers can come later.
  VkMemoryBarrier mb{.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                     .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                     .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                      VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
  const VkPipelineStageFlags stages =
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(frame().cmd, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

void Context::flush_locked() {
  if (!recording_) return;
  Frame& f = frame();
  recording_ = false;
  vk_check(vkEndCommandBuffer(f.cmd), "vkEndCommandBuffer");
  VkSubmitInfo si{
      .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &f.cmd};
  const VkResult r = vkQueueSubmit(queue_, 1, &si, f.fence);
  if (r != VK_SUCCESS) {
    // Nothing was submitted: drop the recording so the context stays usable.
    vkResetCommandBuffer(f.cmd, 0);
    vkResetDescriptorPool(device_, f.descriptors, 0);
    f.sets_used = 0;
    f.staging_head = 0;
    vk_check(r, "vkQueueSubmit");
  }
  f.serial = ++submitted_;
  f.in_flight = true;
  current_ = (current_ + 1) % frames_.size();
  if (pipeline_cache_dirty_) save_pipeline_cache_locked();
}

void Context::wait_locked(Frame& f) {
  if (!f.in_flight) return;
  // Frames are submitted and waited in turn, so every earlier submission is done too.
  const VkResult r = vkWaitForFences(device_, 1, &f.fence, VK_TRUE, UINT64_MAX);
  f.in_flight = false;
  vkResetFences(device_, 1, &f.fence);
  vkResetCommandBuffer(f.cmd, 0);
  vkResetDescriptorPool(device_, f.descriptors, 0);
  f.sets_used = 0;
  f.staging_head = 0;
  completed_ = std::max(completed_, f.serial);
  collect_garbage_locked();
  vk_check(r, "vkWaitForFences");
}

void Context::synchronize_locked() {
  flush_locked();
  // The older submission first (current_ is the next to record, so its frame is the older).
  for (size_t i = 0; i < frames_.size(); ++i) wait_locked(frames_[(current_ + i) % frames_.size()]);
}

void Context::flush() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

void Context::synchronize() {
  std::lock_guard lock(mutex_);
  synchronize_locked();
}

const Pipeline& Context::pipeline_locked(const std::string& shader, uint32_t bindings,
                                         uint32_t push_bytes) {
  if (auto it = pipelines_.find(shader); it != pipelines_.end()) return it->second;
  const ShaderBlob* blob = nullptr;
  for (size_t i = 0; i < shader_count; ++i)
    if (shader == shader_table[i].name) blob = &shader_table[i];
  check(blob != nullptr, "[vulkan] no shader '", shader, "' in this build");
  check(push_bytes <= props_.limits.maxPushConstantsSize, "[vulkan] shader '", shader, "' needs ",
        push_bytes, " bytes of push constants; vulkan:", index_, " allows ",
        props_.limits.maxPushConstantsSize);

  Pipeline p;
  p.bindings = bindings;
  p.push_bytes = push_bytes;
  std::array<VkDescriptorSetLayoutBinding, kMaxBindings> b{};
  for (uint32_t i = 0; i < bindings; ++i)
    b[i] = {.binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
  VkDescriptorSetLayoutCreateInfo li{.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                     .bindingCount = bindings,
                                     .pBindings = b.data()};
  vk_check(vkCreateDescriptorSetLayout(device_, &li, nullptr, &p.set_layout),
           "vkCreateDescriptorSetLayout");
  VkPushConstantRange range{
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = push_bytes};
  VkPipelineLayoutCreateInfo pli{.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                 .setLayoutCount = 1,
                                 .pSetLayouts = &p.set_layout,
                                 .pushConstantRangeCount = 1,
                                 .pPushConstantRanges = &range};
  vk_check(vkCreatePipelineLayout(device_, &pli, nullptr, &p.layout), "vkCreatePipelineLayout");
  VkShaderModuleCreateInfo smi{.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                               .codeSize = blob->word_count * 4,
                               .pCode = blob->words};
  VkShaderModule module = VK_NULL_HANDLE;
  vk_check(vkCreateShaderModule(device_, &smi, nullptr, &module), "vkCreateShaderModule");
  VkComputePipelineCreateInfo ci{
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main"},
      .layout = p.layout};
  const VkResult r =
      vkCreateComputePipelines(device_, pipeline_cache_, 1, &ci, nullptr, &p.pipeline);
  vkDestroyShaderModule(device_, module, nullptr);
  if (r != VK_SUCCESS) {
    vkDestroyPipelineLayout(device_, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
    fail("[vulkan] creating the pipeline of shader '", shader, "' on vulkan:", index_,
         " failed: ", result_name(r));
  }
  pipeline_cache_dirty_ = true;
  return pipelines_.emplace(shader, p).first->second;
}

void Context::dispatch(const std::string& shader, std::span<const Arg> args,
                       std::span<uint8_t> push, uint32_t gx, uint32_t gy, uint32_t gz) {
  check(args.size() <= kMaxBindings && push.size() >= args.size() * 4, "[vulkan] dispatch of '",
        shader, "': ", args.size(), " bindings, ", push.size(), " push-constant bytes");
  if (gx == 0 || gy == 0 || gz == 0) return;
  const auto& limits = props_.limits;
  check(gx <= limits.maxComputeWorkGroupCount[0] && gy <= limits.maxComputeWorkGroupCount[1] &&
            gz <= limits.maxComputeWorkGroupCount[2],
        "[vulkan] dispatch of '", shader, "' with ", gx, "x", gy, "x", gz,
        " workgroups exceeds vulkan:", index_, "'s limits");
  std::lock_guard lock(mutex_);
  const Pipeline& p = pipeline_locked(shader, static_cast<uint32_t>(args.size()),
                                      static_cast<uint32_t>(push.size()));
  if (frame().sets_used == kDescriptorSets) flush_locked();
  begin_locked();
  Frame& f = frame();

  VkDescriptorSetAllocateInfo ai{.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                 .descriptorPool = f.descriptors,
                                 .descriptorSetCount = 1,
                                 .pSetLayouts = &p.set_layout};
  VkDescriptorSet set = VK_NULL_HANDLE;
  vk_check(vkAllocateDescriptorSets(device_, &ai, &set), "vkAllocateDescriptorSets");
  ++f.sets_used;

  std::array<VkDescriptorBufferInfo, kMaxBindings> infos{};
  std::array<VkWriteDescriptorSet, kMaxBindings> writes{};
  const VkDeviceSize align = std::max<VkDeviceSize>(limits.minStorageBufferOffsetAlignment, 4);
  for (size_t i = 0; i < args.size(); ++i) {
    const Buffer& b = *args[i].buffer;
    check(b.device_index() == index_, "[vulkan] dispatch of '", shader, "': binding ", i,
          " is on vulkan:", b.device_index(), ", the dispatch on vulkan:", index_);
    const VkDeviceSize base = args[i].offset / align * align;
    const uint32_t rem = static_cast<uint32_t>(args[i].offset - base);
    const VkDeviceSize alloc = word_size(b.size());
    check(base < alloc, "[vulkan] dispatch of '", shader, "': binding ", i, " offset ",
          args[i].offset, " is past the buffer's ", b.size(), " bytes");
    infos[i] = {
        .buffer = b.handle().buffer,
        .offset = base,
        .range = std::min<VkDeviceSize>(alloc - base, limits.maxStorageBufferRange) / 4 * 4};
    writes[i] = {.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                 .dstSet = set,
                 .dstBinding = static_cast<uint32_t>(i),
                 .descriptorCount = 1,
                 .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                 .pBufferInfo = &infos[i]};
    std::memcpy(push.data() + 4 * i, &rem, 4);
  }
  vkUpdateDescriptorSets(device_, static_cast<uint32_t>(args.size()), writes.data(), 0, nullptr);
  vkCmdBindPipeline(f.cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  vkCmdBindDescriptorSets(f.cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  vkCmdPushConstants(f.cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                     static_cast<uint32_t>(push.size()), push.data());
  vkCmdDispatch(f.cmd, gx, gy, gz);
  barrier_locked();
}

void Context::upload(const Buffer& dst, size_t offset, const void* src, size_t bytes) {
  check(offset <= dst.size() && bytes <= dst.size() - offset, "[vulkan] upload of ", bytes,
        " bytes at offset ", offset, " into a buffer of ", dst.size());
  std::lock_guard lock(mutex_);
  const auto* in = static_cast<const uint8_t*>(src);
  while (bytes > 0) {
    begin_locked();
    Frame& f = frame();
    ensure_staging_locked(f);
    if (f.staging_head == kStagingBytes) {
      flush_locked();  // this frame's staging is full: go on in the other one
      continue;
    }
    const size_t n = std::min(bytes, kStagingBytes - f.staging_head);
    std::memcpy(static_cast<uint8_t*>(f.staging_map) + f.staging_head, in, n);
    VkBufferCopy region{.srcOffset = f.staging_head, .dstOffset = offset, .size = n};
    vkCmdCopyBuffer(f.cmd, f.staging.buffer, dst.handle().buffer, 1, &region);
    barrier_locked();
    f.staging_head = std::min(kStagingBytes, (f.staging_head + n + 15) / 16 * 16);
    in += n;
    offset += n;
    bytes -= n;
  }
}

void Context::copy(const Buffer& src, size_t src_offset, const Buffer& dst, size_t dst_offset,
                   size_t bytes) {
  std::lock_guard lock(mutex_);
  begin_locked();
  VkBufferCopy region{.srcOffset = src_offset, .dstOffset = dst_offset, .size = bytes};
  vkCmdCopyBuffer(frame().cmd, src.handle().buffer, dst.handle().buffer, 1, &region);
  barrier_locked();
}

void Context::download(const Buffer& src, size_t offset, void* dst, size_t bytes) {
  check(offset <= src.size() && bytes <= src.size() - offset, "[vulkan] download of ", bytes,
        " bytes at offset ", offset, " from a buffer of ", src.size());
  std::lock_guard lock(mutex_);
  auto* out = static_cast<uint8_t*>(dst);
  do {
    begin_locked();
    Frame& f = frame();
    ensure_staging_locked(f);
    if (f.staging_head == kStagingBytes) {
      flush_locked();
      continue;
    }
    const size_t at = f.staging_head, n = std::min(bytes, kStagingBytes - at);
    if (n > 0) {
      VkBufferCopy region{.srcOffset = offset, .dstOffset = at, .size = n};
      vkCmdCopyBuffer(f.cmd, src.handle().buffer, f.staging.buffer, 1, &region);
      // Make the copy available to host reads; after the fence wait the host sees it (the
      // staging memory is coherent).
      VkMemoryBarrier hb{.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                         .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                         .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
      vkCmdPipelineBarrier(f.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                           &hb, 0, nullptr, 0, nullptr);
    }
    synchronize_locked();
    std::memcpy(out, static_cast<const uint8_t*>(f.staging_map) + at, n);
    out += n;
    offset += n;
    bytes -= n;
  } while (bytes > 0);
}

// ---- pipeline cache on disk ---------------------------------------------------------------------

void Context::load_pipeline_cache() {
  std::vector<char> data;
  if (const auto path = pipeline_cache_path(props_); !path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (in) data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // The driver checks the header (vendor, device, cache UUID) and ignores a stale or bad cache.
  VkPipelineCacheCreateInfo ci{.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                               .initialDataSize = data.size(),
                               .pInitialData = data.empty() ? nullptr : data.data()};
  if (vkCreatePipelineCache(device_, &ci, nullptr, &pipeline_cache_) != VK_SUCCESS) {
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    vk_check(vkCreatePipelineCache(device_, &ci, nullptr, &pipeline_cache_),
             "vkCreatePipelineCache");
  }
}

void Context::save_pipeline_cache_locked() {
  // Failing to write the cache only costs compile time on the next run: never an error.
  pipeline_cache_dirty_ = false;
  const auto path = pipeline_cache_path(props_);
  if (path.empty() || !pipeline_cache_) return;
  size_t size = 0;
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &size, nullptr) != VK_SUCCESS || size == 0)
    return;
  std::vector<char> data(size);
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &size, data.data()) != VK_SUCCESS) return;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  // A private temporary name, then an atomic rename: processes sharing the cache never see (or
  // write into) a half-written file.
  const auto tmp = cat(path.string(), ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(data.data(), static_cast<std::streamsize>(size));
    if (!out) return;
  }
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace detail

// ---- public entries -----------------------------------------------------------------------------

void upload(const Buffer& dst, size_t dst_offset, const void* src, size_t bytes) {
  detail::Context::get(dst.device_index()).upload(dst, dst_offset, src, bytes);
}

void download(const Buffer& src, size_t src_offset, void* dst, size_t bytes) {
  detail::Context::get(src.device_index()).download(src, src_offset, dst, bytes);
}

void flush(int device) {
  detail::Context::get(device).flush();
}

void synchronize(int device) {
  detail::Context::get(device).synchronize();
}

}  // namespace eight::vulkan
