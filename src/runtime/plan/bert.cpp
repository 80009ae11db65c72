#include "runtime/plan/bert.h"

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "runtime/plan/scratch_peak.h"

namespace eight {

BertPlan plan_bert(const gguf::File& f, int64_t tokens, int n_threads, int64_t ram) {
  BertPlan p;
  p.model = f.get_string("general.name", f.path());
  auto key = [&](const char* k) { return static_cast<int64_t>(f.get_u32(cat("bert.", k))); };
  p.n_embd = key("embedding_length");
  p.n_layer = key("block_count");
  p.n_head = key("attention.head_count");
  p.n_ff = key("feed_forward_length");
  p.n_ctx = key("context_length");
  check(p.n_head > 0 && p.n_embd % p.n_head == 0, "[planner] ", f.path(), ": ", p.n_head,
        " heads for width ", p.n_embd);
  const uint32_t pool = f.get_u32("bert.pooling_type", 1);
  p.pooling = pool == 2 ? "cls" : pool == 3 ? "last" : "mean";
  p.tokens = tokens > 0 ? std::min(tokens, p.n_ctx) : p.n_ctx;
  const int threads = n_threads > 0 ? n_threads : default_thread_count();

  DType matrix = DType::F32;
  for (const auto& t : f.tensors()) {
    p.weight_bytes += static_cast<int64_t>(t.nbytes);
    if (t.shape.size() == 1 && t.type != DType::F32) p.weight_bytes += 4 * t.numel();  // f32 copy
    if (t.name == "blk.0.attn_q.weight") matrix = t.type;
  }
  const int64_t T = p.tokens, D = p.n_embd;
  p.activation_bytes = 4 * (6 * T * D + T * p.n_ff + 2 * T + D);
  plan_detail::ScratchPeak s;
  s.add(matrix, T, D);       // q, k, v, attn_output, ffn_up
  s.add(matrix, T, p.n_ff);  // ffn_down
  s.add_attention(D / p.n_head);
  p.scratch_bytes = s.bytes(threads);

  p.cpu = encoder_cpu_plan(ram, p.weight_bytes, matrix, p.activation_bytes, T, p.scratch_bytes,
                           threads);
  return p;
}

std::string render_plan(const BertPlan& p) {
  std::string s =
      cat(p.model, " (bert embeddings: ", p.n_layer, " layers, width ", p.n_embd, ", ", p.n_head,
          " heads, n_ff ", p.n_ff, ", context ", p.n_ctx, ", ", p.pooling, " pooling)\n");
  s += render_cpu_items(p.cpu, "CPU only: no KV cache, no logits");
  return s;
}

DevicePlan encoder_cpu_plan(int64_t ram, int64_t weight_bytes, DType matrix,
                            int64_t activation_bytes, int64_t tokens, int64_t scratch_bytes,
                            int threads) {
  DevicePlan cpu;
  cpu.device = "cpu";
  cpu.budget = ram > 0 ? ram : system_ram_budget();
  cpu.items.push_back({.what = "weights",
                       .bytes = weight_bytes,
                       .why = cat(dtype_name(matrix), " matrices, used in place from the file"),
                       .mapped = true});
  cpu.items.push_back({.what = "activations",
                       .bytes = activation_bytes,
                       .why = cat("one input of ", tokens, " tokens")});
  cpu.items.push_back(
      {.what = "kernel scratch", .bytes = scratch_bytes, .why = cat(threads, " threads")});
  return cpu;
}

std::string render_cpu_items(const DevicePlan& cpu, const std::string& note) {
  std::string s = cat("  cpu budget ", format_bytes(cpu.budget), "\n");
  for (const auto& b : cpu.items) {
    std::string line = cat("    ", b.what);
    line.resize(std::max<size_t>(line.size() + 1, 24), ' ');
    std::string bytes = format_bytes(b.bytes);
    line += std::string(bytes.size() < 12 ? 12 - bytes.size() : 0, ' ') + bytes + "   " + b.why;
    s += line + "\n";
  }
  s +=
      cat("verdict: ", cpu.fits() ? "fits" : "does NOT fit", " in RAM: ", format_bytes(cpu.total()),
          " of ", format_bytes(cpu.budget), " (", note, ")\n");
  return s;
}

}  // namespace eight
