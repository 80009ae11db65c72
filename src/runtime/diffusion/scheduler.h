#pragma once
// Noise schedulers (samplers) of the diffusion pipelines. Each is a small class driven only by its
// saved config (diffusers' scheduler/scheduler_config.json) and does what the diffusers class of
// the same name does, in double precision:
//
//   name       diffusers class                  notes
//   euler      EulerDiscreteScheduler           s_churn = 0; Karras sigmas when configured
//   euler_a    EulerAncestralDiscreteScheduler  use_karras_sigmas is ignored, as diffusers does
//   dpm++2m    DPMSolverMultistepScheduler      dpmsolver++, midpoint, solver_order 1 or 2,
//                                               lower_order_final, Karras sigmas when configured
//   lcm        LCMScheduler                     original_inference_steps, timestep_scaling
//   ddim       DDIMScheduler                    eta from the config (default 0, as the pipelines)
//
// Switching a diffusers directory's sampler (`--sampler NAME`) builds the named class from the
// same config, as `XScheduler.from_config(pipe.scheduler.config)` does: keys a class does not
// know are ignored, and keys the config leaves out take that class's own default (e.g. the
// timestep spacing is "linspace" for euler/euler_a/dpm++2m and "leading" for ddim/lcm).
//
// The loop a pipeline runs (x: latents [C, H, W] or [N, C, H, W], contiguous f32):
//
//   auto s = diffusion::make_scheduler("euler", config);
//   s->set_timesteps(30);
//   x = rng.normal(shape); ops::scale(x, s->init_noise_sigma(), x);
//   for (int64_t i = 0; i < s->steps(); ++i) {
//     s->scale_model_input(x, i, x_in);
//     eps = unet(x_in, s->timesteps()[i], ...);
//     s->step(eps, i, x, x, rng);      // x <- the sample at step i + 1
//   }
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "runtime/diffusion/rng.h"

namespace eight::diffusion {

enum class BetaSchedule { Linear, ScaledLinear };
enum class Prediction { Epsilon, VPrediction, Sample };
enum class TimestepSpacing { Linspace, Leading, Trailing };
enum class FinalSigmas { Zero, SigmaMin };

// The keys of scheduler_config.json that these schedulers read. Optional fields have defaults
// that differ between the diffusers classes; each scheduler fills them with its own.
struct SchedulerConfig {
  std::string class_name;  // "_class_name", e.g. "EulerDiscreteScheduler" (informational)
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  BetaSchedule beta_schedule = BetaSchedule::Linear;
  Prediction prediction_type = Prediction::Epsilon;
  std::optional<TimestepSpacing> timestep_spacing;
  int64_t steps_offset = 0;
  bool use_karras_sigmas = false;
  FinalSigmas final_sigmas_type = FinalSigmas::Zero;  // euler, dpm++2m
  std::optional<bool> clip_sample;                    // ddim: true, lcm: false
  double clip_sample_range = 1.0;
  std::optional<bool> set_alpha_to_one;        // ddim, lcm: true
  int64_t original_inference_steps = 50;       // lcm
  double timestep_scaling = 10.0;              // lcm
  int64_t solver_order = 2;                    // dpm++2m: 1 or 2
  std::string algorithm_type = "dpmsolver++";  // dpm++2m: the only one implemented
  std::string solver_type = "midpoint";        // dpm++2m: the only one implemented
  std::string interpolation_type = "linear";   // euler: the only one implemented
  std::string timestep_type = "discrete";      // euler: the only one implemented
  bool lower_order_final = true;               // dpm++2m
  bool euler_at_final = false;                 // dpm++2m
  double eta = 0;                              // ddim (a pipeline argument in diffusers)
};

// Parses scheduler_config.json. Throws Error naming the key for a value of the wrong type and for
// settings these schedulers do not implement (e.g. thresholding, trained_betas,
// beta_schedule "squaredcos_cap_v2", algorithm_type "sde-dpmsolver++").
SchedulerConfig scheduler_config_from_json(std::string_view json_text);

// "euler", "euler_a", "dpm++2m", "lcm", "ddim", or "" when the class has no eight scheduler.
std::string scheduler_name_for_class(std::string_view diffusers_class_name);
// The names make_scheduler accepts.
const std::vector<std::string>& scheduler_names();

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  virtual std::string_view name() const = 0;
  const SchedulerConfig& config() const { return config_; }

  // Plans `steps` denoising steps and resets the multistep history.
  virtual void set_timesteps(int64_t steps) = 0;
  int64_t steps() const { return static_cast<int64_t>(timesteps_.size()); }
  // The model's timestep at each step (fractional for Karras sigmas in euler).
  const std::vector<double>& timesteps() const { return timesteps_; }
  // The sigma at each step plus the final one (steps() + 1 values) for euler, euler_a and
  // dpm++2m; empty for ddim and lcm, which step on alphas_cumprod directly.
  const std::vector<double>& sigmas() const { return sigmas_; }
  // alphas_cumprod over the training timesteps ([num_train_timesteps]).
  const std::vector<double>& alphas_cumprod() const { return alphas_cumprod_; }

  // The standard deviation of the initial noise: unit noise is multiplied by this.
  virtual double init_noise_sigma() const { return 1.0; }
  // y = the model's input at step i for sample x (y may be x).
  virtual void scale_model_input(const Tensor& x, int64_t i, const Tensor& y) const;
  // y = the sample after step i, from the model's output at step i and the sample x (y may be
  // x). Ancestral samplers (euler_a, lcm before its last step, ddim with eta > 0) draw their
  // noise from rng. dpm++2m keeps a history, so after set_timesteps its steps must come in order
  // from any first step (img2img starts part-way: diffusers' set_begin_index).
  virtual void step(const Tensor& model_output, int64_t i, const Tensor& x, const Tensor& y,
                    Rng& rng) = 0;
  // y = x0 noised to the level of step i (img2img's initial latents; diffusers' add_noise at
  // timesteps[i]); y may alias either input.
  virtual void add_noise(const Tensor& x0, const Tensor& noise, int64_t i,
                         const Tensor& y) const = 0;

 protected:
  explicit Scheduler(SchedulerConfig config);
  // Checks the step index and that the three tensors are contiguous f32 of one shape.
  void check_step(const char* op, const Tensor& model_output, int64_t i, const Tensor& x,
                  const Tensor& y) const;

  SchedulerConfig config_;
  std::vector<double> alphas_cumprod_;
  std::vector<double> timesteps_, sigmas_;
};

// Throws Error for an unknown name (the message lists the known ones).
std::unique_ptr<Scheduler> make_scheduler(std::string_view name, const SchedulerConfig& config);

// Shared schedule arithmetic (diffusers' helpers), exposed for tests.
// sigma(t) = sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t]) over every training timestep.
std::vector<double> train_sigmas(const std::vector<double>& alphas_cumprod);
// Karras et al. 2022 (eq. 5, rho = 7): `steps` sigmas from sigma_max down to sigma_min.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps);
// The fractional timestep whose log-sigma interpolates to log(sigma) (diffusers' _sigma_to_t).
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas);

}  // namespace eight::diffusion
