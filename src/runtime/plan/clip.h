#pragma once
// Memory plan for CLIP (models/clip): the weights (the checkpoint file, used in place through its
// mapping, plus the small tensors the loader copies to f32) and the activations of one batch of
// images or texts as the towers allocate them, plus the matmul kernels' per-thread scratch.
//
// Vision, batch n at H×W pixels, patch p (np = (H/p)·(W/p) patches, S = np + 1 tokens, hidden D,
// intermediate I, K = 3p², R = n·S rows), all f32:
//   input pixels 3·n·H·W · 4, patches n·np·K · 4, patch embeddings n·np·D · 4, x R·D · 4,
//   one layer's scratch (h, q‖k‖v, attention out, MLP hidden) R·(5D + I) · 4, per thread one
//   head's attention scores S² · 4 and Vᵀ d·S · 4 (d = D / heads), pooled/projected rows
//   n·(D + P) · 4 (clip_vision.cpp forward_vision, clip_model.cpp run_tower / full_attention).
// Text, n texts of up to L = max_positions tokens (T = n·L rows): ids T · 4, x T·D · 4, layer
// scratch T·(5D + I) · 4, per thread scores L² · 4 and Vᵀ d·L · 4, pooled n·(D + P) · 4
// (clip_text.cpp; the causal mask is applied to the same score matrix).
// Kernel scratch: backend/cpu/scratch.h's exact per-product figures (matmul_scratch) for every
// product of the pass, largest per slot, grown with its headroom, per thread (attention's
// products run on every thread as their own caller).
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "models/clip/clip.h"
#include "runtime/plan/planner.h"

namespace eight {

struct ClipPlanRequest {
  int64_t images = 1;  // images per forward pass (the batch)
  int64_t texts = 0;   // texts per forward pass
  int64_t height = 0;  // pixel size of the images; 0: the model's image_size
  int64_t width = 0;
  int n_threads = 0;  // 0: default_thread_count()
};

struct ClipPlan {
  std::string model;
  ClipPlanRequest request;
  int64_t weight_bytes = 0;   // file mapping + f32 copies of small tensors
  int64_t vision_bytes = 0;   // activations of one image batch
  int64_t text_bytes = 0;     // activations of one text batch
  int64_t scratch_bytes = 0;  // kernel scratch over all threads
  DevicePlan cpu;             // the bill (items add up to host_peak)
  int64_t host_peak() const { return cpu.total(); }
  // Throws Error with the numbers when the plan exceeds the RAM budget (0: system_ram_budget()).
  void check_host_budget(int64_t ram = 0) const;
};

// file_bytes: the checkpoint's bytes as mapped (model.safetensors or the GGUF); matrix_type: the
// type of the towers' weight matrices (F32, F16, BF16, Q8_0, ...).
ClipPlan plan_clip(const clip::Config& config, const std::string& name, int64_t file_bytes,
                   DType matrix_type, const ClipPlanRequest& request);

// A text tower's activations for n texts of L tokens (hidden D, intermediate I, projection P; see
// the header comment), also planned for the text encoders of image pipelines (diffusion.cpp).
int64_t clip_text_activation_bytes(int64_t D, int64_t I, int64_t heads, int64_t L, int64_t n,
                                   int64_t P, int64_t threads);

// The planned activations (vision batch at the config's image size) for the catalog's figures.
int64_t clip_vision_activation_bytes(const clip::Config& config, int64_t images);

}  // namespace eight
