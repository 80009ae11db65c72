// The Vulkan instance, the device list and device selection.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "backend/vulkan/vulkan_impl.h"
#include "core/error.h"

namespace eight::vulkan {
namespace detail {

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS:
      return "VK_SUCCESS";
    case VK_NOT_READY:
      return "VK_NOT_READY";
    case VK_TIMEOUT:
      return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
      return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
      return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED:
      return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT:
      return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:
      return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:
      return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FRAGMENTED_POOL:
      return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
      return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default:
      return "VkResult (unnamed)";
  }
}

void vk_check(VkResult r, const char* what) {
  if (r != VK_SUCCESS) [[unlikely]]
    fail("[vulkan] ", what, " failed: ", result_name(r), " (", static_cast<int>(r), ")");
}

namespace {

struct InstanceState {
  VkInstance instance = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> devices;
  std::string why_none;  // set when there is no instance

  InstanceState() {
    // The loader may be older than 1.1 (vkEnumerateInstanceVersion missing): then no devices,
    // since the device queries below need 1.1.
    auto enumerate_version = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
    uint32_t version = VK_API_VERSION_1_0;
    if (enumerate_version) enumerate_version(&version);
    if (version < VK_API_VERSION_1_2) {
      why_none = "the Vulkan loader is older than 1.2";
      return;
    }
    VkApplicationInfo app{.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                          .pApplicationName = "eight",
                          .applicationVersion = 1,
                          .pEngineName = "eight",
                          .engineVersion = 1,
                          .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo info{.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                              .pApplicationInfo = &app};
    const VkResult r = vkCreateInstance(&info, nullptr, &instance);
    if (r != VK_SUCCESS) {
      instance = VK_NULL_HANDLE;
      why_none = cat("vkCreateInstance failed: ", result_name(r));
      return;
    }
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(instance, &n, nullptr) != VK_SUCCESS) n = 0;
    std::vector<VkPhysicalDevice> all(n);
    if (n && vkEnumeratePhysicalDevices(instance, &n, all.data()) != VK_SUCCESS) n = 0;
    all.resize(n);
    // Devices below Vulkan 1.2 cannot run the shaders (built for vulkan1.2): not listed.
    for (VkPhysicalDevice pd : all) {
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties(pd, &p);
      if (p.apiVersion >= VK_API_VERSION_1_2) devices.push_back(pd);
    }
    if (devices.empty()) why_none = "no Vulkan 1.2 device (is a driver installed?)";
  }
  // The instance is left to the process exit: device contexts may still be in use by static
  // objects' destructors.
};

InstanceState& state() {
  static InstanceState s;
  return s;
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "cpu";
    default:
      return "other";
  }
}

std::vector<std::string> features_of(VkPhysicalDevice pd) {
  std::vector<std::string> out;
  VkPhysicalDeviceSubgroupProperties sub{.sType =
                                             VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                    .pNext = &sub};
  vkGetPhysicalDeviceProperties2(pd, &props);
  out.push_back(cat("subgroup_size=", sub.subgroupSize));

  VkPhysicalDeviceShaderIntegerDotProductFeatures dot{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDeviceVulkan12Features v12{.sType =
                                           VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  const bool has_dot = has_device_extension(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
  if (has_dot) v12.pNext = &dot;
  VkPhysicalDeviceFeatures2 feats{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                  .pNext = &v12};
  vkGetPhysicalDeviceFeatures2(pd, &feats);
  if (v12.shaderFloat16) out.emplace_back("fp16");
  if (v12.shaderInt8) out.emplace_back("int8");
  if (feats.features.shaderInt64) out.emplace_back("int64");
  if (has_dot && dot.shaderIntegerDotProduct) {
    VkPhysicalDeviceShaderIntegerDotProductProperties dp{
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    VkPhysicalDeviceProperties2 p2{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                   .pNext = &dp};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    // Only an accelerated 4x8-bit dot product is worth a separate shader path.
    out.emplace_back(dp.integerDotProduct4x8BitPackedSignedAccelerated ? "int8_dot"
                                                                       : "int8_dot_emulated");
  }
  // By name: Debian 12's headers predate VK_KHR_cooperative_matrix.
  if (has_device_extension(pd, "VK_KHR_cooperative_matrix")) out.emplace_back("coopmat");
  if (has_device_extension(pd, "VK_NV_cooperative_matrix2")) out.emplace_back("coopmat2");
  if (has_device_extension(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME))
    out.emplace_back("memory_budget");
  return out;
}

}  // namespace

VkInstance instance() {
  return state().instance;
}

const std::vector<VkPhysicalDevice>& physical_devices() {
  return state().devices;
}

bool has_device_extension(VkPhysicalDevice pd, const char* name) {
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkExtensionProperties> exts(n);
  if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data()) != VK_SUCCESS)
    return false;
  return std::any_of(exts.begin(), exts.begin() + n, [&](const VkExtensionProperties& e) {
    return std::strcmp(e.extensionName, name) == 0;
  });
}

uint32_t device_local_heap(VkPhysicalDevice pd) {
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(pd, &mp);
  uint32_t best = 0;
  VkDeviceSize best_size = 0;
  for (uint32_t h = 0; h < mp.memoryHeapCount; ++h) {
    if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        mp.memoryHeaps[h].size > best_size) {
      best = h;
      best_size = mp.memoryHeaps[h].size;
    }
  }
  return best;
}

