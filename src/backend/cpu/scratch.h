#pragma once
// Per-thread scratch memory for kernels: grows on demand and is kept, so a steady decode loop
// allocates nothing after its first step. Tracked like every host allocation (HostBuffer).
#include <cstddef>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/dtype.h"

namespace eight::cpu {

constexpr int kScratchSlots = 8;

// A 64-byte aligned buffer of at least `bytes` owned by the calling thread. `slot` (0..7) lets one
// kernel hold several buffers at once; the pointer stays valid until the same thread asks the
// same slot for more bytes.
void* thread_scratch(int slot, size_t bytes);

// What thread_scratch holds after growing for a request of `bytes`: it keeps 25% headroom, so a
// slot that has seen requests up to r holds at most scratch_alloc_bytes(r).
size_t scratch_alloc_bytes(size_t bytes);

// The thread_scratch requests of one matrix product y[m, n] = x[m, k]·wᵀ (weights of type `w`)
// as the kernels of `isa` make them (isa/matmul_q8.cpp, isa/matvec_q8.cpp, isa/matmul_float.cpp),
// in bytes per slot: `caller` by the calling thread alone (x packs), `task` by every thread that
// runs a task (weight panels; the caller runs tasks too). The memory planner sums these so the
// plan includes the kernels' scratch; tests/runtime/test_planner_measured.cpp checks it.
struct MatmulScratch {
  size_t caller[kScratchSlots] = {};
  size_t task[kScratchSlots] = {};
};
MatmulScratch matmul_scratch(DType w, int64_t m, int64_t k, ISA isa = active_isa());

// Attention (isa/attention.cpp, isa/attention_tiled.cpp): every thread running a task requests
// this many bytes of kAttentionScratchSlot for heads of d values (the larger of the two kernels'
// needs: the tiled kernel's blocks of kAttentionTileQueries queries and kAttentionTileKeys keys).
constexpr int kAttentionScratchSlot = 4;
constexpr int64_t kAttentionTileQueries = 64;
constexpr int64_t kAttentionTileKeys = 64;
size_t attention_scratch_bytes(int64_t d);

}  // namespace eight::cpu
