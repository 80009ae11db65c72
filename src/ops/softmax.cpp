#include "ops/softmax.h"

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

void softmax(const Tensor& x, const Tensor& y, const SoftmaxParams& params) {
  check_same_shape("softmax", x, "x", y, "y");
  if (op_device("softmax", {{"x", &x}, {"y", &y}, {"mask", params.mask}}).kind ==
      DeviceKind::Vulkan) {
    const DeviceRows xr = as_packed_device_rows("softmax", "x", x);
    vulkan::BufferRef mask;
    int64_t mask_rows = 0;
    if (params.mask) {
      const DeviceRows mr = as_packed_device_rows("softmax", "mask", *params.mask);
      check((mr.count == 1 && mr.n == xr.n) || params.mask->shape() == x.shape(), "[softmax] mask ",
            params.mask->shape().str(), " must match x ", x.shape().str(), " or be one row of ",
            xr.n);
      mask = mr.ref;
      mask_rows = mr.count;
    }
    vulkan::softmax(xr.ref, mask, mask_rows, as_packed_device_rows("softmax", "y", y).ref, xr.count,
                    xr.n, params.scale);
    return;
  }
  const Rows xr = as_rows("softmax", "x", x), yr = as_rows("softmax", "y", y);
  Rows mr;
  bool shared = false;
  if (params.mask) {
    mr = as_rows("softmax", "mask", *params.mask);
    shared = mr.count == 1 && mr.n == xr.n;
    check(shared || params.mask->shape() == x.shape(), "[softmax] mask ",
          params.mask->shape().str(), " must match x ", x.shape().str(), " or be one row of ",
          xr.n);
  }
  const auto& k = cpu::nn_kernels();
  for (int64_t i = 0; i < xr.count; ++i)
    k.softmax(xr.row(i), params.mask ? (shared ? mr.row(0) : mr.row(i)) : nullptr, yr.row(i), xr.n,
              params.scale);
}

}  // namespace eight::ops
