// Multi-component models (CLIP, BLIP, DeepBooru, SDXL, FLUX, LTX, WAN, MAGNeT, Whisper) planned as
// stages from the catalog's component sizes. Residency strategies are tried from the fastest to
// the most frugal; the first that fits both budgets wins:
//   1. every component resident on the GPU (nothing reloads between runs)
//   2. the main component resident, the others loaded for their stage and freed after it
//   3. every component loaded for its stage only (a run reloads the encoders and the main model)
//   4. text encoders on the CPU, the rest per stage on the GPU
//   5. the main component's blocks streamed from RAM through a GPU window (slow but bounded)
//   6. everything on the CPU
// GPU peak of a stage = the weights present during it + the largest activation set among the
// components it runs. Activation figures are the catalog's estimates (work_gb) until each
// family's implementation measures them.
#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "runtime/plan/planner.h"

namespace eight {
namespace {

struct Part {
  const Component* c;
  std::string precision;
  int64_t bytes;
};

enum class Where { GPU, CPU, Stream };

struct Attempt {
  std::string strategy;
  std::vector<Where> where;  // per part
  std::vector<bool> resident;
  int64_t gpu_peak = 0, cpu_peak = 0;
  std::vector<StagePlan> stages;
};

// A stream window holds a few blocks of the main component at a time (double-buffered upload).
int64_t stream_window(int64_t bytes) {
  return bytes / 8;
}

Attempt evaluate(const Variant& v, const std::vector<Part>& parts, const std::string& strategy,
                 const std::vector<Where>& where, const std::vector<bool>& resident) {
  Attempt a{strategy, where, resident, 0, 0, {}};
  auto index = [&](const std::string& id) {
    for (size_t i = 0; i < parts.size(); ++i)
      if (parts[i].c->id == id) return i;
    fail("[planner] ", v.id, ": stage names unknown component '", id, "'");
  };
  int64_t resident_gpu = 0, resident_cpu = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!resident[i] || parts[i].c->optional) continue;
    if (where[i] == Where::GPU) resident_gpu += parts[i].bytes;
    if (where[i] == Where::CPU) resident_cpu += parts[i].bytes;
    if (where[i] == Where::Stream) {
      resident_cpu += parts[i].bytes;
      resident_gpu += stream_window(parts[i].bytes);
    }
  }
  for (const auto& s : v.stages) {
    StagePlan sp{s.name, s.components, resident_gpu, resident_cpu};
    int64_t gpu_work = 0, cpu_work = 0;
    for (const auto& id : s.components) {
      const size_t i = index(id);
      const Part& p = parts[i];
      if (p.c->optional) continue;
      if (!resident[i]) (where[i] == Where::CPU ? sp.cpu_bytes : sp.gpu_bytes) += p.bytes;
      (where[i] == Where::CPU ? cpu_work : gpu_work) =
          std::max(where[i] == Where::CPU ? cpu_work : gpu_work, p.c->work_bytes);
    }
    sp.gpu_bytes += gpu_work;
    sp.cpu_bytes += cpu_work;
    a.gpu_peak = std::max(a.gpu_peak, sp.gpu_bytes);
    a.cpu_peak = std::max(a.cpu_peak, sp.cpu_bytes);
    a.stages.push_back(std::move(sp));
  }
  return a;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  return buf;
}

std::vector<Part> parts_at(const Variant& v, const std::string& quant) {
  std::vector<Part> parts;
  for (const auto& c : v.components) {
    const std::string prec = c.main ? quant : c.precision_for(quant);
    const auto size = c.size(prec);
    check(size.has_value(), "[planner] ", v.id, ": component '", c.id, "' has no size at ", prec);
    parts.push_back({&c, prec, *size});
  }
  return parts;
}

// The first strategy that fits; the last one tried when none does.
Attempt choose(const Variant& v, const std::vector<Part>& parts, const DeviceBudget& b, int* rank) {
  const size_t n = parts.size();
  const int64_t avail = b.vram - b.gpu_reserve;
  std::vector<Attempt> tries;
  auto fits = [&](const Attempt& a) {
    return a.cpu_peak <= b.ram && (a.gpu_peak == 0 || a.gpu_peak <= avail);
  };
  if (avail > 0) {
    std::vector<Where> gpu(n, Where::GPU);
    tries.push_back(
        evaluate(v, parts, "every component resident on the GPU", gpu, std::vector<bool>(n, true)));
    std::vector<bool> main_only(n);
    for (size_t i = 0; i < n; ++i) main_only[i] = parts[i].c->main;
    tries.push_back(
        evaluate(v, parts, "main component resident, the others loaded per stage", gpu, main_only));
    tries.push_back(evaluate(v, parts, "every component loaded for its stage only", gpu,
                             std::vector<bool>(n, false)));
    std::vector<Where> enc_cpu = gpu;
    for (size_t i = 0; i < n; ++i)
      if (parts[i].c->offloadable) enc_cpu[i] = Where::CPU;
    tries.push_back(evaluate(v, parts, "text encoders on the CPU, the rest per stage on the GPU",
                             enc_cpu, main_only));
    std::vector<Where> stream = enc_cpu;
    bool can_stream = false;
    for (size_t i = 0; i < n; ++i)
      if (parts[i].c->main && parts[i].c->streamable) {
        stream[i] = Where::Stream;
        can_stream = true;
      }
    if (can_stream)
      tries.push_back(evaluate(v, parts, "main component streamed from RAM in blocks (slow)",
                               stream, main_only));
  }
  tries.push_back(evaluate(v, parts, "everything on the CPU", std::vector<Where>(n, Where::CPU),
                           std::vector<bool>(n, true)));
  for (size_t i = 0; i < tries.size(); ++i)
    if (fits(tries[i])) {
      *rank = static_cast<int>(i);
      return tries[i];
    }
  *rank = -1;
  return tries.back();
}

