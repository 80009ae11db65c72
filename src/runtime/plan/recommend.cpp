#include "runtime/plan/recommend.h"

#include <algorithm>

#include "core/error.h"

namespace eight {
namespace {

int verdict_rank(Verdict v) {
  switch (v) {
    case Verdict::FitsOnGPU:
      return 0;
    case Verdict::PartialOffload:
      return 1;
    case Verdict::CPUOnly:
      return 2;
    case Verdict::DoesNotFit:
      return 3;
  }
  return 3;
}

// Quants of a variant, largest (best quality) first, with their weight bytes.
std::vector<std::pair<std::string, int64_t>> by_size(const Variant& v) {
  std::vector<std::pair<std::string, int64_t>> out;
  if (v.hparams) {
    for (const auto& q : v.quants) out.emplace_back(q.quant, q.bytes);
  } else if (const Component* m = v.main_component()) {
    out = m->sizes;
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  auto has = [&](const char* q) {
    return std::any_of(out.begin(), out.end(), [&](const auto& x) { return x.first == q; });
  };
  const bool drop_f16 = v.hparams.has_value() && has("Q8_0"), drop_f32 = has("F16");
  std::erase_if(out, [&](const auto& x) {
    return (drop_f16 && (x.first == "F16" || x.first == "BF16" || x.first == "F32")) ||
           (drop_f32 && x.first == "F32");
  });
  return out;
}

Pick pick_llm(const CatalogEntry& e, const Variant& v, const DeviceBudget& b, int64_t ctx) {
  Pick p{&e, &v, e.recommended_quant(), "", Verdict::DoesNotFit, 0, 0, 0, ""};
  // One criterion keeps picks monotone in the budget: the largest quant with at least `want`
  // tokens on the GPU (the largest context that fits only grows with VRAM).
  const int64_t train = v.hparams->n_ctx_train;
  const int64_t want = std::max(ctx > 0 ? ctx : std::min<int64_t>(train, 4096), v.min_ctx);
  PlanRequest r;
  r.ctx = want;
  auto plan_at = [&](const std::string& quant) {
    return plan_llm(describe_catalog_llm({&e, &v, quant}), r, b);
  };
  auto take = [&](const std::string& quant, int64_t bytes, const Plan& plan, std::string why) {
    p.quant = quant;
    p.bytes = bytes;
    p.verdict = plan.verdict;
    p.gpu_peak = plan.gpu.total();
    p.ctx = plan.verdict == Verdict::FitsOnGPU ? plan.max_ctx_gpu : plan.max_ctx;
    p.why = std::move(why);
  };
  const auto quants = by_size(v);
  if (b.vram > 0)
    for (const auto& [q, bytes] : quants) {
      const Plan plan = plan_at(q);
      if (plan.verdict != Verdict::FitsOnGPU) continue;
      take(q, bytes, plan,
           cat("largest quant keeping >= ", format_ctx(want), " tokens on the GPU",
               q == p.seed_quant ? " (the seed's pick)" : cat(" (seed: ", p.seed_quant, ")")));
      return p;
    }
  // ...else the seed's quant on whatever it fits (offload, CPU), or the largest that fits at all.
  const Plan seed = plan_at(p.seed_quant);
  if (seed.fits()) {
    const int64_t bytes = v.find_quant(p.seed_quant)->bytes;
    take(p.seed_quant, bytes, seed,
         seed.verdict == Verdict::PartialOffload
             ? cat(seed.n_gpu_layers, " of ", seed.n_layer, " layers on the GPU")
             : "runs on the CPU");
    return p;
  }
  for (const auto& [q, bytes] : quants) {
    const Plan plan = plan_at(q);
    if (!plan.fits()) continue;
    take(q, bytes, plan, cat("the seed's ", p.seed_quant, " does not fit; ", q, " does"));
    return p;
  }
  take(p.seed_quant, v.find_quant(p.seed_quant)->bytes, seed, seed.summary);
  return p;
}

Pick pick_pipeline(const CatalogEntry& e, const Variant& v, const DeviceBudget& b) {
  Pick p{&e, &v, e.recommended_quant(), "", Verdict::DoesNotFit, 0, 0, 0, ""};
  const auto quants = by_size(v);
  std::vector<std::pair<PipelinePlan, int64_t>> plans;
  for (const auto& [q, bytes] : quants) plans.emplace_back(plan_pipeline({&e, &v, q}, b), bytes);
  for (int want = 0; want <= 3; ++want)
    for (const auto& [plan, bytes] : plans) {
      if (verdict_rank(plan.verdict) != want) continue;
      p.quant = plan.quant;
      p.bytes = bytes;
      p.verdict = plan.verdict;
      p.gpu_peak = plan.gpu_peak;
      p.why = plan.strategy;
      if (plan.quant != p.seed_quant) p.why += cat(" (seed suggests ", p.seed_quant, ")");
      return p;
    }
  return p;
}

}  // namespace

Pick assess(const CatalogEntry& e, const std::string& quant, const DeviceBudget& budget,
            int64_t ctx) {
  const Variant& v = e.variant();
  Pick p{&e, &v, e.recommended_quant(), quant, Verdict::DoesNotFit, 0, 0, 0, ""};
  if (!v.hparams) {
    const PipelinePlan plan = plan_pipeline({&e, &v, quant}, budget);
    p.bytes = v.main_component()->size(quant).value_or(0);
    p.verdict = plan.verdict;
    p.gpu_peak = plan.gpu_peak;
    p.why = plan.strategy;
    return p;
  }
  const QuantFile* q = v.find_quant(quant);
  check(q != nullptr, "[planner] ", v.id, " has no quant '", quant, "'");
  p.bytes = q->bytes;
  PlanRequest r;
  r.ctx = std::max(ctx > 0 ? ctx : std::min<int64_t>(v.hparams->n_ctx_train, 8192), v.min_ctx);
  const Plan plan = plan_llm(describe_catalog_llm({&e, &v, quant}), r, budget);
  p.gpu_peak = plan.gpu.total();
  if (plan.max_ctx_gpu >= std::max<int64_t>(1024, v.min_ctx)) {
    p.verdict = Verdict::FitsOnGPU;
    p.ctx = plan.max_ctx_gpu;
    p.why = cat("all layers on the GPU up to ", format_ctx(plan.max_ctx_gpu), " tokens");
  } else {
    p.verdict = plan.verdict;
    p.ctx = plan.max_ctx;
    p.why = plan.summary;
  }
  return p;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {"chat",  "code",  "vision", "image",
                                                 "video", "audio", "speech"};
  return names;
}

Pick recommend_model(const CatalogEntry& e, const DeviceBudget& budget, int64_t ctx) {
  const Variant& v = e.variant();
  return v.hparams ? pick_llm(e, v, budget, ctx) : pick_pipeline(e, v, budget);
}

std::vector<Pick> recommend(const std::string& task, const DeviceBudget& budget, int64_t ctx) {
  check(task.empty() ||
            std::find(task_names().begin(), task_names().end(), task) != task_names().end(),
        "[planner] unknown task '", task, "' (chat, code, vision, image, video, audio, speech)");
  std::vector<std::pair<size_t, Pick>> picks;
  const auto& models = catalog().models();
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i].has_task(task)) picks.emplace_back(i, recommend_model(models[i], budget, ctx));
  std::stable_sort(picks.begin(), picks.end(), [](const auto& a, const auto& b) {
    const int va = verdict_rank(a.second.verdict), vb = verdict_rank(b.second.verdict);
    if (va != vb) return va < vb;
    const bool ma = a.second.entry->must_have(), mb = b.second.entry->must_have();
    if (ma != mb) return ma;
    return a.first < b.first;
  });
  std::vector<Pick> out;
  for (auto& [i, p] : picks) out.push_back(std::move(p));
  return out;
}

std::string short_verdict(const Pick& p) {
  const bool llm = p.variant && p.variant->hparams;
  switch (p.verdict) {
    case Verdict::FitsOnGPU:
      return llm ? cat("GPU, ", format_ctx(p.ctx), " ctx") : "GPU";
    case Verdict::PartialOffload:
      return llm ? cat("offload, ", format_ctx(p.ctx), " ctx") : "GPU+CPU";
    case Verdict::CPUOnly:
      return llm ? cat("CPU, ", format_ctx(p.ctx), " ctx") : "CPU";
    case Verdict::DoesNotFit:
      return "does not fit";
  }
  return "?";
}

}  // namespace eight
