#include "ops/transpose.h"

#include <algorithm>

#include "ops/device.h"
#include "ops/rows.h"

namespace eight::ops {

void transpose(const Tensor& x, const Tensor& y, ThreadPool* pool) {
  const char* op = "transpose";
  check(x.defined() && y.defined(), "[transpose] undefined tensor argument");
  check(x.dim() == 2 && y.dim() == 2 && y.size(0) == x.size(1) && y.size(1) == x.size(0),
        "[transpose] x ", x.shape().str(), " and y ", y.shape().str(),
        " are not a matrix and its transpose");
  check(y.is_contiguous(), "[transpose] y must be contiguous, got strides ", y.strides().str());
  const Device device = op_device(op, {{"x", &x}, {"y", &y}});
  const int64_t r = x.size(0), s = x.size(1);
  if (r == 0 || s == 0) return;
  if (device.kind == DeviceKind::Vulkan) {
    const DeviceRows xr = as_device_rows(op, "x", x), yr = as_device_rows(op, "y", y);
    vulkan::transpose(xr.ref, xr.stride, {}, yr.ref, yr.n, r, s);
    return;
  }
  const Rows xr = as_rows(op, "x", x), yr = as_rows(op, "y", y);
  constexpr int64_t kBlock = 32;
  // One task per block of kBlock columns of x (rows of y), so each task writes its own rows.
  auto columns = [&](int64_t b, int64_t e) {
    for (int64_t s0 = b * kBlock; s0 < std::min(s, e * kBlock); s0 += kBlock)
      for (int64_t r0 = 0; r0 < r; r0 += kBlock) {
        const int64_t s1 = std::min(s, s0 + kBlock), r1 = std::min(r, r0 + kBlock);
        for (int64_t j = s0; j < s1; ++j) {
          float* dst = yr.row(j);
          for (int64_t i = r0; i < r1; ++i) dst[i] = xr.row(i)[j];
        }
      }
  };
  const int64_t blocks = (s + kBlock - 1) / kBlock;
  if (pool && blocks > 1)
    pool->parallel_chunks(blocks, 1, [&](int64_t b, int64_t e, int) { columns(b, e); });
  else
    columns(0, blocks);
}

}  // namespace eight::ops
