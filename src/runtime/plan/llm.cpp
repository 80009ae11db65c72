// LLM planning: costs per buffer (formulas in planner.h), layer placement, verdict, the largest
// context that fits and what would make a model fit.
#include "runtime/plan/planner.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "backend/cpu/scratch.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"

namespace eight {
namespace {

constexpr int64_t kMaxCtx = int64_t{1} << 24;       // 16M tokens: far beyond any model here
constexpr int64_t kScoreFloats = int64_t{1} << 22;  // attention scores held at once (16 MiB)

struct Costs {
  int64_t ctx = 0, tokens = 0;  // tokens per micro-batch
  int64_t kv_layer = 0;         // K + V of one layer, all slots
  int64_t compute = 0, logits = 0, input = 0;
  int64_t device_compute = 0, device_logits = 0;  // the same on a GPU
};

int64_t plan_threads(const PlanRequest& r) {
  return r.n_threads > 0 ? r.n_threads : default_thread_count();
}

// The weights' input width k as the forward pass multiplies them (0: not a matrix product; the
// embedding table is a row lookup unless the output layer reuses it).
int64_t product_k(const LLMDesc& m, const WeightInfo& w) {
  const LLMHparams& h = m.hp;
  const auto ends = [&](const char* suffix) {
    const std::string s = suffix;
    return w.name.size() >= s.size() && w.name.compare(w.name.size() - s.size(), s.size(), s) == 0;
  };
  if (w.layer >= 0) {
    if (ends(".attn_output.weight")) return h.n_head * h.head_dim;
    if (ends(".ffn_down.weight")) return h.n_ff;
    if (ends(".attn_q.weight") || ends(".attn_k.weight") || ends(".attn_v.weight") ||
        ends(".attn_qkv.weight") || ends(".ffn_gate.weight") || ends(".ffn_up.weight"))
      return h.n_embd;
    return 0;
  }
  if (w.name == "output.weight") return h.n_embd;
  if (w.name == "token_embd.weight" && h.tied_embeddings) return h.n_embd;
  return 0;
}

// The CPU kernels' per-thread scratch after a forward pass (backend/cpu/scratch.h): for each slot,
// the largest request of any product the pass makes (every weight with T rows and with one row;
// attention's q·Kᵀ with k = head_dim and P·V with k = ctx, both f32, with g·chunk rows and with g
// rows), grown with thread_scratch's headroom; slots held by the calling thread once, task slots
// by every thread of the pool.
int64_t kernel_scratch(const LLMDesc& m, const PlanRequest& r, int64_t t, int64_t rows) {
  std::array<size_t, cpu::kScratchSlots> caller{}, task{};
  const auto add = [&](DType type, int64_t rows_m, int64_t k) {
    const cpu::MatmulScratch s = cpu::matmul_scratch(type, rows_m, k);
    for (int i = 0; i < cpu::kScratchSlots; ++i) {
      caller[i] = std::max(caller[i], s.caller[i]);
      task[i] = std::max(task[i], s.task[i]);
    }
  };
  for (const auto& w : m.tensors)
    if (const int64_t k = product_k(m, w); k > 0) {
      add(w.type, t, k);
      add(w.type, 1, k);
    }
  const int64_t group = m.hp.n_head / m.hp.n_head_kv;
  for (const int64_t rm : {rows, group}) {
    add(DType::F32, rm, m.hp.head_dim);
    add(DType::F32, rm, r.ctx);
  }
  // Decoding attention (≤ 4 queries) runs the flash-style kernel: a small buffer per task.
  task[cpu::kAttentionScratchSlot] =
      std::max(task[cpu::kAttentionScratchSlot], cpu::attention_scratch_bytes(m.hp.head_dim));
  const int64_t threads = plan_threads(r);
  int64_t bytes = 0;
  for (int i = 0; i < cpu::kScratchSlots; ++i) {
    // The calling thread runs tasks too: its slot holds the larger of its two uses.
    bytes += static_cast<int64_t>(cpu::scratch_alloc_bytes(std::max(caller[i], task[i])));
    if (task[i] > 0)
      bytes += (threads - 1) * static_cast<int64_t>(cpu::scratch_alloc_bytes(task[i]));
  }
  return bytes;
}

Costs costs(const LLMDesc& m, const PlanRequest& r) {
  const LLMHparams& h = m.hp;
  const int64_t kv_dim = h.n_head_kv * h.head_dim;
  check(kv_dim % dtype_block_size(r.kv_type) == 0, "[planner] KV type ", dtype_name(r.kv_type),
        " needs n_head_kv·head_dim (", kv_dim, ") to be a multiple of ",
        dtype_block_size(r.kv_type));
  Costs c;
  c.ctx = r.ctx;
  const int64_t kv_len = r.ctx * r.parallel;
  c.tokens = std::min(r.ubatch, kv_len);
  c.kv_layer = 2 * kv_len * static_cast<int64_t>(dtype_row_bytes(r.kv_type, kv_dim));
  const int64_t t = c.tokens;
  const int64_t q_dim = h.n_head * h.head_dim;
  // Activations of one layer (x, norm, q‖k‖v, attention out, ffn out, gate‖up, hidden, rope
  // table, positions) for t tokens, plus one f32 logits row.
  c.compute =
      4 * t * (3 * h.n_embd + 2 * q_dim + 2 * kv_dim + 3 * h.n_ff + h.head_dim + 1) + 4 * h.n_vocab;
  const int64_t group = h.n_head / h.n_head_kv;
  int64_t att_rows = group * t;
  if (r.flash_attention) {
    // Chunked attention (eight's CPU kernel, nn/attention.cpp): per KV head, its `group` query
    // heads over a chunk of queries with at most kScoreFloats scores at a time (at least one
    // query); K and Vᵀ of one head in f32, the chunk's queries and outputs.
    const int64_t chunk = std::clamp<int64_t>(kScoreFloats / (group * r.ctx), 1, t);
    att_rows = group * chunk;
    c.compute += 4 * (att_rows * r.ctx + 2 * r.ctx * h.head_dim + 2 * att_rows * h.head_dim);
  } else {
    // Naive attention: every head's full score matrix and the whole K/V of a layer in f32.
    c.compute += 4 * h.n_head * t * r.ctx + 8 * r.ctx * kv_dim;
  }
  c.compute += kernel_scratch(m, r, t, att_rows);
  c.logits = 4 * h.n_vocab * (r.logits_rows > 0 ? std::min(r.logits_rows, t) : t);
  // With every layer and the output on a GPU the host keeps only the looked-up token rows, the
  // positions and their rotary table (n_rot <= head_dim floats a token).
  c.input = 4 * t * (h.n_embd + h.head_dim + 1);
  // On a GPU (llm::LLMScratch's device part, models/llm/llm_place.cpp): the same activations with
  // q, k, v and gate, up apart and the rope table (n_rot <= head_dim floats a token), each buffer
  // padded to 256 bytes; no kernel or attention scratch (the shaders need none). The output
  // layer's logits rows there hold a whole micro-batch (the all-logits case).
  auto padded = [](int64_t floats) { return (4 * floats + 255) / 256 * 256; };
  c.device_compute = 3 * padded(t * h.n_embd) + 2 * padded(t * q_dim) + 2 * padded(t * kv_dim) +
                     3 * padded(t * h.n_ff) + padded(t * h.head_dim);
  c.device_logits = padded(t * h.n_vocab);
  return c;
}

std::string layer_range(const std::vector<LayerPlacement>& layers, bool gpu) {
  int first = -1, last = -1;
  for (const auto& l : layers)
    if (l.gpu == gpu) {
      if (first < 0) first = l.index;
      last = l.index;
    }
  if (first < 0) return "";
  return first == last ? cat("blk.", first) : cat("blk.", first, "-", last);
}

void validate(const LLMDesc& m, const PlanRequest& r, const DeviceBudget& b) {
  const LLMHparams& h = m.hp;
  check(h.n_layer > 0 && h.n_embd > 0 && h.n_head > 0 && h.n_head_kv > 0 && h.head_dim > 0 &&
            h.n_ff > 0 && h.n_vocab > 0,
        "[planner] ", m.name, ": incomplete hyperparameters (n_layer ", h.n_layer, ", n_embd ",
        h.n_embd, ", n_head ", h.n_head, ", n_head_kv ", h.n_head_kv, ", head_dim ", h.head_dim,
        ", n_ff ", h.n_ff, ", n_vocab ", h.n_vocab, ")");
  check(r.ctx >= 0 && r.ctx <= kMaxCtx, "[planner] context ", r.ctx, " is out of range (1..",
        kMaxCtx, " tokens; the model was trained on ", h.n_ctx_train, ")");
  check(r.parallel >= 1 && r.parallel <= 1024, "[planner] parallel slots ", r.parallel,
        " is out of range (1..1024)");
  check(r.ubatch >= 1 && r.ubatch <= 65536, "[planner] ubatch ", r.ubatch,
        " is out of range (1..65536)");
  check(r.logits_rows >= 0, "[planner] logits rows ", r.logits_rows, " is negative");
  check(r.n_threads >= 0 && r.n_threads <= 4096, "[planner] thread count ", r.n_threads,
        " is out of range (0..4096)");
  check(r.batch >= r.ubatch, "[planner] batch ", r.batch, " is smaller than ubatch ", r.ubatch);
  check(r.kv_type == DType::F16 || r.kv_type == DType::Q8_0 || r.kv_type == DType::F32,
        "[planner] KV cache type ", dtype_name(r.kv_type), " is not supported (f16, q8_0, f32)");
  check(b.vram >= 0, "[planner] VRAM budget ", b.vram, " is negative");
  check(b.ram >= 0, "[planner] RAM budget ", b.ram, " is negative");
  check(b.gpu_reserve >= 0, "[planner] GPU reserve ", b.gpu_reserve, " is negative");
}

// The placement and bill for one resolved request (no searches, no suggestions).
Plan plan_core(const LLMDesc& m, const PlanRequest& r, const DeviceBudget& b) {
  Plan p;
  p.model = m.name;
  p.quant = m.quant;
  p.origin = m.origin;
  p.request = r;
  p.budget = b;
  p.hp = m.hp;
  p.n_layer = static_cast<int>(m.hp.n_layer);
  p.file_bytes = m.file_bytes;
  p.weight_bytes = m.weight_bytes();
  const Costs c = costs(m, r);
  p.kv_bytes = c.kv_layer * m.hp.n_layer;
  p.kv_bytes_per_1k =
      2 * 1024 * m.hp.n_layer *
      static_cast<int64_t>(dtype_row_bytes(r.kv_type, m.hp.n_head_kv * m.hp.head_dim));
  p.compute_bytes = c.compute;
  p.logits_bytes = c.logits;
  std::vector<int64_t> layer_weights(p.n_layer, 0);
  for (const auto& t : m.tensors)
    if (t.layer >= 0 && t.layer < p.n_layer) layer_weights[t.layer] += t.bytes;
  for (int i = 0; i < p.n_layer; ++i) p.layers.push_back({i, false, layer_weights[i], c.kv_layer});

  int64_t extras = 0;
  for (const auto& e : m.extras) extras += e.bytes + e.work_bytes;
  const int64_t output = m.output_bytes();
  const int64_t avail = b.vram - b.gpu_reserve;

  // GPU: extras (an image is useless without them), then the output layer with the compute
  // arena, then layers from the last one backwards: each must bring its weights and KV cache.
  int64_t used = 0;
  bool arena = false;
  if (avail > 0) {
    if (extras > 0 && extras <= avail) {
      p.extras_on_gpu = true;
      used += extras;
    }
    if (used + c.device_compute + output + c.device_logits <= avail) {
      p.output_on_gpu = true;
      arena = true;
      used += c.device_compute + output + c.device_logits;
    }
    for (int i = p.n_layer - 1; i >= 0; --i) {
      const int64_t need =
          p.layers[i].weight_bytes + p.layers[i].kv_bytes + (arena ? 0 : c.device_compute);
      if (used + need > avail) break;
      used += need;
      arena = true;
      p.layers[i].gpu = true;
      ++p.n_gpu_layers;
    }
  }
  const int cpu_layers = p.n_layer - p.n_gpu_layers;
  int64_t gpu_w = 0, gpu_kv = 0, cpu_w = 0, cpu_kv = 0;
  for (const auto& l : p.layers) (l.gpu ? gpu_w : cpu_w) += l.weight_bytes;
  for (const auto& l : p.layers) (l.gpu ? gpu_kv : cpu_kv) += l.kv_bytes;

  p.gpu.device = "vulkan:0";
  p.gpu.budget = b.vram;
  if (b.vram > 0) {
    p.gpu.items.push_back({"runtime reserve", std::min(b.gpu_reserve, b.vram),
                           "Vulkan context, pipelines, staging buffer, allocator slack"});
    if (p.n_gpu_layers > 0)
      p.gpu.items.push_back(
          {cat("weights ", p.n_gpu_layers, " layers (", layer_range(p.layers, true), ")"), gpu_w,
           "repeating layers run where their weights are"});
    if (p.output_on_gpu)
      p.gpu.items.push_back({"output layer", output, "the largest matmul of every token"});
    if (gpu_kv > 0)
      p.gpu.items.push_back({"KV cache", gpu_kv,
                             cat(p.n_gpu_layers, " layers × ", r.parallel, " slot(s) × ", r.ctx,
                                 " tokens, ", dtype_name(r.kv_type))});
    if (arena)
      p.gpu.items.push_back({"compute arena", c.device_compute,
                             cat("activations of one layer for ", c.tokens, " tokens")});
    if (p.output_on_gpu)
      p.gpu.items.push_back(
          {"logits (device)", c.device_logits, cat(m.hp.n_vocab, " × ", c.tokens, " f32")});
    if (p.extras_on_gpu)
      for (const auto& e : m.extras)
        p.gpu.items.push_back({e.id, e.bytes + e.work_bytes, e.role + " (weights + activations)"});
  }

  p.cpu.device = "cpu";
  p.cpu.budget = b.ram;
  const bool all_cpu = p.n_gpu_layers == 0 && !p.output_on_gpu;
  if (all_cpu) {
    p.cpu.items.push_back({"weights (file mapping)", m.file_bytes,
                           "every tensor used in place from the mmap'd file", true, true});
  } else {
    const int64_t resident = m.embedding_bytes() + cpu_w + (p.output_on_gpu ? 0 : output);
    p.cpu.items.push_back(
        {cat("weights: embeddings",
             cpu_layers ? cat(" + ", cpu_layers, " layers (", layer_range(p.layers, false), ")")
                        : std::string(),
             p.output_on_gpu ? "" : " + output"),
         resident, "used in place from the file mapping", true, true});
    p.cpu.items.push_back({"weights uploaded to the GPU", m.file_bytes - resident,
                           "mapped while loading; page cache the OS can reclaim", false, true});
  }
  if (cpu_kv > 0)
    p.cpu.items.push_back({"KV cache", cpu_kv,
                           cat(cpu_layers, " layers × ", r.parallel, " slot(s) × ", r.ctx,
                               " tokens, ", dtype_name(r.kv_type))});
  if (cpu_layers > 0 || !p.output_on_gpu)
    p.cpu.items.push_back(
        {"compute arena", c.compute, cat("activations of one layer for ", c.tokens, " tokens")});
  else
    p.cpu.items.push_back({"input embeddings", c.input,
                           "token rows looked up on the CPU, positions and their rope table"});
  p.cpu.items.push_back({"logits", c.logits, cat(m.hp.n_vocab, " × ", c.tokens, " f32")});
  if (!p.extras_on_gpu)
    for (const auto& e : m.extras)
      p.cpu.items.push_back({e.id, e.bytes + e.work_bytes, e.role + " (weights + activations)"});

  if (!p.cpu.fits() || (b.vram > 0 && !p.gpu.fits()))
    p.verdict = Verdict::DoesNotFit;
  else if (all_cpu)
    p.verdict = Verdict::CPUOnly;
  else if (p.n_gpu_layers == p.n_layer && p.output_on_gpu)
    p.verdict = Verdict::FitsOnGPU;
  else
    p.verdict = Verdict::PartialOffload;
  return p;
}

PlanRequest resolved(const LLMDesc& m, PlanRequest r) {
  if (r.ctx == 0) {
    r.ctx = std::min<int64_t>(m.hp.n_ctx_train > 0 ? m.hp.n_ctx_train : 4096, 8192);
    r.ctx = std::max(r.ctx, m.min_ctx);
  }
  return r;
}

DeviceBudget resolved(DeviceBudget b) {
  if (b.ram == 0) b.ram = system_ram_budget();
  return b;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  return buf;
}

void explain(Plan& p, const LLMDesc& m) {
  const auto& r = p.request;
  const std::string kv = r.kv_type == DType::F16 ? "f16" : std::string(dtype_name(r.kv_type));
  const std::string at =
      cat("ctx ", r.ctx, r.parallel > 1 ? cat(" × ", r.parallel, " slots") : "", ", ", kv, " KV");
  switch (p.verdict) {
    case Verdict::FitsOnGPU:
      p.summary = cat("fits on the GPU: all ", p.n_layer, " layers + output, ", at, ", ",
                      gib(p.gpu.total()), " of ", gib(p.budget.vram), " VRAM");
      break;
    case Verdict::PartialOffload:
      p.summary =
          cat("fits with ", p.n_gpu_layers, " of ", p.n_layer, " layers offloaded to the GPU (",
              p.output_on_gpu ? "output on the GPU, " : "", "the rest on the CPU), ", at, ": ",
              gib(p.gpu.total()), " VRAM + ", gib(p.cpu.total()), " RAM");
      break;
    case Verdict::CPUOnly:
      p.summary = p.budget.vram > 0 ? cat("runs on the CPU only (not one layer fits in ",
                                          gib(p.budget.vram), " of VRAM), ", at, ": ",
                                          gib(p.cpu.total()), " of ", gib(p.budget.ram), " RAM")
                                    : cat("fits in RAM (CPU only), ", at, ": ", gib(p.cpu.total()),
                                          " of ", gib(p.budget.ram));
      break;
    case Verdict::DoesNotFit:
      p.summary = cat("does not fit: ", at, " needs ", gib(p.cpu.total()), " of RAM on top of ",
                      gib(p.gpu.total()), " VRAM, but the RAM budget is ", gib(p.budget.ram));
      break;
  }
  if (r.ctx > m.hp.n_ctx_train && m.hp.n_ctx_train > 0)
    p.notes.push_back(cat("ctx ", r.ctx, " is beyond the ", m.hp.n_ctx_train,
                          " tokens the model was trained on; quality will degrade"));
  if (m.min_ctx > r.ctx)
    p.notes.push_back(cat("an image needs up to ", m.min_ctx, " tokens of context"));
  if (p.verdict == Verdict::FitsOnGPU || p.budget.vram == 0) return;

  // What would make it fit (better): shorter context, q8_0 KV, a smaller quant, more RAM.
  if (p.max_ctx_gpu > 0)
    p.suggestions.push_back(cat("--ctx ", p.max_ctx_gpu, " keeps every layer on the GPU"));
  if (r.kv_type == DType::F16) {
    PlanRequest q = r;
    q.kv_type = DType::Q8_0;
    if (plan_core(m, q, p.budget).verdict == Verdict::FitsOnGPU)
      p.suggestions.push_back(cat("--kv-type q8_0 keeps every layer on the GPU at ctx ", r.ctx));
  }
  if (r.parallel > 1) {
    PlanRequest q = r;
    q.parallel = 1;
    if (plan_core(m, q, p.budget).verdict == Verdict::FitsOnGPU)
      p.suggestions.push_back(cat("--parallel 1 keeps every layer on the GPU"));
  }
  if (m.variant && m.entry) {
    // The largest smaller quant of the same model that fits entirely.
    const QuantFile* best = nullptr;
    const QuantFile* cur = m.variant->find_quant(m.quant);
    for (const auto& qf : m.variant->quants) {
      if (cur && qf.bytes >= cur->bytes) continue;
      if (best && qf.bytes <= best->bytes) continue;
      ModelRef ref{m.entry, m.variant, qf.quant};
      if (plan_core(describe_catalog_llm(ref), r, p.budget).verdict == Verdict::FitsOnGPU)
        best = &qf;
    }
    if (best)
      p.suggestions.push_back(cat(best->quant, " (", gib(best->bytes), ") fits on the GPU at ",
                                  "ctx ", r.ctx, ": eight plan ", m.entry->id, ":", best->quant));
  }
  if (p.verdict == Verdict::DoesNotFit)
    p.suggestions.push_back(cat("give it ", gib(p.cpu.total() - p.budget.ram),
                                " more RAM (--ram) or more VRAM (--vram)"));
  else if (p.verdict == Verdict::PartialOffload)
    p.suggestions.push_back("partial offload works, but every token waits on the CPU layers");
}

}  // namespace

int64_t largest_ctx(const LLMDesc& m, const PlanRequest& request, const DeviceBudget& budget,
                    bool gpu_only) {
  const DeviceBudget b = resolved(budget);
  PlanRequest r = resolved(m, request);
  validate(m, r, b);
  auto ok = [&](int64_t ctx) {
    r.ctx = ctx;
    const Verdict v = plan_core(m, r, b).verdict;
    return gpu_only ? v == Verdict::FitsOnGPU : v != Verdict::DoesNotFit;
  };
  const int64_t hi_cap = m.hp.n_ctx_train > 0 ? m.hp.n_ctx_train : kMaxCtx;
  if (!ok(1)) return 0;
  if (ok(hi_cap)) return hi_cap;
  int64_t lo = 1, hi = hi_cap;  // ok(lo), !ok(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (ok(mid) ? lo : hi) = mid;
  }
  return lo >= 256 ? lo / 256 * 256 : lo;
}

