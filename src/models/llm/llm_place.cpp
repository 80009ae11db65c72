// Placing an LLM's layers on a GPU: the weights of the placed layers are uploaded once, and the
// device activations of a batch are carved out of one device buffer.
#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "models/llm/llm.h"
#include "ops/device.h"

namespace eight::llm {

namespace {

// A weight on the device: the tensor itself, or its rows [r0, r1) (the part of a fused
// projection) as a tensor of its own.
Tensor upload(const Tensor& t, Device d) {
  return t.defined() ? ops::to_device(t, d) : Tensor();
}
Tensor upload_rows(const Tensor& t, int64_t r0, int64_t r1, Device d) {
  return t.defined() ? ops::to_device(t.slice(0, r0, r1), d) : Tensor();
}
nn::Linear upload(const nn::Linear& l, Device d) {
  return {.weight = upload(l.weight, d), .bias = upload(l.bias, d)};
}
nn::Linear upload_rows(const nn::Linear& l, int64_t r0, int64_t r1, Device d) {
  return {.weight = upload_rows(l.weight, r0, r1, d), .bias = upload_rows(l.bias, r0, r1, d)};
}

// One decoder layer on the device, with fused projections split into their parts.
LLMLayer upload_layer(const LLMConfig& c, const LLMLayer& L, Device d) {
  LLMLayer g;
  g.attn_norm = upload(L.attn_norm, d);
  g.ffn_norm = upload(L.ffn_norm, d);
  if (L.wqkv.defined()) {
    const int64_t qd = c.q_dim(), kvd = c.kv_dim();
    g.wq = upload_rows(L.wqkv, 0, qd, d);
    g.wk = upload_rows(L.wqkv, qd, qd + kvd, d);
    g.wv = upload_rows(L.wqkv, qd + kvd, qd + 2 * kvd, d);
  } else {
    g.wq = upload(L.wq, d);
    g.wk = upload(L.wk, d);
    g.wv = upload(L.wv, d);
  }
  g.wo = upload(L.wo, d);
  if (L.mlp.fused()) {
    const int64_t n_ff = L.mlp.n_ff();
    g.mlp.gate = upload_rows(L.mlp.up, 0, n_ff, d);
    g.mlp.up = upload_rows(L.mlp.up, n_ff, 2 * n_ff, d);
  } else {
    g.mlp.gate = upload(L.mlp.gate, d);
    g.mlp.up = upload(L.mlp.up, d);
  }
  g.mlp.down = upload(L.mlp.down, d);
  return g;
}

}  // namespace

void LLM::place(const LLMPlacement& p) {
  check(!placement_.any_gpu(), "[llm] the model is already placed on ", placement_.device.name());
  check(p.n_gpu_layers >= 0 && p.n_gpu_layers <= config_.n_layer, "[llm] cannot place ",
        p.n_gpu_layers, " of ", config_.n_layer, " layers on the GPU");
  if (!p.any_gpu()) return;
  check(p.device.kind == DeviceKind::Vulkan, "[llm] no GPU backend for device ", p.device.name());
  // Built aside and swapped in at the end, so a refused upload leaves the model on the host.
  std::vector<LLMLayer> layers = weights_.layers;
  const int64_t first = config_.n_layer - p.n_gpu_layers;
  for (int64_t il = first; il < config_.n_layer; ++il)
    layers[static_cast<size_t>(il)] = upload_layer(config_, weights_.layers[il], p.device);
  Tensor output_norm = weights_.output_norm;
  nn::Linear output = weights_.output;
  if (p.output_on_gpu) {
    output_norm = upload(weights_.output_norm, p.device);
    output = upload(weights_.output, p.device);
  }
  weights_.layers = std::move(layers);
  weights_.output_norm = output_norm;
  weights_.output = output;
  placement_ = p;
  log_info("[llm] ", p.n_gpu_layers, " of ", config_.n_layer, " layers",
           p.output_on_gpu ? " and the output" : "", " on ", p.device.name(), " (",
           format_bytes(memory_tracker(p.device).stats().current), " of device memory)");
}

LLMScratch::LLMScratch(const LLM& model, int64_t max_batch)
    : LLMScratch(model.config(), max_batch,
                 !(model.placement().any_gpu() && model.first_gpu_layer() == 0 &&
                   model.placement().output_on_gpu)) {
  const LLMPlacement& p = model.placement();
  if (!p.any_gpu()) return;
  const LLMConfig& c = model.config();
  // Each buffer starts on a 256-byte boundary (any device's storage-buffer offset alignment). The
  // planner counts the same bytes (runtime/plan/llm.cpp, device_compute and device_logits).
  const int64_t widths[] = {c.n_embd, c.n_embd, c.q_dim(), c.kv_dim(), c.kv_dim(),  c.q_dim(),
                            c.n_embd, c.n_ff,   c.n_ff,    c.n_ff,     c.rope.n_rot};
  auto padded = [](int64_t floats) { return (floats * 4 + 255) / 256 * 256; };
  int64_t bytes = p.output_on_gpu ? padded(max_batch * c.n_vocab) : 0;
  for (const int64_t w : widths) bytes += padded(max_batch * w);
  const Tensor arena = ops::empty({bytes / 4}, DType::F32, p.device);
  int64_t at = 0;
  auto take = [&](int64_t width) {
    const Tensor t = Tensor::from_storage(arena.storage(), static_cast<size_t>(at),
                                          {max_batch, width}, DType::F32);
    at += padded(max_batch * width);
    return t;
  };
  Tensor* slots[] = {&gpu.x,       &gpu.cur,  &gpu.q,  &gpu.k,      &gpu.v,      &gpu.attn,
                     &gpu.ffn_out, &gpu.gate, &gpu.up, &gpu.hidden, &gpu.cos_sin};
  for (size_t i = 0; i < std::size(slots); ++i) *slots[i] = take(widths[i]);
  if (p.output_on_gpu) gpu.logits = take(c.n_vocab);
}

}  // namespace eight::llm
