#pragma once
// A matrix transpose into a new layout: y[s, r] = x[r, s]. Image models switch between channels
// first ([C, H * W], what convolutions and group norms take) and tokens ([H * W, C], what matmul
// and attention take) with it.
//
//   // x: [R, S] f32 (rows at any stride, the last dimension contiguous), y: contiguous [S, R] f32
//   ops::transpose(g, tokens, &pool);
//
// On the CPU 32 x 32 blocks are copied through the cache, split over pool when given; on a Vulkan
// device (x and y there) the transpose kernel copies the same blocks through shared memory.
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::ops {

void transpose(const Tensor& x, const Tensor& y, ThreadPool* pool = nullptr);

}  // namespace eight::ops
