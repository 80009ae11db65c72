#include "nn/mlp.h"

#include <cmath>

#include "backend/cpu/nn_kernels.h"
#include "core/error.h"

namespace eight::nn {

void swiglu(float* h, const float* g, const float* u, int64_t T, int64_t n, int64_t in_stride) {
  // The ISA's vectorized row kernel (was a scalar std::exp loop: ~1% of decoding, done by the
  // calling thread alone while the pool waited).
  const auto kernel = cpu::nn_kernels().swiglu;
  for (int64_t t = 0; t < T; ++t) kernel(g + t * in_stride, u + t * in_stride, h + t * n, n);
}

void gated_mlp(const Tensor& y, const Tensor& x, const GatedMLP& mlp, const MLPScratch& s,
               ThreadPool& pool) {
  const int64_t T = x.size(0), n_ff = mlp.n_ff();
  check(s.gate_up.numel() >= T * 2 * n_ff && s.hidden.numel() >= T * n_ff,
        "[mlp] scratch too small for ", T, " tokens of ", n_ff);
  const Tensor h = s.hidden.reshape({-1}).slice(0, 0, T * n_ff).reshape({T, n_ff});
  float* gu = s.gate_up.data<float>();
  if (mlp.fused()) {
    const Tensor both = s.gate_up.reshape({-1}).slice(0, 0, T * 2 * n_ff).reshape({T, 2 * n_ff});
    linear(both, x, mlp.up, pool);  // [T, gate ‖ up]
    swiglu(h.data<float>(), gu, gu + n_ff, T, n_ff, 2 * n_ff);
  } else {
    const Tensor g = s.gate_up.reshape({-1}).slice(0, 0, T * n_ff).reshape({T, n_ff});
    const Tensor u = s.gate_up.reshape({-1}).slice(0, T * n_ff, 2 * T * n_ff).reshape({T, n_ff});
    linear(g, x, mlp.gate, pool);
    linear(u, x, mlp.up, pool);
    swiglu(h.data<float>(), g.data<float>(), u.data<float>(), T, n_ff, n_ff);
  }
  linear(y, h, mlp.down, pool);
}

}  // namespace eight::nn