Verdict verdict_of(const Attempt& a, int rank, const DeviceBudget& b) {
  if (rank < 0) return Verdict::DoesNotFit;
  if (b.vram - b.gpu_reserve <= 0 || a.strategy == "everything on the CPU") return Verdict::CPUOnly;
  return rank <= 2 ? Verdict::FitsOnGPU : Verdict::PartialOffload;
}

}  // namespace

PipelinePlan plan_pipeline(const ModelRef& ref, const DeviceBudget& budget) {
  check(ref.entry && ref.variant, "[planner] empty model reference");
  check(ref.variant->main_component() != nullptr, "[planner] ", ref.variant->id,
        " has no components to plan; plan it with plan_llm");
  check(budget.vram >= 0, "[planner] VRAM budget ", budget.vram, " is negative");
  check(budget.ram >= 0, "[planner] RAM budget ", budget.ram, " is negative");
  check(budget.gpu_reserve >= 0, "[planner] GPU reserve ", budget.gpu_reserve, " is negative");
  DeviceBudget b = budget;
  if (b.ram == 0) b.ram = system_ram_budget();
  const Variant& v = *ref.variant;
  const std::vector<Part> parts = parts_at(v, ref.quant);
  int rank = -1;
  const Attempt a = choose(v, parts, b, &rank);

  PipelinePlan p;
  p.model = ref.entry->id;
  p.variant = v.id;
  p.quant = ref.quant;
  p.budget = b;
  p.strategy = a.strategy;
  p.stages = a.stages;
  p.gpu_peak = a.gpu_peak > 0 ? a.gpu_peak + std::min(b.gpu_reserve, b.vram) : 0;
  p.cpu_peak = a.cpu_peak;
  p.verdict = verdict_of(a, rank, b);
  for (size_t i = 0; i < parts.size(); ++i) {
    ComponentPlan c;
    c.id = parts[i].c->id;
    c.role = parts[i].c->role;
    c.precision = parts[i].precision;
    c.bytes = parts[i].bytes;
    c.work_bytes = parts[i].c->work_bytes;
    c.device = a.where[i] == Where::GPU ? "vulkan:0" : a.where[i] == Where::CPU ? "cpu" : "stream";
    c.residency = a.where[i] == Where::Stream ? "streamed"
                  : a.resident[i]             ? "resident"
                                              : "per stage";
    if (parts[i].c->optional) {
      c.residency = "optional";
      c.why = "merged into the main weights at load";
    } else if (a.where[i] == Where::Stream) {
      c.why = cat("does not fit resident; ", gib(stream_window(c.bytes)), " GPU window");
    } else if (a.where[i] == Where::CPU) {
      c.why = parts[i].c->offloadable ? "runs once per prompt; the CPU is fast enough"
                                      : "no room on the GPU";
    } else {
      c.why = a.resident[i] ? "stays loaded between runs" : "loaded for its stage, then freed";
    }
    p.components.push_back(std::move(c));
  }
  const std::string quant_note = cat(v.id, " at ", ref.quant);
  switch (p.verdict) {
    case Verdict::FitsOnGPU:
      p.summary = cat("fits on the GPU (", a.strategy, "): peak ", gib(p.gpu_peak), " of ",
                      gib(b.vram), " VRAM");
      break;
    case Verdict::PartialOffload:
      p.summary = cat("fits with CPU offload (", a.strategy, "): peak ", gib(p.gpu_peak),
                      " VRAM + ", gib(p.cpu_peak), " RAM");
      break;
    case Verdict::CPUOnly:
      p.summary = cat("runs on the CPU only: ", gib(p.cpu_peak), " of ", gib(b.ram), " RAM");
      break;
    case Verdict::DoesNotFit:
      p.summary = cat("does not fit: ", quant_note, " needs ", gib(p.cpu_peak), " of RAM (budget ",
                      gib(b.ram), ") even with everything on the CPU");
      break;
  }
  if (p.verdict != Verdict::FitsOnGPU && b.vram > 0) {
    // The largest precision of the main component that fits on the GPU outright.
    const Component* main = v.main_component();
    std::string best;
    int64_t best_bytes = 0;
    for (const auto& [prec, bytes] : main->sizes) {
      if (bytes <= best_bytes) continue;
      int r = -1;
      const Attempt t = choose(v, parts_at(v, prec), b, &r);
      if (verdict_of(t, r, b) == Verdict::FitsOnGPU) {
        best = prec;
        best_bytes = bytes;
      }
    }
    if (!best.empty())
      p.suggestions.push_back(
          cat(best, " (", gib(best_bytes), ") fits on the GPU: eight plan ", p.model, ":", best));
    else
      p.suggestions.push_back(cat("no catalog precision of ", main->id, " fits ", gib(b.vram),
                                  " of VRAM outright; a larger GPU or streaming is needed"));
  }
  for (const auto& c : v.components)
    if (!c.work_note.empty())
      p.notes.push_back(cat(c.id, " activations ", gib(c.work_bytes), ": ", c.work_note));
  p.notes.push_back(
      "activation sizes are catalog estimates until the family's runtime measures them");
  return p;
}

}  // namespace eight
