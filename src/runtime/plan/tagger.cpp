#include "runtime/plan/tagger.h"

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "runtime/plan/bert.h"

namespace eight {

TaggerPlan plan_tagger(const tagger::Tagger& model, const TaggerPlanRequest& r) {
  check(r.batch >= 1 && r.batch <= 1024, "[planner] a tagger batch must be in [1, 1024], got ",
        r.batch);
  check(r.image_width >= 0 && r.image_height >= 0 && r.image_width <= 65536 &&
            r.image_height <= 65536,
        "[planner] image sizes must be in [0, 65536], got ", r.image_width, "x", r.image_height);
  TaggerPlan p;
  p.model = model.name();
  p.architecture = model.architecture();
  p.request = r;
  p.request.n_threads = r.n_threads > 0 ? r.n_threads : default_thread_count();
  p.request.ram = r.ram > 0 ? r.ram : system_ram_budget();
  p.memory = model.memory(r.batch, p.request.n_threads, r.image_width, r.image_height);
  p.memory.preprocess_bytes += r.image_file_bytes;
  const tagger::MemoryEstimate& m = p.memory;
  p.cpu.device = "cpu";
  p.cpu.budget = p.request.ram;
  p.cpu.items.push_back({.what = "weights",
                         .bytes = m.weight_bytes,
                         .why = cat(p.architecture, ", used in place from the file"),
                         .mapped = true});
  p.cpu.items.push_back(
      {.what = "input batch", .bytes = m.input_bytes, .why = cat(r.batch, " preprocessed images")});
  // Decoding the next image and running the network never overlap (tag_images does one, then
  // the other), so only the larger of the two is billed.
  const bool run_larger = m.activation_bytes >= m.preprocess_bytes;
  p.cpu.items.push_back({.what = run_larger ? "activations" : "image decoding",
                         .bytes = std::max(m.activation_bytes, m.preprocess_bytes),
                         .why = run_larger
                                    ? cat("one forward pass of ", r.batch, " images")
                                    : cat("one ", r.image_width, "x", r.image_height, " image")});
  p.cpu.items.push_back({.what = "kernel scratch",
                         .bytes = m.scratch_bytes,
                         .why = cat(p.request.n_threads, " threads")});
  return p;
}

void TaggerPlan::check_host_budget() const {
  check(fits(), "[planner] ", model, " needs ", format_bytes(host_peak()), " of RAM (weights ",
        format_bytes(memory.weight_bytes), ", ", request.batch, " images per pass ",
        format_bytes(host_peak() - memory.weight_bytes), ") but the budget is ",
        format_bytes(cpu.budget), "; use a smaller --batch");
}

std::string render_plan(const TaggerPlan& p) {
  return cat(p.model, " (", p.architecture, " tagger, ", p.request.batch, " images per pass)\n",
             render_cpu_items(p.cpu, "CPU only"));
}

}  // namespace eight
