// LLMSession::open: the loader's conversation with the memory planner (context size, KV cache,
// RAM budget) before anything is allocated.
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "runtime/llm/session.h"
#include "runtime/plan/planner.h"

namespace eight {

std::unique_ptr<LLMSession> LLMSession::open(const std::string& path, const SessionOptions& opt) {
  auto model = llm::LLM::load(path);
  const llm::LLMConfig& c = model->config();
  // CPU plan: the mapping, the KV cache and the scratch must fit the RAM budget.
  const LLMDesc desc = describe_gguf(model->file());
  // The session holds one logits row; kernel scratch is per thread of the pool it will run on.
  PlanRequest req{.ctx = opt.n_ctx,
                  .kv_type = opt.kv_type,
                  .ubatch = opt.ubatch,
                  .logits_rows = 1,
                  .n_threads = global_thread_pool(opt.n_threads).size()};
  const DeviceBudget budget{.vram = 0};
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
  log_info("[session] ", note, ", KV cache ", dtype_name(opt.kv_type), " ",
           format_bytes(plan.kv_bytes));
  auto s = std::make_unique<LLMSession>(std::move(model), opt, plan.request.ctx);
  s->ctx_note_ = note;
  return s;
}

}  // namespace eight
