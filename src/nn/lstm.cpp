#include "nn/lstm.h"

#include <cmath>

#include "core/error.h"
#include "ops/matmul.h"

namespace eight::nn {
namespace {

float sigmoid(float v) {
  return 1.f / (1.f + std::exp(-v));
}

}  // namespace

Tensor lstm(const std::vector<LstmLayer>& layers, const Tensor& x, ThreadPool& pool) {
  check(!layers.empty(), "[lstm] no layers");
  check(x.dim() == 2 && x.dtype() == DType::F32 && x.is_contiguous(),
        "[lstm] x must be contiguous f32 [T, in], got ", x.str());
  Tensor in = x;
  const int64_t T = x.size(0);
  for (size_t l = 0; l < layers.size(); ++l) {
    const LstmLayer& L = layers[l];
    const int64_t H = L.hidden();
    check(L.w_ih.dim() == 2 && L.w_ih.size(0) == 4 * H && L.w_ih.size(1) == in.size(1) &&
              L.w_hh.dim() == 2 && L.w_hh.size(0) == 4 * H && L.bias.defined() &&
              L.bias.numel() == 4 * H,
          "[lstm] layer ", l, ": weights ", L.w_ih.shape().str(), " / ", L.w_hh.shape().str(),
          " do not fit an input of ", in.size(1), " features");
    // The input's share of every frame's gates at once, biases included.
    const Tensor gates = ops::matmul(in, L.w_ih, pool, {.bias = &L.bias});
    Tensor out = Tensor::empty({T, H}, DType::F32);
    Tensor rec = Tensor::empty({1, 4 * H}, DType::F32);
    Tensor h = Tensor::zeros({1, H}, DType::F32);
    const Tensor cell = Tensor::zeros({H}, DType::F32);
    float* c = cell.data<float>();
    float* hd = h.data<float>();
    for (int64_t t = 0; t < T; ++t) {
      const float* g = gates.data<float>() + t * 4 * H;
      if (t > 0) ops::matmul(h, L.w_hh, rec, pool);  // h_{-1} = 0: nothing to add at t = 0
      const float* r = rec.data<float>();
      float* o = out.data<float>() + t * H;
      for (int64_t j = 0; j < H; ++j) {
        const auto gate = [&](int64_t k) { return g[k * H + j] + (t > 0 ? r[k * H + j] : 0.f); };
        const float i_ = sigmoid(gate(0)), f_ = sigmoid(gate(1));
        const float g_ = std::tanh(gate(2)), o_ = sigmoid(gate(3));
        c[j] = f_ * c[j] + i_ * g_;
        o[j] = o_ * std::tanh(c[j]);
      }
      std::copy(o, o + H, hd);
    }
    in = out;
  }
  return in;
}

}  // namespace eight::nn