int64_t device_local_heap_size(VkPhysicalDevice pd) {
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(pd, &mp);
  return mp.memoryHeapCount ? static_cast<int64_t>(mp.memoryHeaps[device_local_heap(pd)].size) : 0;
}

int64_t device_local_heap_budget(VkPhysicalDevice pd, int64_t* usage) {
  if (!has_device_extension(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) return -1;
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  VkPhysicalDeviceMemoryProperties2 mp{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &budget};
  vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
  const uint32_t h = device_local_heap(pd);
  if (usage) *usage = static_cast<int64_t>(budget.heapUsage[h]);
  return static_cast<int64_t>(budget.heapBudget[h]);
}

}  // namespace detail

bool built() {
  return true;
}

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  const auto& pds = detail::physical_devices();
  for (size_t i = 0; i < pds.size(); ++i) {
    VkPhysicalDeviceDriverProperties drv{.sType =
                                             VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                  .pNext = &drv};
    vkGetPhysicalDeviceProperties2(pds[i], &p);
    DeviceInfo d;
    d.index = static_cast<int>(i);
    d.name = p.properties.deviceName;
    d.type = detail::type_name(p.properties.deviceType);
    d.memory_bytes = detail::device_local_heap_size(pds[i]);
    int64_t usage = 0;
    const int64_t budget = detail::device_local_heap_budget(pds[i], &usage);
    if (budget >= 0) d.free_bytes = std::max<int64_t>(0, budget - usage);
    d.driver = cat(drv.driverName, drv.driverInfo[0] ? " " : "", drv.driverInfo);
    d.features = detail::features_of(pds[i]);
    out.push_back(std::move(d));
  }
  return out;
}

std::string describe_devices() {
  const auto list = devices();
  if (list.empty()) {
    const std::string& why = detail::state().why_none;
    return cat("no Vulkan devices (", why.empty() ? "none reported" : why, ")");
  }
  std::string out;
  for (const auto& d : list) {
    if (!out.empty()) out += "; ";
    out +=
        cat("vulkan:", d.index, " ", d.name, " (", d.type, ", ", format_bytes(d.memory_bytes), ")");
  }
  return out;
}

int select_device(const std::string& spec) {
  const auto list = devices();
  const auto seen = [&] { return describe_devices(); };
  if (spec == "vulkan" || spec == "auto") {
    for (const char* want : {"discrete", "integrated"})
      for (const auto& d : list)
        if (d.type == want) return d.index;
    fail("[vulkan] '", spec,
         "' found no discrete or integrated GPU (CPU-type devices such as lavapipe are used only "
         "when named, e.g. vulkan:0); devices: ",
         seen());
  }
  const std::string prefix = "vulkan:";
  check(spec.rfind(prefix, 0) == 0 && spec.size() > prefix.size(), "[vulkan] bad device '", spec,
        "': expected vulkan:N, vulkan or auto");
  int index = 0;
  for (size_t i = prefix.size(); i < spec.size(); ++i) {
    check(spec[i] >= '0' && spec[i] <= '9' && index < 1000, "[vulkan] bad device '", spec,
          "': expected vulkan:N with N a device index");
    index = index * 10 + (spec[i] - '0');
  }
  check(index < static_cast<int>(list.size()), "[vulkan] no device '", spec, "': ", list.size(),
        " device(s) seen: ", seen());
  return index;
}

}  // namespace eight::vulkan
