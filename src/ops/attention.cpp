#include "ops/attention.h"

#include <cmath>

#include "backend/cpu/nn_kernels.h"
#include "ops/device.h"

namespace eight::ops {

namespace {
constexpr int64_t kTiledMinQueries = 32;
}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
               ThreadPool& pool, const AttentionParams& params) {
  check(q.defined() && k.defined() && v.defined() && out.defined(),
        "[attention] undefined tensor argument");
  check(q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && out.dim() == 3,
        "[attention] q, k, v and out must be 3-D, got ", q.shape().str(), ", ", k.shape().str(),
        ", ", v.shape().str(), ", ", out.shape().str());
  check(q.dtype() == DType::F32 && out.dtype() == DType::F32, "[attention] q and out must be f32");
  check(q.shape() == out.shape(), "[attention] out ", out.shape().str(), " must match q ",
        q.shape().str());
  // Tested before formatting: k.str() and v.str() would allocate on every call (decode steps).
  if (!(k.shape() == v.shape() && k.dtype() == v.dtype()))
    fail("[attention] k ", k.str(), " and v ", v.str(), " must have the same shape and type");
  const DType kt = k.dtype();
  check(kt == DType::F32 || kt == DType::F16 || kt == DType::Q8_0,
        "[attention] the KV cache must be f32, f16 or q8_0, got ", dtype_name(kt));
  const int64_t tq = q.size(0), n_head = q.size(1), d = q.size(2);
  const int64_t tk = k.size(0), n_kv = k.size(1);
  check(k.size(2) == d, "[attention] head size of k (", k.size(2), ") and q (", d, ") differ");
  check(n_kv > 0 && n_head % n_kv == 0, "[attention] ", n_head,
        " query heads are not a multiple of ", n_kv, " kv heads");
  check(d % dtype_block_size(kt) == 0, "[attention] head size ", d, " is not a multiple of the ",
        dtype_name(kt), " block size");
  check(q.stride(2) == 1 && q.stride(1) == d && out.stride(2) == 1 && out.stride(1) == d,
        "[attention] heads of q and out must be contiguous");
  // Heads may lie anywhere (a head-major cache viewed [tk, n_kv, d]) but must be contiguous rows
  // of d, at the same head stride in k and v; quantized caches keep heads side by side.
  const bool side_by_side = k.stride(1) == d && v.stride(1) == d;
  check(k.stride(2) == 1 && v.stride(2) == 1 && k.stride(1) == v.stride(1) &&
            (side_by_side || kt != DType::Q8_0),
        "[attention] heads of k and v must be contiguous (side by side for q8_0)");
  check(params.pos0 >= 0 && params.window >= 0, "[attention] pos0 ", params.pos0, " and window ",
        params.window, " must be >= 0");
  if (tq == 0 || n_head == 0) return;
  const float scale = params.scale != 0 ? params.scale : 1.f / std::sqrt(static_cast<float>(d));
  if (op_device("attention", {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}}).kind ==
      DeviceKind::Vulkan) {
    check(side_by_side, "[attention] the Vulkan kernels read k and v heads side by side");
    vulkan::attention({.tq = tq,
                       .tk = tk,
                       .n_head = n_head,
                       .n_kv_head = n_kv,
                       .d = d,
                       .q = vulkan::buffer_of(q),
                       .ldq = q.stride(0),
                       .kv_type = kt,
                       .k = vulkan::buffer_of(k),
                       .v = vulkan::buffer_of(v),
                       .ldk = k.stride_bytes(0),
                       .ldv = v.stride_bytes(0),
                       .out = vulkan::buffer_of(out),
                       .ldo = out.stride(0),
                       .scale = scale,
                       .causal = params.causal,
                       .pos0 = params.pos0,
                       .window = params.window});
    return;
  }
  const cpu::AttentionProblem p{.tq = tq,
                                .tk = tk,
                                .n_head = n_head,
                                .n_kv_head = n_kv,
                                .d = d,
                                .q = q.data<float>(),
                                .ldq = q.stride(0),
                                .kv_type = kt,
                                .k = k.raw(),
                                .v = v.raw(),
                                .ldk = k.stride_bytes(0),
                                .ldv = v.stride_bytes(0),
                                .kv_head_bytes = k.stride_bytes(1),
                                .out = out.data<float>(),
                                .ldo = out.stride(0),
                                .scale = scale,
                                .causal = params.causal,
                                .pos0 = params.pos0,
                                .window = params.window};
  // Long query blocks (prompts, image tokens) run as tiled matrix products; a few queries (decode)
  // as dot products per query, which split finer over the threads.
  if (tq >= kTiledMinQueries)
    cpu::nn_kernels().attention_tiled(p, pool);
  else
    cpu::nn_kernels().attention(p, pool);
}

}  // namespace eight::ops
