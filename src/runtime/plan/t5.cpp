#include "runtime/plan/t5.h"

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/safetensors.h"
#include "runtime/plan/bert.h"
#include "runtime/plan/scratch_peak.h"

namespace eight {

T5Plan plan_t5(const std::string& path, int64_t tokens, int n_threads, int64_t ram) {
  T5Plan p;
  p.model = path;
  const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(path);
  p.config = t5::load_config(path, ckpt);
  const t5::Config& c = p.config;
  p.tokens = tokens > 0 ? tokens : 512;
  const int threads = n_threads > 0 ? n_threads : default_thread_count();

  DType matrix = DType::F32;
  for (const safetensors::File& f : ckpt.files())
    for (const auto& t : f.tensors()) {
      p.weight_bytes += static_cast<int64_t>(t.end - t.begin);
      const bool small = t.name.find("layer_norm") != std::string::npos ||
                         t.name.find("relative_attention_bias") != std::string::npos;
      if (small && t.dtype != "F32") p.weight_bytes += 4 * t.numel();  // f32 copy
      if (t.name == "encoder.block.0.layer.0.SelfAttention.q.weight")
        matrix = safetensors::view_dtype(t);
    }
  const int64_t T = p.tokens, D = c.d_model, inner = c.d_kv * c.n_heads, dk = c.d_kv;
  p.activation_bytes =
      4 * (2 * T * D + 4 * T * inner + (c.gated() ? 2 : 1) * T * c.d_ff + T * T + 3 * T * dk);
  plan_detail::ScratchPeak s;
  s.add(matrix, T, D);       // q, k, v, wi
  s.add(matrix, T, inner);   // o
  s.add(matrix, T, c.d_ff);  // wo
  s.add(DType::F32, T, dk);  // scores = q_h · k_hᵀ
  s.add(DType::F32, T, T);   // out_h = p · v_h
  p.scratch_bytes = s.bytes(threads);

  p.cpu = encoder_cpu_plan(ram, p.weight_bytes, matrix, p.activation_bytes, T, p.scratch_bytes,
                           threads);
  return p;
}

std::string render_plan(const T5Plan& p) {
  const t5::Config& c = p.config;
  std::string s = cat(p.model, " (", c.model_type, " encoder: ", c.n_layers, " layers, d_model ",
                      c.d_model, ", ", c.n_heads, " heads of ", c.d_kv, ", d_ff ", c.d_ff, " ",
                      t5::feed_forward_name(c.ff), ", vocab ", c.vocab, ")\n");
  s += render_cpu_items(p.cpu, "CPU only");
  return s;
}

}  // namespace eight
