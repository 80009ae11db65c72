#include "runtime/plan/blip.h"

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "runtime/plan/clip.h"

namespace eight {

BlipPlan plan_blip(const blip::Config& c, const std::string& name, int64_t file_bytes,
                   DType matrix_type, int beams, int max_length, int n_threads,
                   int question_tokens) {
  check(beams >= 1 && max_length >= 1, "[planner] BLIP needs beams >= 1 and max_length >= 1");
  // The ViT is CLIP's tower without the pre-norm or a projection: CLIP's plan counts it.
  clip::Config vc;
  vc.vision = {.hidden = c.vision.hidden,
               .intermediate = c.vision.intermediate,
               .layers = c.vision.layers,
               .heads = c.vision.heads,
               .eps = c.vision.eps,
               .act = "gelu"};
  vc.image_size = c.vision.image_size;
  vc.patch_size = c.vision.patch_size;
  vc.projection_dim = c.vision.hidden;
  vc.has_text = false;
  const ClipPlan vision =
      plan_clip(vc, name, file_bytes, matrix_type,
                {.images = 1, .texts = 0, .height = 0, .width = 0, .n_threads = n_threads});
  BlipPlan p;
  p.model = name;
  p.beams = beams;
  p.max_length = max_length;
  p.n_threads = vision.request.n_threads;
  p.weight_bytes = vision.weight_bytes;
  p.vision_bytes = vision.vision_bytes;
  p.scratch_bytes = vision.scratch_bytes;
  const blip::TextConfig& t = c.text;
  const int64_t grid = c.vision.image_size / c.vision.patch_size, S = grid * grid + 1;
  const int64_t L = t.layers, D = t.hidden, E = t.encoder_hidden, B = beams;
  int64_t floats = 2 * L * B * max_length * D       // self-attention cache
                   + B * max_length * D             // a layer's copy while reordering
                   + 2 * L * S * E                  // cross-attention keys and values
                   + S * c.vision.hidden            // image embeddings
                   + B * (6 * D + t.intermediate);  // one step's rows
  // The preprocessed pixels stay with the caller through the generation.
  floats += 3 * int64_t{c.vision.image_size} * c.vision.image_size;
  const int64_t Q = question_tokens > 0 ? question_tokens : t.max_positions;
  // VQA: the answer decoder cross-attends to the question's states (their keys and values
  // replace the image's, which the question encoder used and dropped).
  if (c.vqa) floats += 2 * L * Q * D + Q * D - 2 * L * S * E;
  p.decoder_bytes = 4 * floats + 16 * B * static_cast<int64_t>(t.vocab_size);
  p.cpu.device = "cpu";
  p.cpu.budget = system_ram_budget();
  p.cpu.items.push_back(
      {.what = "weights",
       .bytes = p.weight_bytes,
       .why = cat(name, " (", dtype_name(matrix_type), " matrices), used in place from the file"),
       .mapped = true});
  // The vision tower's activations are freed before decoding starts (only the image embeddings,
  // counted in the decoder's, stay): the larger of the two phases is the peak.
  const bool vision_larger = p.vision_bytes >= p.decoder_bytes;
  p.cpu.items.push_back(
      {.what = vision_larger ? "image activations" : "decoder",
       .bytes = std::max(p.vision_bytes, p.decoder_bytes),
       .why = vision_larger ? cat("one ", c.vision.image_size, "x", c.vision.image_size, " image")
                            : cat(beams, " beam(s) of up to ", max_length, " tokens")});
  p.cpu.items.push_back(
      {.what = "kernel scratch", .bytes = p.scratch_bytes, .why = cat(p.n_threads, " threads")});
  return p;
}

void BlipPlan::check_host_budget(int64_t ram) const {
  const int64_t budget = ram > 0 ? ram : system_ram_budget();
  check(host_peak() <= budget, "[planner] ", model, " needs ", format_bytes(host_peak()),
        " of RAM (weights ", format_bytes(weight_bytes), ", image ", format_bytes(vision_bytes),
        ", decoder ", format_bytes(decoder_bytes), " for ", beams, " beam(s)), over the budget of ",
        format_bytes(budget));
}

}  // namespace eight
