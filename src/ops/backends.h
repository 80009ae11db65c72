#pragma once
// Which compute backends this build has and which devices they see.
#include <string>

namespace eight {

bool vulkan_backend_built();
int vulkan_device_count();

}  // namespace eight
