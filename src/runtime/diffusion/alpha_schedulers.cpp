// The schedulers that step on alphas_cumprod directly: ddim (Song et al. 2020, "Denoising
// Diffusion Implicit Models", eq. 12; diffusers' DDIMScheduler) and lcm (Luo et al. 2023,
// "Latent Consistency Models"; diffusers' LCMScheduler, multistep consistency sampling).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "runtime/diffusion/scheduler_impl.h"

namespace eight::diffusion::detail {

namespace {

struct Prediction2 {
  double x0, eps;
};

// x0 and eps from the model output at alpha_prod_t (DDIM's step 3).
Prediction2 predict(Prediction p, double out, double x, double alpha_t) {
  const double a = std::sqrt(alpha_t), b = std::sqrt(1 - alpha_t);
  switch (p) {
    case Prediction::Epsilon:
      return {(x - b * out) / a, out};
    case Prediction::Sample:
      return {out, (x - a * out) / b};
    case Prediction::VPrediction:
      break;
  }
  return {a * x - b * out, a * out + b * x};
}

class AlphaScheduler : public Scheduler {
 protected:
  AlphaScheduler(SchedulerConfig c, bool clip_default) : Scheduler(std::move(c)) {
    clip_ = config_.clip_sample.value_or(clip_default);
    final_alpha_ = config_.set_alpha_to_one.value_or(true) ? 1.0 : alphas_cumprod_.front();
  }
  double alpha_at(int64_t t) const {
    if (t < 0) return final_alpha_;
    check(t < config_.num_train_timesteps, "[", name(), "] timestep ", t, " is past the ",
          config_.num_train_timesteps, " training steps");
    return alphas_cumprod_[t];
  }
  // sqrt(alpha_t) x0 + sqrt(1 - alpha_t) noise at the step's own timestep (DDPM's q(x_t | x0)).
  void add_noise(const Tensor& x0, const Tensor& noise, int64_t i, const Tensor& y) const override {
    check_step("add_noise", noise, i, x0, y);
    const double a = alpha_at(static_cast<int64_t>(timesteps_[i]));
    const double keep = std::sqrt(a), add = std::sqrt(1 - a);
    map2(x0, noise, y, [keep, add](double v, double z) { return keep * v + add * z; });
  }
  double clip(double x0) const {
    const double r = config_.clip_sample_range;
    return clip_ ? std::clamp(x0, -r, r) : x0;
  }

  bool clip_ = false;
  double final_alpha_ = 1;
};

class DDIM final : public AlphaScheduler {
 public:
  explicit DDIM(const SchedulerConfig& c) : AlphaScheduler(c, true) {
    check(c.eta >= 0, "[ddim] eta must be >= 0, got ", c.eta);
  }

  std::string_view name() const override { return "ddim"; }

  void set_timesteps(int64_t steps) override {
    const int64_t n_train = config_.num_train_timesteps;
    check(steps >= 1 && steps <= n_train, "[ddim] steps must be in [1, ", n_train, "], got ",
          steps);
    const auto dn = static_cast<double>(n_train);
    std::vector<double> ts;
    switch (config_.timestep_spacing.value_or(TimestepSpacing::Leading)) {
      case TimestepSpacing::Linspace:
        for (double t : np_linspace(0, dn - 1, steps)) ts.push_back(np_round(t));
        std::reverse(ts.begin(), ts.end());
        break;
      case TimestepSpacing::Leading:
        ts = leading_timesteps(n_train, steps, 0, steps - 1, config_.steps_offset);
        break;
      case TimestepSpacing::Trailing:
        ts = trailing_timesteps(n_train, steps);
        break;
    }
    timesteps_ = std::move(ts);
  }

  void step(const Tensor& out, int64_t i, const Tensor& x, const Tensor& y, Rng& rng) override {
    check_step("step", out, i, x, y);
    const auto t = static_cast<int64_t>(timesteps_[i]);
    // diffusers steps back by T / steps whatever the spacing (so "trailing" lands off-grid).
    const int64_t prev = t - config_.num_train_timesteps / steps();
    const double a_t = alpha_at(t), a_prev = alpha_at(prev);
    const double variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev);
    const double std_dev = config_.eta * std::sqrt(variance);
    const double dir = std::sqrt(1 - a_prev - std_dev * std_dev), keep = std::sqrt(a_prev);
    const Prediction p = config_.prediction_type;
    map2(out, x, y, [&](double o, double v) {
      const Prediction2 e = predict(p, o, v, a_t);
      // eps is not recomputed from the clipped x0 (use_clipped_model_output = false).
      return keep * clip(e.x0) + dir * e.eps;
    });
    if (config_.eta > 0) {
      const Tensor noise = rng.normal(x.shape());
      map2(y, noise, y, [std_dev](double v, double z) { return v + std_dev * z; });
    }
  }
};

class LCM final : public AlphaScheduler {
 public:
  explicit LCM(const SchedulerConfig& c) : AlphaScheduler(c, false) {
    check(c.original_inference_steps >= 1 && c.original_inference_steps <= c.num_train_timesteps,
          "[lcm] original_inference_steps must be in [1, ", c.num_train_timesteps, "], got ",
          c.original_inference_steps);
  }

  std::string_view name() const override { return "lcm"; }

  void set_timesteps(int64_t steps) override {
    const int64_t orig = config_.original_inference_steps;
    check(steps >= 1 && steps <= orig,
          "[lcm] steps must be in [1, original_inference_steps = ", orig, "], got ", steps);
    // The distillation schedule: every k-th training step, k = T / original_steps, from the top.
    const int64_t k = config_.num_train_timesteps / orig;
    std::vector<double> origin;
    for (int64_t j = orig; j >= 1; --j) origin.push_back(static_cast<double>(j * k - 1));
    std::vector<double> ts;
    for (double idx : np_linspace(0, static_cast<double>(orig), steps, false))
      ts.push_back(origin[static_cast<size_t>(std::floor(idx))]);
    timesteps_ = std::move(ts);
  }

  void step(const Tensor& out, int64_t i, const Tensor& x, const Tensor& y, Rng& rng) override {
    check_step("step", out, i, x, y);
    const auto t = static_cast<int64_t>(timesteps_[i]);
    const bool last = i + 1 == steps();
    const int64_t prev = last ? t : static_cast<int64_t>(timesteps_[i + 1]);
    const double a_t = alpha_at(t), a_prev = alpha_at(prev);
    // Consistency-model boundary condition (sigma_data = 0.5): c_skip -> 1, c_out -> 0 at t = 0.
    const double st = static_cast<double>(t) * config_.timestep_scaling, sd2 = 0.25;
    const double c_skip = sd2 / (st * st + sd2), c_out = st / std::sqrt(st * st + sd2);
    const Prediction p = config_.prediction_type;
    map2(out, x, y,
         [&](double o, double v) { return c_out * clip(predict(p, o, v, a_t).x0) + c_skip * v; });
    if (last) return;
    // Re-noise the denoised sample to the next step's level.
    const Tensor noise = rng.normal(x.shape());
    const double keep = std::sqrt(a_prev), add = std::sqrt(1 - a_prev);
    map2(y, noise, y, [keep, add](double d, double z) { return keep * d + add * z; });
  }
};

}  // namespace

std::unique_ptr<Scheduler> make_ddim(const SchedulerConfig& config) {
  return std::make_unique<DDIM>(config);
}

std::unique_ptr<Scheduler> make_lcm(const SchedulerConfig& config) {
  return std::make_unique<LCM>(config);
}

}  // namespace eight::diffusion::detail
