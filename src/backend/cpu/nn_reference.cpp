// Plain double-precision twins of the NN kernels (nn_kernels.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant.h"
#include "core/dtype.h"
#include "core/memory.h"

namespace eight::cpu {

void rms_norm_reference(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * r * (w ? w[i] : 1.0));
}

void layer_norm_reference(const float* x, const float* w, const float* b, float* y, int64_t n,
                          float eps) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double r = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>((x[i] - mean) * r * (w ? w[i] : 1.0) + (b ? b[i] : 0.0));
}

void softmax_reference(const float* x, const float* mask, float* y, int64_t n, float scale) {
  double mx = -std::numeric_limits<double>::infinity();
  HostBuffer vb(static_cast<size_t>(n) * sizeof(double));
  double* v = vb.as<double>();
  for (int64_t i = 0; i < n; ++i) {
    v[i] = static_cast<double>(x[i]) * scale + (mask ? mask[i] : 0.0);
    mx = std::max(mx, v[i]);
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (v[i] = std::isinf(mx) ? 0.0 : std::exp(v[i] - mx));
  for (int64_t i = 0; i < n; ++i) y[i] = sum > 0 ? static_cast<float>(v[i] / sum) : 0.f;
}

namespace {
double unary1(UnaryOp op, double x) {
  constexpr double kPi = 3.14159265358979323846;
  switch (op) {
    case UnaryOp::SiLU:
      return x / (1 + std::exp(-x));
    case UnaryOp::GELU:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::GELUTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x)));
    case UnaryOp::QuickGELU:
      return x / (1 + std::exp(-1.702 * x));
    case UnaryOp::ReLU:
      return x > 0 ? x : 0;
  }
  return 0;
}
}  // namespace

void unary_reference(UnaryOp op, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(unary1(op, x[i]));
}

void swiglu_reference(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(unary1(UnaryOp::SiLU, gate[i]) * up[i]);
}

void binary_reference(BinaryOp op, const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = op == BinaryOp::Add ? a[i] + b[i] : static_cast<float>(static_cast<double>(a[i]) * b[i]);
}

void rope_reference(const float* x, float* y, const float* cos, const float* sin, int64_t n_dims,
                    int64_t head_dim, RopeStyle style) {
  HostBuffer ob(static_cast<size_t>(head_dim) * sizeof(float));
  float* out = ob.as<float>();
  std::copy(x, x + head_dim, out);
  for (int64_t i = 0; i < n_dims / 2; ++i) {
    const int64_t a = style == RopeStyle::Norm ? 2 * i : i;
    const int64_t b = style == RopeStyle::Norm ? 2 * i + 1 : i + n_dims / 2;
    out[a] =
        static_cast<float>(static_cast<double>(x[a]) * cos[i] - static_cast<double>(x[b]) * sin[i]);
    out[b] =
        static_cast<float>(static_cast<double>(x[a]) * sin[i] + static_cast<double>(x[b]) * cos[i]);
  }
  for (int64_t i = 0; i < head_dim; ++i) y[i] = out[i];
}

void attention_reference(const AttentionProblem& p) {
  const size_t head_bytes = p.head_stride();
  // Scratch: k row, v row [d] f32; scores [tk] and accumulator [d] f64.
  HostBuffer buf(static_cast<size_t>(2 * p.d) * sizeof(float) +
                 static_cast<size_t>(p.tk + p.d) * sizeof(double));
  double* s = buf.as<double>();
  double* acc = s + p.tk;
  float* kr = reinterpret_cast<float*>(acc + p.d);
  float* vr = kr + p.d;
  const int64_t group = p.n_head / p.n_kv_head;
  for (int64_t t = 0; t < p.tq; ++t) {
    const int64_t pos = p.pos0 + t;
    for (int64_t h = 0; h < p.n_head; ++h) {
      const float* q = p.q + t * p.ldq + h * p.d;
      const int64_t kh = h / group;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < p.tk; ++j) {
        const bool visible = (!p.causal || j <= pos) && (p.window <= 0 || j > pos - p.window);
        if (!visible) {
          s[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        dequantize_row(p.kv_type, static_cast<const char*>(p.k) + j * p.ldk + kh * head_bytes, kr,
                       p.d);
        double dot = 0;
        for (int64_t e = 0; e < p.d; ++e) dot += static_cast<double>(q[e]) * kr[e];
        s[j] = dot * p.scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      std::fill_n(acc, p.d, 0.0);
      for (int64_t j = 0; j < p.tk; ++j) {
        if (std::isinf(s[j])) continue;
        const double w = std::exp(s[j] - mx);
        sum += w;
        dequantize_row(p.kv_type, static_cast<const char*>(p.v) + j * p.ldv + kh * head_bytes, vr,
                       p.d);
        for (int64_t e = 0; e < p.d; ++e) acc[e] += w * vr[e];
      }
      float* o = p.out + t * p.ldo + h * p.d;
      for (int64_t e = 0; e < p.d; ++e) o[e] = sum > 0 ? static_cast<float>(acc[e] / sum) : 0.f;
    }
  }
}

void group_norm_reference(const float* x, const float* w, const float* b, float* y,
                          int64_t channels, int64_t spatial, float eps, bool silu) {
  const int64_t n = channels * spatial;
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double r = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < spatial; ++i) {
      const int64_t k = c * spatial + i;
      const double v = (x[k] - mean) * r * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
      y[k] = static_cast<float>(silu ? unary1(UnaryOp::SiLU, v) : v);
    }
}

void geglu_reference(const float* hidden, const float* gate, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>(hidden[i] * unary1(UnaryOp::GELU, gate[i]));
}

void upsample_nearest2x_reference(const float* x, float* y, int64_t h, int64_t w) {
  for (int64_t oy = 0; oy < 2 * h; ++oy)
    for (int64_t ox = 0; ox < 2 * w; ++ox) y[oy * 2 * w + ox] = x[(oy / 2) * w + ox / 2];
}

}  // namespace eight::cpu
