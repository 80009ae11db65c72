#pragma once
// The CPU kernels' per-thread scratch over a pass (backend/cpu/scratch.h): thread_scratch keeps
// each slot at the largest request it has seen (with its growth headroom) for the thread's life,
// so what a run holds is, per slot, the largest request over all its products, on every thread
// that runs tasks, and the callers' packs once.
#include <algorithm>
#include <array>
#include <cstdint>

#include "backend/cpu/scratch.h"
#include "core/dtype.h"

namespace eight::cpu {

struct ScratchPeak {
  std::array<size_t, kScratchSlots> caller{}, task{};
  // y[rows, n] = x[rows, k]·wᵀ with weights of `type`, run on the pool.
  void add(DType type, int64_t rows, int64_t k) {
    if (rows <= 0 || k <= 0) return;
    const MatmulScratch s = matmul_scratch(type, rows, k);
    for (int i = 0; i < kScratchSlots; ++i) {
      caller[i] = std::max(caller[i], s.caller[i]);
      task[i] = std::max(task[i], s.task[i]);
    }
  }
  // A product every thread makes on its own one-thread pool: its caller slots are held by every
  // thread too.
  void add_per_thread(DType type, int64_t rows, int64_t k) {
    if (rows <= 0 || k <= 0) return;
    const MatmulScratch s = matmul_scratch(type, rows, k);
    for (int i = 0; i < kScratchSlots; ++i) task[i] = std::max({task[i], s.caller[i], s.task[i]});
  }
  // ops::attention's CPU kernel: every thread asks kAttentionScratchSlot for heads of d values.
  void add_attention(int64_t d) {
    const size_t b = attention_scratch_bytes(d);
    task[kAttentionScratchSlot] = std::max(task[kAttentionScratchSlot], b);
  }
  int64_t bytes(int threads) const {
    int64_t b = 0;
    for (int i = 0; i < kScratchSlots; ++i) {
      b += static_cast<int64_t>(scratch_alloc_bytes(std::max(caller[i], task[i])));
      if (task[i] > 0) b += (threads - 1) * static_cast<int64_t>(scratch_alloc_bytes(task[i]));
    }
    return b;
  }
};

}  // namespace eight::cpu
