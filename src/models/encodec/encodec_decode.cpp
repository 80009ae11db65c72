// EnCodec decoding: codebook sums, then SEANet's decoder with audiocraft's StreamableConv1d /
// StreamableConvTranspose1d padding rules (modules/conv.py), which transformers copies.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/encodec/encodec.h"
#include "ops/conv.h"
#include "ops/transpose.h"

namespace eight::encodec {
namespace {

// x [C, L] -> [C, left + L + right] as audiocraft's pad1d: reflect pads a sequence no longer
// than the padding by first extending it with zeros (torch's reflect needs pad < length) and
// dropping as many values from the end afterwards.
Tensor pad1d(const Tensor& x, int64_t left, int64_t right, PadMode mode, ThreadPool& pool) {
  const int64_t C = x.size(0), L = x.size(1);
  const int64_t extra =
      mode == PadMode::Reflect ? std::max<int64_t>(0, std::max(left, right) - L + 1) : 0;
  const int64_t Lx = L + extra;  // the zero-extended length reflect works on
  const int64_t out_len = left + L + right;
  Tensor y = Tensor::empty({C, out_len}, DType::F32);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  pool.parallel_for(C, [&](int64_t c, int) {
    const float* xc = xd + c * L;
    float* yc = yd + c * out_len;
    std::memcpy(yc + left, xc, static_cast<size_t>(L) * 4);
    const auto at = [&](int64_t i) -> float {  // position i of the padded sequence, i - left
      int64_t s = i - left;                    // indexes the (zero-extended) input
      switch (mode) {
        case PadMode::Constant:
          return 0.f;
        case PadMode::Replicate:
          return xc[std::clamp<int64_t>(s, 0, L - 1)];
        case PadMode::Reflect:
          if (s < 0) s = -s;
          if (s >= Lx) s = 2 * (Lx - 1) - s;
          return s < L ? xc[s] : 0.f;
      }
      return 0.f;
    };
    for (int64_t i = 0; i < left; ++i) yc[i] = at(i);
    for (int64_t i = left + L; i < out_len; ++i) yc[i] = at(i);
  });
  return y;
}

void elu(const Tensor& x, const Tensor& y, float alpha, ThreadPool& pool) {
  const int64_t n = x.numel();
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  pool.parallel_chunks(n, 1 << 14, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) yd[i] = xd[i] > 0 ? xd[i] : alpha * std::expm1(xd[i]);
  });
}

Tensor elu(const Tensor& x, float alpha, ThreadPool& pool) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  elu(x, y, alpha, pool);
  return y;
}

// StreamableConv1d (stride 1, as every decoder convolution is): pad by the effective kernel
// less one, split evenly (the extra one on the left) or all on the left when causal.
Tensor conv(const Tensor& x, const Conv& c, const Config& cfg, ThreadPool& pool) {
  const int64_t k = c.w.size(2);
  const int64_t total = (k - 1) * c.dilation;
  const int64_t right = cfg.causal ? 0 : total / 2;
  const Tensor xp = total > 0 ? pad1d(x, total - right, right, cfg.pad_mode, pool) : x;
  Tensor y = Tensor::empty({c.w.size(0), x.size(1)}, DType::F32);
  ops::conv1d(xp, c.w, y, pool, {.dilation = c.dilation, .bias = c.b.defined() ? &c.b : nullptr});
  return y;
}

// StreamableConvTranspose1d: the full transposed convolution, less kernel - stride values
// (split evenly with the extra one on the left, or by trim_right_ratio when causal).
Tensor conv_transpose(const Tensor& x, const Conv& c, const Config& cfg, ThreadPool& pool) {
  const ops::ConvTranspose1dParams p{.stride = c.stride, .bias = c.b.defined() ? &c.b : nullptr};
  Tensor full = Tensor::empty(ops::conv_transpose1d_output_shape(x, c.w, p), DType::F32);
  ops::conv_transpose1d(x, c.w, full, pool, p);
  const int64_t total = c.w.size(2) - c.stride;
  const int64_t right =
      cfg.causal ? static_cast<int64_t>(std::ceil(total * cfg.trim_right_ratio)) : total / 2;
  const int64_t left = total - right;
  if (total <= 0) return full;
  return full.slice(1, left, full.size(1) - right).contiguous();
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape(), DType::F32);
  const float *ad = a.data<float>(), *bd = b.data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) yd[i] = ad[i] + bd[i];
  return y;
}

}  // namespace

