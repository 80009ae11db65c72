#include "ops/backends.h"

#include "backend/vulkan/vulkan.h"

namespace eight {

bool vulkan_backend_built() {
  return vulkan::built();
}
int vulkan_device_count() {
  return static_cast<int>(vulkan::devices().size());
}

}  // namespace eight
