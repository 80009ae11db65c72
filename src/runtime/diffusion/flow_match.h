#pragma once
// The flow-matching Euler sampler of FLUX (diffusers' FlowMatchEulerDiscreteScheduler as
// FluxPipeline drives it), from scheduler/scheduler_config.json when the model has one:
//
//   sigmas    linspace(1, 1/steps, steps) (the pipeline's), shifted: without dynamic shifting
//             s' = shift s / (1 + (shift - 1) s) (schnell: shift 1, the identity); with it
//             (dev) s' = e^mu / (e^mu + (1/s - 1)), mu interpolated linearly in the packed image
//             sequence length between (base_image_seq_len, base_shift) and
//             (max_image_seq_len, max_shift); then a final 0 appended
//   timesteps sigma * num_train_timesteps (the transformer gets timestep / 1000 back)
//   step      x += (sigma[i + 1] - sigma[i]) * v, v the model's velocity
//
// diffusers keeps sigmas and timesteps in float32; so does this, so the transformer sees the
// same rounded times.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace eight::diffusion {

struct FlowMatchConfig {
  int64_t num_train_timesteps = 1000;
  double shift = 1.0;
  bool use_dynamic_shifting = false;
  double base_shift = 0.5, max_shift = 1.15;
  int64_t base_image_seq_len = 256, max_image_seq_len = 4096;
  std::string time_shift_type = "exponential";  // or "linear"
};

// Parses scheduler_config.json of a FlowMatchEulerDiscreteScheduler. Throws Error naming the key
// for a wrong type and for options this sampler does not implement (karras / exponential / beta
// sigmas, stochastic sampling, shift_terminal, invert_sigmas) and for another class.
FlowMatchConfig flow_match_config_from_json(std::string_view json_text);

// diffusers' calculate_shift: mu for a packed image sequence of `image_seq_len` tokens.
double flow_match_mu(const FlowMatchConfig& config, int64_t image_seq_len);

struct FlowSchedule {
  std::vector<float> sigmas;     // steps + 1 values, the last 0
  std::vector<float> timesteps;  // steps values: sigmas * num_train_timesteps
};

// The schedule of `steps` steps for a packed image sequence of `image_seq_len` tokens (used only
// with dynamic shifting). Throws Error for steps outside [1, 1000].
FlowSchedule flow_match_schedule(const FlowMatchConfig& config, int64_t steps,
                                 int64_t image_seq_len);

// x <- x + (sigma_next - sigma) * v over contiguous f32 tensors of one size.
void flow_euler_step(const Tensor& v, float sigma, float sigma_next, const Tensor& x);

}  // namespace eight::diffusion
