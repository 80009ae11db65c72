#include "runtime/plan/magnet.h"

#include "runtime/plan/scratch_peak.h"

namespace eight {

int64_t magnet_parameters(const magnet::Config& c) {
  const int64_t D = c.dim;
  const int64_t layer = 4 * D * D + 4 * D * D + 2 * D * c.ffn + 6 * D;  // attn, cross, ffn, norms
  return c.n_q * (c.card + 1) * D + c.num_layers * layer + 2 * D + c.n_q * c.card * D +
         c.text_dim * D + D;
}

MagnetPlan plan_magnet(const magnet::Config& c, DType matrix, int64_t frames, int64_t text_tokens,
                       int threads) {
  MagnetPlan p;
  p.config = c;
  p.frames = frames / c.span_len * c.span_len;
  p.parameters = magnet_parameters(c);
  const int64_t norms = (c.num_layers * 6 + 2) * c.dim;
  p.weight_bytes = static_cast<int64_t>(dtype_row_bytes(matrix, p.parameters)) +
                   (matrix == DType::F32 ? 0 : 4 * norms);  // f32 copies of the norms
  const int64_t T = p.frames, N = 2 * T, D = c.dim, S = text_tokens > 0 ? text_tokens : 1;
  // magnet_forward.cpp: x, h, qkv, a [N, 3D / D], f [N, ffn], one embedding row block, the
  // conditions (copy + null row) and their cross keys/values, one codebook's logits.
  const int64_t forward =
      N * D * 2 + N * 3 * D + N * D + N * c.ffn + T * D + 2 * (S + 1) * D + 2 * S * D + N * c.card;
  // generate.cpp: codes [2, n_q, T], per-thread probabilities and sort pairs, span state.
  const int64_t decode = 2 * c.n_q * T + threads * c.card * 3 + 3 * T + S * D;
  p.activation_bytes = 4 * (forward + decode);
  plan_detail::ScratchPeak s;
  s.add(matrix, N, D);
  s.add(matrix, N, c.ffn);
  s.add(matrix, S, D);
  s.add(matrix, T, D);
  s.add_attention(D / c.num_heads);
  p.scratch_bytes = s.bytes(threads);
  return p;
}

}  // namespace eight
