#include "runtime/plan/clip.h"

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "runtime/plan/scratch_peak.h"

namespace eight {
namespace {

using plan_detail::ScratchPeak;

struct VisionShape {
  int64_t n, np, S, D, I, K, P, d;
};

VisionShape vision_shape(const clip::Config& c, int64_t n, int64_t h, int64_t w) {
  const int64_t p = c.patch_size;
  check(p > 0 && h >= p && w >= p, "[planner] CLIP images of ", h, "x", w, " are smaller than a ",
        p, "x", p, " patch");
  const int64_t np = (h / p) * (w / p);
  return {n,
          np,
          np + 1,
          c.vision.hidden,
          c.vision.intermediate,
          3 * p * p,
          c.projection_dim,
          c.vision.heads > 0 ? c.vision.hidden / c.vision.heads : c.vision.hidden};
}

int64_t vision_activations(const VisionShape& v, int64_t h, int64_t w, int64_t threads) {
  const int64_t R = v.n * v.S;
  return 4 * (3 * v.n * h * w                      // input pixels
              + v.n * v.np * v.K                   // patches
              + v.n * v.np * v.D                   // patch embeddings
              + R * v.D                            // x
              + R * (5 * v.D + v.I)                // h, q‖k‖v, attention out, MLP hidden
              + threads * (v.S * v.S + v.d * v.S)  // each thread's head scores and Vᵀ
              + v.n * (v.D + v.P));                // pooled, projected
}

}  // namespace

int64_t clip_text_activation_bytes(int64_t D, int64_t I, int64_t heads, int64_t L, int64_t n,
                                   int64_t P, int64_t threads) {
  const int64_t rows = n * L, d = heads > 0 ? D / heads : D;
  return 4 * (rows + rows * D + rows * (5 * D + I) + threads * (L * L + d * L) + n * (D + P));
}

int64_t clip_vision_activation_bytes(const clip::Config& c, int64_t images) {
  return vision_activations(vision_shape(c, images, c.image_size, c.image_size), c.image_size,
                            c.image_size, 1);
}

ClipPlan plan_clip(const clip::Config& c, const std::string& name, int64_t file_bytes,
                   DType matrix_type, const ClipPlanRequest& r) {
  check(r.images >= 0 && r.texts >= 0 && (r.images > 0 || r.texts > 0),
        "[planner] a CLIP plan needs images or texts per pass, got ", r.images, " and ", r.texts);
  check(file_bytes >= 0, "[planner] negative file size");
  ClipPlan plan;
  plan.model = name;
  plan.request = r;
  const int64_t h = r.height > 0 ? r.height : c.image_size;
  const int64_t w = r.width > 0 ? r.width : c.image_size;
  plan.request.height = h;
  plan.request.width = w;
  const int threads = r.n_threads > 0 ? r.n_threads : default_thread_count();
  plan.request.n_threads = threads;

  // Weights: the mapping, plus f32 copies of the small tensors when the file stores them in
  // another type (class and position embeddings, norms, biases).
  plan.weight_bytes = file_bytes;
  if (matrix_type != DType::F32) {
    const int64_t S = vision_shape(c, 1, c.image_size, c.image_size).S;
    const auto& V = c.vision;
    const auto& T = c.text;
    int64_t small = V.hidden * (1 + S + 4) + V.layers * (9 * V.hidden + V.intermediate);
    if (c.has_text)
      small += T.hidden * (c.max_positions + 2) + T.layers * (9 * T.hidden + T.intermediate);
    plan.weight_bytes += 4 * small;
  }

  ScratchPeak scratch;
  if (r.images > 0) {
    const VisionShape v = vision_shape(c, r.images, h, w);
    plan.vision_bytes = vision_activations(v, h, w, threads);
    const int64_t R = v.n * v.S;
    scratch.add(matrix_type, v.n * v.np, v.K);
    scratch.add(matrix_type, R, v.D);
    scratch.add(matrix_type, R, v.I);
    scratch.add_per_thread(DType::F32, v.S, v.d);  // q·kᵀ per (image, head), one per thread
    scratch.add_per_thread(DType::F32, v.S, v.S);  // P·V
    scratch.add(matrix_type, v.n, v.D);
  }
  if (r.texts > 0) {
    check(c.has_text, "[planner] ", name, " has no text tower");
    const int64_t D = c.text.hidden, I = c.text.intermediate, P = c.projection_dim;
    const int64_t L = c.max_positions, rows = r.texts * L;
    const int64_t d = c.text.heads > 0 ? D / c.text.heads : D;
    plan.text_bytes = clip_text_activation_bytes(D, I, c.text.heads, L, r.texts, P, threads);
    scratch.add(matrix_type, rows, D);
    scratch.add(matrix_type, rows, I);
    scratch.add(matrix_type, r.texts, D);
    scratch.add_per_thread(DType::F32, L, d);
    scratch.add_per_thread(DType::F32, L, L);
  }
  plan.scratch_bytes = scratch.bytes(threads);

  plan.cpu.device = "cpu";
  plan.cpu.budget = system_ram_budget();
  plan.cpu.items.push_back({.what = "weights",
                            .bytes = plan.weight_bytes,
                            .why = cat(name, " (", dtype_name(matrix_type),
                                       " matrices), used in "
                                       "place from the file"),
                            .mapped = true});
  const bool vision_larger = plan.vision_bytes >= plan.text_bytes;
  plan.cpu.items.push_back(
      {.what = vision_larger ? "image activations" : "text activations",
       .bytes = std::max(plan.vision_bytes, plan.text_bytes),
       .why = vision_larger ? cat(r.images, " image(s) of ", h, "x", w, " per pass")
                            : cat(r.texts, " text(s) of up to ", c.max_positions, " tokens")});
  plan.cpu.items.push_back(
      {.what = "kernel scratch", .bytes = plan.scratch_bytes, .why = cat(threads, " threads")});
  return plan;
}

void ClipPlan::check_host_budget(int64_t ram) const {
  const int64_t budget = ram > 0 ? ram : system_ram_budget();
  check(host_peak() <= budget, "[planner] ", model, " needs ", format_bytes(host_peak()),
        " of RAM (weights ", format_bytes(weight_bytes), ", activations ",
        format_bytes(std::max(vision_bytes, text_bytes)), " for ", request.images,
        " images per pass) but the budget is ", format_bytes(budget),
        "; use a smaller --batch or a quantized model");
}

}  // namespace eight
