// LLMSession::open: the loader's conversation with the memory planner (context size, KV cache,
// RAM budget) before anything is allocated.
#include "backend/vulkan/vulkan.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "ops/device.h"
#include "runtime/llm/session.h"
#include "runtime/plan/planner.h"

namespace eight {

GpuTarget gpu_target(const SessionOptions& opt) {
  GpuTarget t;
  const Device d = ops::choose_device(opt.device);
  if (d.kind == DeviceKind::CPU) return t;
  t.index = d.index;
  if (opt.vram > 0) {
    check(opt.vram > vulkan::kDeviceReserveBytes, "[session] --vram ", format_bytes(opt.vram),
          " leaves nothing after the driver's reserve of ",
          format_bytes(vulkan::kDeviceReserveBytes));
    vulkan::set_device_budget(d.index, opt.vram - vulkan::kDeviceReserveBytes);
  }
  t.budget = {.vram = vulkan::device_budget(d.index), .gpu_reserve = 0};
  return t;
}

void place_model(llm::LLM& model, const Plan& plan, const GpuTarget& gpu,
                 const SessionOptions& opt) {
  if (!gpu.index) return;
  const int64_t n_layer = model.config().n_layer;
  llm::LLMPlacement p{.device = Device::vulkan(*gpu.index),
                      .n_gpu_layers = plan.n_gpu_layers,
                      .output_on_gpu = plan.output_on_gpu};
  if (opt.n_gpu_layers >= 0) {
    // As llama.cpp's -ngl: the last N layers, and the output layer once N exceeds the layers.
    p.n_gpu_layers = std::min(opt.n_gpu_layers, n_layer);
    p.output_on_gpu = opt.n_gpu_layers > n_layer;
  }
  model.place(p);
  log_info("[session] ", p.n_gpu_layers, " of ", n_layer, " layers",
           p.output_on_gpu ? " and the output layer" : "", " on ", p.device.name(), " (",
           vulkan::devices()[static_cast<size_t>(*gpu.index)].name, ")");
}

std::unique_ptr<LLMSession> LLMSession::open(const std::string& path, const SessionOptions& opt) {
  auto model = llm::LLM::load(path);
  const llm::LLMConfig& c = model->config();
  // CPU plan: the mapping, the KV cache and the scratch must fit the RAM budget.
  LLMDesc desc = describe_gguf(model->file());
  desc.extras.insert(desc.extras.end(), opt.extras.begin(), opt.extras.end());
  // The session holds one logits row; kernel scratch is per thread of the pool it will run on.
  PlanRequest req{.ctx = opt.n_ctx,
                  .kv_type = opt.kv_type,
                  .ubatch = opt.ubatch,
                  .logits_rows = 1,
                  .n_threads = global_thread_pool(opt.n_threads).size()};
  const GpuTarget gpu = gpu_target(opt);
  const DeviceBudget budget = gpu.budget;
  std::string note;
  if (opt.n_ctx > 0) {
    note = cat("context ", opt.n_ctx, " tokens (requested)");
  } else {
    req.ctx = c.n_ctx_train;
    const int64_t fits = largest_ctx(desc, req, budget, false);
    if (fits >= c.n_ctx_train) {
      note = cat("context ", c.n_ctx_train, " tokens (the model's trained context)");
    } else {
      check(fits > 0, "[session] ", path, " does not fit in RAM even with a 1-token context");
      req.ctx = fits;
      note = cat("context ", fits, " tokens (the model's trained context ", c.n_ctx_train,
                 " capped by what fits in RAM)");
    }
  }
  const Plan plan = plan_llm(desc, req, budget);
  plan.check_host_budget();
  place_model(*model, plan, gpu, opt);
  log_info("[session] ", note, ", KV cache ", dtype_name(opt.kv_type), " ",
           format_bytes(plan.kv_bytes));
  auto s = std::make_unique<LLMSession>(std::move(model), opt, plan.request.ctx);
  s->ctx_note_ = note;
  s->plan_ = plan;
  return s;
}

}  // namespace eight
