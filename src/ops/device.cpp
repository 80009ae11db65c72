#include "ops/device.h"

#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "ops/rows.h"

namespace eight::ops {

Device op_device(const char* op, std::initializer_list<NamedTensor> tensors) {
  const NamedTensor* first = nullptr;
  for (const NamedTensor& t : tensors) {
    if (!t.second || !t.second->defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    const Device a = first->second->device(), b = t.second->device();
    if (!(a == b))
      fail("[", op, "] ", first->first, " is on ", a.name(), " but ", t.first, " on ", b.name(),
           "; move them to one device first (ops::to_device)");
  }
  return first ? first->second->device() : Device::cpu();
}

Device choose_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  check(spec == "auto" || spec.starts_with("vulkan"), "unknown device '", spec,
        "' (use cpu, auto, vulkan or vulkan:N; see eight devices)");
  if (spec != "auto" && spec != "vulkan") return Device::vulkan(vulkan::select_device(spec));
  // The best GPU, or the CPU with one line saying so: a run never fails for want of a GPU.
  try {
    return Device::vulkan(vulkan::select_device(spec));
  } catch (const Error& e) {
    if (spec == "auto")
      log_info("no usable GPU (", e.what(), "); running on the CPU");
    else
      log_warn("no usable GPU (", e.what(), "); running on the CPU");
    return Device::cpu();
  }
}

Tensor empty(const Dims& shape, DType dtype, Device device) {
  if (device.kind == DeviceKind::CPU) return Tensor::empty(shape, dtype);
  const int64_t n = shape.product();
  const int64_t bs = dtype_block_size(dtype);
  check(n % bs == 0, "[empty] ", shape.str(), " is not whole blocks of ", dtype_name(dtype));
  const size_t bytes = static_cast<size_t>(n / bs) * dtype_block_bytes(dtype);
  // A zero-size Vulkan buffer is not allowed; one float keeps empty tensors valid.
  auto storage = std::make_shared<vulkan::Buffer>(device.index, bytes ? bytes : 4);
  return Tensor::from_storage(std::move(storage), 0, shape, dtype);
}

void copy(const Tensor& src, const Tensor& dst) {
  check(src.defined() && dst.defined(), "[copy] undefined tensor");
  check(src.dtype() == dst.dtype() && src.shape() == dst.shape(), "[copy] src ", src.str(),
        " and dst ", dst.str(), " differ in dtype or shape");
  check(src.is_contiguous() && dst.is_contiguous(), "[copy] src ", src.str(), " and dst ",
        dst.str(), " must be contiguous");
  const size_t bytes = src.nbytes();
  if (bytes == 0) return;
  const bool src_cpu = src.device().kind == DeviceKind::CPU;
  const bool dst_cpu = dst.device().kind == DeviceKind::CPU;
  if (src_cpu && dst_cpu) {
    check(dst.storage()->writable(), "[copy] dst ", dst.str(), " is read-only");
    std::memmove(dst.raw(), src.raw(), bytes);
  } else if (src_cpu) {
    const vulkan::BufferRef d = vulkan::buffer_of(dst);
    vulkan::upload(*d.buffer, d.offset, src.raw(), bytes);
  } else if (dst_cpu) {
    check(dst.storage()->writable(), "[copy] dst ", dst.str(), " is read-only");
    const vulkan::BufferRef s = vulkan::buffer_of(src);
    vulkan::download(*s.buffer, s.offset, dst.raw(), bytes);
  } else if (src.device() == dst.device()) {
    vulkan::copy(vulkan::buffer_of(src), vulkan::buffer_of(dst), bytes);
  } else {
    // Two GPUs: through the host, one piece at a time.
    Tensor host = Tensor::empty(src.shape(), src.dtype());
    copy(src, host);
    copy(host, dst);
  }
}

Tensor to_device(const Tensor& t, Device device) {
  check(t.defined(), "[to_device] undefined tensor");
  if (t.device() == device && t.is_contiguous()) return t;
  const Tensor src = t.device().kind == DeviceKind::CPU ? t.contiguous() : t;
  Tensor out = empty(src.shape(), src.dtype(), device);
  copy(src, out);
  return out;
}

DeviceRows as_device_rows(const char* op, const char* what, const Tensor& t) {
  check(t.defined(), "[", op, "] ", what, " is undefined");
  check(t.dtype() == DType::F32, "[", op, "] ", what, " must be f32, got ", dtype_name(t.dtype()));
  DeviceRows r;
  r.ref = vulkan::buffer_of(t);
  row_layout(op, what, t, &r.count, &r.n, &r.stride);
  return r;
}

DeviceRows as_packed_device_rows(const char* op, const char* what, const Tensor& t) {
  const DeviceRows r = as_device_rows(op, what, t);
  check(r.packed(), "[", op, "] on the GPU ", what, " ", t.shape().str(),
        " must have packed rows, got strides ", t.strides().str());
  return r;
}

vulkan::BufferRef optional_device_vector(const char* op, const char* what, const Tensor* t,
                                         int64_t n) {
  if (!t || !t->defined()) return {};
  check(t->dtype() == DType::F32 && t->numel() == n && t->is_contiguous(), "[", op, "] ", what,
        " must be a contiguous f32 [", n, "], got ", t->str());
  return vulkan::buffer_of(*t);
}

}  // namespace eight::ops
