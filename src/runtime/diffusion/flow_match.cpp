// FLUX's flow-matching Euler schedule and step (see flow_match.h).
#include "runtime/diffusion/flow_match.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runtime/diffusion/scheduler_impl.h"

namespace eight::diffusion {

using json = nlohmann::json;

using detail::read;

FlowMatchConfig flow_match_config_from_json(std::string_view json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail("[flux] the scheduler config is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[flux] the scheduler config is not a JSON object");
  std::string cls;
  read(j, "_class_name", cls);
  check(cls.empty() || cls == "FlowMatchEulerDiscreteScheduler", "[flux] the scheduler '", cls,
        "' is not FlowMatchEulerDiscreteScheduler (the only one eight runs FLUX with)");
  FlowMatchConfig c;
  read(j, "num_train_timesteps", c.num_train_timesteps);
  read(j, "shift", c.shift);
  read(j, "use_dynamic_shifting", c.use_dynamic_shifting);
  read(j, "base_shift", c.base_shift);
  read(j, "max_shift", c.max_shift);
  read(j, "base_image_seq_len", c.base_image_seq_len);
  read(j, "max_image_seq_len", c.max_image_seq_len);
  read(j, "time_shift_type", c.time_shift_type);
  // Options that change the schedule and that eight does not implement are refused rather than
  // silently ignored.
  for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                          "stochastic_sampling", "invert_sigmas"}) {
    bool on = false;
    read(j, key, on);
    check(!on, "[flux] scheduler option '", key, "' is not implemented");
  }
  double terminal = 0;
  read(j, "shift_terminal", terminal);
  check(terminal == 0, "[flux] scheduler option 'shift_terminal' is not implemented");
  check(c.num_train_timesteps >= 1 && c.num_train_timesteps <= 100000,
        "[flux] num_train_timesteps ", c.num_train_timesteps, " is out of range");
  check(std::isfinite(c.shift) && c.shift > 0, "[flux] the scheduler's shift ", c.shift,
        " must be positive");
  check(std::isfinite(c.base_shift) && std::isfinite(c.max_shift),
        "[flux] base_shift / max_shift are not finite");
  check(c.max_image_seq_len != c.base_image_seq_len,
        "[flux] max_image_seq_len equals base_image_seq_len");
  check(c.time_shift_type == "exponential" || c.time_shift_type == "linear",
        "[flux] time_shift_type '", c.time_shift_type, "' is not exponential or linear");
  return c;
}

double flow_match_mu(const FlowMatchConfig& c, int64_t image_seq_len) {
  const double m = (c.max_shift - c.base_shift) /
                   static_cast<double>(c.max_image_seq_len - c.base_image_seq_len);
  const double b = c.base_shift - m * static_cast<double>(c.base_image_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

FlowSchedule flow_match_schedule(const FlowMatchConfig& c, int64_t steps, int64_t image_seq_len) {
  check(steps >= 1 && steps <= 1000, "[flux] ", steps, " steps (1 to 1000)");
  FlowSchedule s;
  const double mu = flow_match_mu(c, image_seq_len);
  // np.linspace(1, 1 / steps, steps) (FluxPipeline), then .astype(float32) in the scheduler.
  const std::vector<double> base =
      detail::np_linspace(1.0, 1.0 / static_cast<double>(steps), steps);
  for (const double v : base) {
    const auto sf = static_cast<double>(static_cast<float>(v));
    double shifted;
    if (c.use_dynamic_shifting)
      shifted = c.time_shift_type == "exponential" ? std::exp(mu) / (std::exp(mu) + (1 / sf - 1))
                                                   : mu / (mu + (1 / sf - 1));
    else
      shifted = c.shift * sf / (1 + (c.shift - 1) * sf);
    const auto sigma = static_cast<float>(shifted);
    check(std::isfinite(sigma), "[flux] the scheduler config (shift ", c.shift, ", mu ", mu,
          ") gives a sigma that is not finite");
    s.sigmas.push_back(sigma);
    s.timesteps.push_back(sigma * static_cast<float>(c.num_train_timesteps));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

void flow_euler_step(const Tensor& v, float sigma, float sigma_next, const Tensor& x) {
  check(v.dtype() == DType::F32 && x.dtype() == DType::F32 && v.is_contiguous() &&
            x.is_contiguous() && v.numel() == x.numel(),
        "[flux] the Euler step takes contiguous f32 tensors of one size");
  const float dt = sigma_next - sigma;
  const float* pv = v.data<float>();
  float* px = x.data<float>();
  for (int64_t k = 0; k < x.numel(); ++k) px[k] += dt * pv[k];
}

}  // namespace eight::diffusion
