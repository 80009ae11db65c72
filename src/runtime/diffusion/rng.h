#pragma once
// eight's noise generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011) feeding the Box–Muller transform. It is counter-based: normal number j of a
// draw depends only on (seed, stream, offset + j), never on the order in which threads fill it,
// so a seed gives the same noise on every run, thread count and machine.
//
// The exact recipe (tests/reference/diffusion_ref.py reimplements it in numpy):
//   key     = (seed & 0xffffffff, seed >> 32)
//   block b = philox4x32_10(counter = (b & 0xffffffff, b >> 32, stream & 0xffffffff,
//                                      stream >> 32), key) -> four uint32 x0..x3
//   u(x)    = (x + 0.5) / 2^32                     (in (0, 1), never 0)
//   normals 4b + 0, 4b + 1 = r cos(2 pi u(x1)), r sin(2 pi u(x1)) with r = sqrt(-2 ln u(x0))
//   normals 4b + 2, 4b + 3 = the same from (x2, x3)
// computed in double and rounded to float. A draw of n numbers uses blocks offset ..
// offset + ceil(n / 4) - 1 and then advances offset past them, so consecutive draws never share
// a block.
//
// This is not torch's CPU generator (mt19937), so a seed gives other noise than diffusers or
// ComfyUI; to compare images with them, pass their noise (`--init-noise FILE.npy`) instead.
//
//   Rng rng(42);
//   Tensor noise = rng.normal({4, 64, 64});   // the initial latents, before init_noise_sigma
#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace eight::diffusion {

// One Philox4x32 block with 10 rounds (Random123's philox4x32_10).
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  // The next n standard normal numbers.
  void normal(float* out, int64_t n);
  // A contiguous f32 tensor of the next shape.numel() standard normal numbers.
  Tensor normal(const Dims& shape);

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }  // Philox blocks used so far

 private:
  uint64_t seed_, stream_, offset_ = 0;
};

}  // namespace eight::diffusion
