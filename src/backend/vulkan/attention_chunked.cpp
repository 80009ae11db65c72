// Attention without causality over long sequences and large heads (the SDXL VAE's one head of
// 512, the UNet's 64-wide heads over 1k-16k tokens), built from the matmul, softmax and
// transpose kernels over chunks of queries: scores [chunk, tk] are held, never tq x tk.
#include <algorithm>
#include <memory>

#include "backend/vulkan/kernel_dispatch.h"
#include "core/error.h"

namespace eight::vulkan {

namespace {

// Scores held at once: the chunk of queries is as many rows of tk as fit this size.
constexpr int64_t kScoreBytes = int64_t{32} << 20;

}  // namespace

bool attention_chunked_supported(const AttentionArgs& a) {
  return a.kv_type == DType::F32 && !a.causal && a.window == 0 && a.tk > 0 && a.ldk % 4 == 0 &&
         a.ldv % 4 == 0 && a.k.offset % 4 == 0 && a.v.offset % 4 == 0;
}

void attention_chunked(const AttentionArgs& a) {
  check(attention_chunked_supported(a), "[vulkan] attention_chunked: needs f32 K/V at 4-byte ",
        "offsets, no causal mask, no window and at least one key (kv ", dtype_name(a.kv_type),
        ", causal ", a.causal, ", window ", a.window, ", tk ", a.tk, ")");
  check(a.d > 0 && a.n_head > 0 && a.n_kv_head > 0 && a.n_head % a.n_kv_head == 0,
        "[vulkan] attention_chunked: ", a.n_head, " query heads of ", a.d, " over ", a.n_kv_head,
        " KV heads");
  if (a.tq == 0) return;
  const int device = detail::device_of("attention_chunked", a.q);
  const int64_t chunk = std::clamp<int64_t>(kScoreBytes / (a.tk * 4), 1, a.tq);
  const Buffer scores(device, static_cast<size_t>(chunk * a.tk) * 4);
  const Buffer vt(device, static_cast<size_t>(a.d * a.tk) * 4);  // one KV head's V, transposed
  const int64_t group = a.n_head / a.n_kv_head;
  const size_t head_bytes = static_cast<size_t>(a.d) * 4;
  for (int64_t kh = 0; kh < a.n_kv_head; ++kh) {
    // vt [d, tk]: the rows matmul multiplies the probabilities by.
    transpose({a.v.buffer, a.v.offset + kh * head_bytes}, static_cast<int64_t>(a.ldv / 4), {},
              {&vt, 0}, a.tk, a.tk, a.d);
    for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
      for (int64_t q0 = 0; q0 < a.tq; q0 += chunk) {
        const int64_t m = std::min(chunk, a.tq - q0);
        // scores [m, tk] = q[q0.., h] · k[:, kh]ᵀ, then softmax(scores * scale) in place.
        matmul({.m = m,
                .n = a.tk,
                .k = a.d,
                .x = {a.q.buffer, a.q.offset + static_cast<size_t>(q0 * a.ldq + h * a.d) * 4},
                .ldx = a.ldq,
                .w_type = DType::F32,
                .w = {a.k.buffer, a.k.offset + kh * head_bytes},
                .ldw = a.ldk,
                .y = {&scores, 0},
                .ldy = a.tk});
        softmax({&scores, 0}, {}, 0, {&scores, 0}, m, a.tk, a.scale);
        // out[q0.., h] = probabilities · v = scores [m, tk] · vt [d, tk]ᵀ.
        matmul({.m = m,
                .n = a.d,
                .k = a.tk,
                .x = {&scores, 0},
                .ldx = a.tk,
                .w_type = DType::F32,
                .w = {&vt, 0},
                .ldw = static_cast<size_t>(a.tk) * 4,
                .y = {a.out.buffer, a.out.offset + static_cast<size_t>(q0 * a.ldo + h * a.d) * 4},
                .ldy = a.ldo});
      }
    }
  }
}

}  // namespace eight::vulkan