Plan plan_llm(const LLMDesc& m, const PlanRequest& request, const DeviceBudget& budget) {
  const DeviceBudget b = resolved(budget);
  const PlanRequest r = resolved(m, request);
  validate(m, r, b);
  check(r.ctx >= 1, "[planner] context must be at least 1 token");
  Plan p = plan_core(m, r, b);
  p.max_ctx_gpu = b.vram > 0 ? largest_ctx(m, r, b, true) : 0;
  p.max_ctx = largest_ctx(m, r, b, false);
  explain(p, m);
  return p;
}

DType parse_kv_type_name(const std::string& name) {
  std::string n;
  for (char ch : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "f16" || n == "fp16") return DType::F16;
  if (n == "q8_0" || n == "q8") return DType::Q8_0;
  if (n == "f32" || n == "fp32") return DType::F32;
  fail("[planner] unknown KV cache type '", name, "' (f16, q8_0, f32)");
}

std::string format_ctx(int64_t ctx) {
  if (ctx < 1024) return std::to_string(ctx);
  char buf[32];
  if (ctx % 1024 == 0)
    std::snprintf(buf, sizeof buf, "%lldk", static_cast<long long>(ctx / 1024));
  else
    std::snprintf(buf, sizeof buf, "%.1fk", static_cast<double>(ctx) / 1024);
  return buf;
}

}  // namespace eight
