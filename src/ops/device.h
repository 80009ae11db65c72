#pragma once
// Where an op runs: on the device that holds its tensors. Every op checks that its tensors share
// one device, then runs the CPU kernels or records a Vulkan dispatch (which runs when the host
// next needs a result: a copy to the host, or vulkan::synchronize).
//
//   Tensor w = ops::to_device(weight, Device::vulkan(0));   // upload (a tracked device buffer)
//   Tensor y = ops::empty({T, n}, DType::F32, w.device());
//   ops::matmul(x_on_gpu, w, y, pool);                       // recorded, not waited for
//   ops::copy(y, y_on_host);                                 // waits for the work, then copies
#include <initializer_list>
#include <string>
#include <utility>

#include "backend/vulkan/vulkan.h"
#include "core/tensor.h"

namespace eight::ops {

// The device every defined tensor of an op is on; Error "[op] a is on vulkan:0 but y on cpu"
// when they differ, or when a device tensor is not in memory of its own backend.
using NamedTensor = std::pair<const char*, const Tensor*>;
Device op_device(const char* op, std::initializer_list<NamedTensor> tensors);

// The device a run asks for: "cpu"; "auto" (the best GPU: a discrete one, then an integrated one,
// never a CPU-type device such as lavapipe), or the CPU with one info line saying why; "vulkan"
// (the same, but said as a warning); "vulkan:N" (that device, whatever its type). Error for a
// named device that does not exist and for any other text.
Device choose_device(const std::string& spec);

// A new contiguous tensor on `device` (uninitialized; device memory is tracked and capped).
Tensor empty(const Dims& shape, DType dtype, Device device);
// Copies src into dst: the same dtype and shape, both contiguous, on any two devices. A copy to
// the host waits for the device's recorded work.
void copy(const Tensor& src, const Tensor& dst);
// A contiguous copy of t on `device` (t itself when it is already there and contiguous).
Tensor to_device(const Tensor& t, Device device);

// An f32 Vulkan tensor seen as rows of its last dimension, as ops/rows.h does for the CPU: row i
// at `ref` + i * stride floats.
struct DeviceRows {
  vulkan::BufferRef ref;
  int64_t count = 0, n = 0, stride = 0;
  bool packed() const { return count <= 1 || stride == n; }
};
DeviceRows as_device_rows(const char* op, const char* what, const Tensor& t);
// As as_device_rows, and the rows must follow each other with no gap (most Vulkan kernels take
// one flat run of rows).
DeviceRows as_packed_device_rows(const char* op, const char* what, const Tensor& t);
// An optional per-column f32 vector on the device: a null BufferRef when absent.
vulkan::BufferRef optional_device_vector(const char* op, const char* what, const Tensor* t,
                                         int64_t n);

}  // namespace eight::ops