void Decoder::check_codes(const Tensor& codes) const {
  check(codes.defined() && codes.dtype() == DType::I32, "[encodec] codes must be int32, got ",
        codes.defined() ? dtype_name(codes.dtype()) : "nothing");
  check(codes.dim() == 2 && codes.size(0) == config_.n_q, "[encodec] codes must be [", config_.n_q,
        ", T] (one row per codebook), got ", codes.shape().str());
  check(codes.size(1) >= 1, "[encodec] codes hold no frames");
  check(codes.size(1) <= int64_t{1} << 24, "[encodec] ", codes.size(1), " frames is too many");
  const Tensor c = codes.contiguous();
  const int32_t* d = c.data<int32_t>();
  for (int64_t q = 0; q < config_.n_q; ++q)
    for (int64_t t = 0; t < codes.size(1); ++t) {
      const int32_t v = d[q * codes.size(1) + t];
      check(v >= 0 && v < config_.bins, "[encodec] code ", v, " at codebook ", q, ", frame ", t,
            " is outside 0..", config_.bins - 1);
    }
}

Tensor Decoder::latent(const Tensor& codes, ThreadPool& pool) const {
  check_codes(codes);
  const Tensor c = codes.contiguous();
  const int64_t T = codes.size(1), D = config_.dimension;
  Tensor rows = Tensor::zeros({T, D}, DType::F32);  // frames as rows, then transposed
  pool.parallel_for(T, [&](int64_t t, int) {
    float* out = rows.data<float>() + t * D;
    for (int64_t q = 0; q < config_.n_q; ++q) {
      const Tensor& cb = w_.codebooks[q];
      const int64_t cdim = cb.size(1);
      const float* e = cb.data<float>() + c.data<int32_t>()[q * T + t] * cdim;
      if (w_.project_out.empty()) {
        for (int64_t j = 0; j < D; ++j) out[j] += e[j];
        continue;
      }
      const float* W = w_.project_out[q].data<float>();  // nn.Linear [D, cdim]
      const float* b = w_.project_out_b[q].data<float>();
      for (int64_t j = 0; j < D; ++j) {
        float s = b[j];
        for (int64_t i = 0; i < cdim; ++i) s += W[j * cdim + i] * e[i];
        out[j] += s;
      }
    }
  });
  Tensor x = Tensor::empty({D, T}, DType::F32);
  ops::transpose(rows, x, &pool);
  return x;
}

Tensor Decoder::decode(const Tensor& codes, ThreadPool& pool,
                       void (*progress)(int done, int total, void* ctx), void* ctx) const {
  const Config& cfg = config_;
  const float alpha = static_cast<float>(cfg.elu_alpha);
  const int total = static_cast<int>(w_.ups.size()) + 2;
  int done = 0;
  const auto step = [&] {
    if (progress) progress(++done, total, ctx);
  };
  Tensor x = conv(latent(codes, pool), w_.first, cfg, pool);
  if (!w_.lstm.empty()) {  // StreamableLSTM with its skip: y = lstm(x) + x, time as rows
    const int64_t C = x.size(0), T = x.size(1);
    Tensor rows = Tensor::empty({T, C}, DType::F32);
    ops::transpose(x, rows, &pool);
    const Tensor h = add(nn::lstm(w_.lstm, rows, pool), rows);
    ops::transpose(h, x, &pool);
  }
  step();
  for (const UpBlock& up : w_.ups) {
    x = conv_transpose(elu(x, alpha, pool), up.up, cfg, pool);
    for (const ResBlock& rb : up.res) {
      const Tensor h = conv(elu(conv(elu(x, alpha, pool), rb.conv1, cfg, pool), alpha, pool),
                            rb.conv2, cfg, pool);
      x = add(rb.shortcut.w.defined() ? conv(x, rb.shortcut, cfg, pool) : x, h);
    }
    step();
  }
  x = conv(elu(x, alpha, pool), w_.last, cfg, pool);
  if (cfg.final_tanh) {
    float* d = x.data<float>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) d[i] = std::tanh(d[i]);
  }
  step();
  return x;
}

}  // namespace eight::encodec
