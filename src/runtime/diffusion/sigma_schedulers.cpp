// The schedulers that step in sigma space (Karras et al. 2022's x = x0 + sigma * eps view of the
// DDPM schedule): euler, euler_a (diffusers' EulerDiscreteScheduler and
// EulerAncestralDiscreteScheduler) and dpm++2m (DPMSolverMultistepScheduler with dpmsolver++,
// Lu et al. 2022, "DPM-Solver++", algorithm 2, midpoint form).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "runtime/diffusion/scheduler_impl.h"

namespace eight::diffusion::detail {

namespace {

// x0 from the model output at noise level sigma, in the sigma parameterization (euler).
double euler_x0(Prediction p, double out, double x, double sigma) {
  switch (p) {
    case Prediction::Epsilon:
      return x - sigma * out;
    case Prediction::VPrediction:
      return out * (-sigma / std::sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
    case Prediction::Sample:
      break;
  }
  return out;
}

class Euler final : public Scheduler {
 public:
  Euler(const SchedulerConfig& c, bool ancestral) : Scheduler(c), ancestral_(ancestral) {
    check(c.interpolation_type == "linear", "[", name(), "] interpolation_type '",
          c.interpolation_type, "' is not supported (linear)");
    check(c.timestep_type == "discrete", "[", name(), "] timestep_type '", c.timestep_type,
          "' is not supported (discrete)");
    check(!ancestral || c.prediction_type != Prediction::Sample,
          "[euler_a] prediction_type 'sample' is not supported (diffusers does not implement it)");
  }

  std::string_view name() const override { return ancestral_ ? "euler_a" : "euler"; }

  void set_timesteps(int64_t steps) override {
    const int64_t n_train = config_.num_train_timesteps;
    check(steps >= 1 && steps <= n_train, "[", name(), "] steps must be in [1, ", n_train,
          "], got ", steps);
    const auto dn = static_cast<double>(n_train);
    std::vector<double> ts;
    switch (config_.timestep_spacing.value_or(TimestepSpacing::Linspace)) {
      case TimestepSpacing::Linspace:
        ts = np_linspace(0, dn - 1, steps);
        std::reverse(ts.begin(), ts.end());
        break;
      case TimestepSpacing::Leading:
        ts = leading_timesteps(n_train, steps, 0, steps - 1, config_.steps_offset);
        break;
      case TimestepSpacing::Trailing:
        ts = trailing_timesteps(n_train, steps);
        break;
    }
    const std::vector<double> train = train_sigmas(alphas_cumprod_);
    std::vector<double> sig;
    for (double t : ts) sig.push_back(interp_index(t, train));
    if (!ancestral_ && config_.use_karras_sigmas) {
      // diffusers takes sigma_max and sigma_min from the interpolated schedule's ends.
      sig = karras_sigmas(sig.back(), sig.front(), steps);
      std::vector<double> log_train(train.size());
      std::transform(train.begin(), train.end(), log_train.begin(),
                     [](double s) { return std::log(s); });
      ts.clear();
      for (double s : sig) ts.push_back(sigma_to_t(s, log_train));
    }
    const bool sigma_min = !ancestral_ && config_.final_sigmas_type == FinalSigmas::SigmaMin;
    sig.push_back(sigma_min ? train.front() : 0.0);
    timesteps_ = std::move(ts);
    sigmas_ = std::move(sig);
  }

  double init_noise_sigma() const override {
    check(!sigmas_.empty(), "[", name(), "] init_noise_sigma: call set_timesteps first");
    const double mx = *std::max_element(sigmas_.begin(), sigmas_.end());
    const auto spacing = config_.timestep_spacing.value_or(TimestepSpacing::Linspace);
    return spacing == TimestepSpacing::Leading ? std::sqrt(mx * mx + 1) : mx;
  }

  void scale_model_input(const Tensor& x, int64_t i, const Tensor& y) const override {
    check_step("scale_model_input", x, i, x, y);
    const double s = 1 / std::sqrt(sigmas_[i] * sigmas_[i] + 1);
    map2(x, x, y, [s](double v, double) { return v * s; });
  }

  void step(const Tensor& out, int64_t i, const Tensor& x, const Tensor& y, Rng& rng) override {
    check_step("step", out, i, x, y);
    const double sigma = sigmas_[i], next = sigmas_[i + 1];
    const Prediction p = config_.prediction_type;
    if (!ancestral_) {
      // sample + (sample - x0) / sigma * (sigma_next - sigma)
      map2(out, x, y, [&](double o, double v) {
        return v + (v - euler_x0(p, o, v, sigma)) / sigma * (next - sigma);
      });
      return;
    }
    // Ancestral: step deterministically down to sigma_down, then add noise of sigma_up so the
    // total variance reaches sigma_next^2 (k-diffusion's get_ancestral_step with eta = 1).
    const double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
    const double down = std::sqrt(next * next - up * up);
    map2(out, x, y, [&](double o, double v) {
      return v + (v - euler_x0(p, o, v, sigma)) / sigma * (down - sigma);
    });
    const Tensor noise = rng.normal(x.shape());
    map2(y, noise, y, [up](double v, double z) { return v + z * up; });
  }

  void add_noise(const Tensor& x0, const Tensor& noise, int64_t i, const Tensor& y) const override {
    check_step("add_noise", noise, i, x0, y);
    const double sigma = sigmas_[i];
    map2(x0, noise, y, [sigma](double v, double z) { return v + z * sigma; });
  }

 private:
  bool ancestral_;
};

class DPMSolverPP2M final : public Scheduler {
 public:
  explicit DPMSolverPP2M(const SchedulerConfig& c) : Scheduler(c) {
    check(c.algorithm_type == "dpmsolver++", "[dpm++2m] algorithm_type '", c.algorithm_type,
          "' is not supported (dpmsolver++)");
    check(c.solver_type == "midpoint", "[dpm++2m] solver_type '", c.solver_type,
          "' is not supported (midpoint)");
    check(c.solver_order == 1 || c.solver_order == 2, "[dpm++2m] solver_order ", c.solver_order,
          " is not supported (1 or 2)");
  }

  std::string_view name() const override { return "dpm++2m"; }

  void set_timesteps(int64_t steps) override {
    const int64_t n_train = config_.num_train_timesteps;
    check(steps >= 1 && steps <= n_train, "[dpm++2m] steps must be in [1, ", n_train, "], got ",
          steps);
    const auto dn = static_cast<double>(n_train);
    std::vector<double> ts;
    switch (config_.timestep_spacing.value_or(TimestepSpacing::Linspace)) {
      case TimestepSpacing::Linspace: {
        // steps + 1 points from the top, the last (t = 0) dropped.
        auto all = np_linspace(0, dn - 1, steps + 1);
        for (int64_t k = steps; k >= 1; --k) ts.push_back(np_round(all[k]));
        break;
      }
      case TimestepSpacing::Leading:
        ts = leading_timesteps(n_train, steps + 1, 1, steps, config_.steps_offset);
        break;
      case TimestepSpacing::Trailing:
        ts = trailing_timesteps(n_train, steps);
        break;
    }
    const std::vector<double> train = train_sigmas(alphas_cumprod_);
    std::vector<double> sig;
    if (config_.use_karras_sigmas) {
      // Unlike euler, the ends are the training schedule's own (t = 0 and t = T - 1).
      sig = karras_sigmas(train.front(), train.back(), steps);
      std::vector<double> log_train(train.size());
      std::transform(train.begin(), train.end(), log_train.begin(),
                     [](double s) { return std::log(s); });
      ts.clear();
      for (double s : sig) ts.push_back(np_round(sigma_to_t(s, log_train)));
    } else {
      for (double t : ts) sig.push_back(interp_index(t, train));
    }
    sig.push_back(config_.final_sigmas_type == FinalSigmas::SigmaMin ? train.front() : 0.0);
    timesteps_ = std::move(ts);
    sigmas_ = std::move(sig);
    next_step_ = -1;  // any first step
    lower_order_nums_ = 0;
    prev_x0_ = Tensor();
  }

  void step(const Tensor& out, int64_t i, const Tensor& x, const Tensor& y, Rng&) override {
    check_step("step", out, i, x, y);
    check(next_step_ < 0 || i == next_step_, "[dpm++2m] steps must run in order: expected step ",
          next_step_, ", got ", i, " (call set_timesteps to start over)");
    const int64_t n = steps();
    const bool lower_order_final =
        i == n - 1 && (config_.euler_at_final || (config_.lower_order_final && n < 15) ||
                       config_.final_sigmas_type == FinalSigmas::Zero);
    // The model output as a data prediction x0 (convert_model_output, dpmsolver++). The VP
    // schedule's alpha_t, sigma_t follow from the Karras sigma: alpha = 1 / sqrt(sigma^2 + 1).
    const Vp s0 = vp(sigmas_[i]);
    const Prediction p = config_.prediction_type;
    Tensor x0t = Tensor::empty(x.shape(), DType::F32);
    float* x0 = x0t.data<float>();
    const int64_t n_el = x.numel();
    const float* po = out.data<float>();
    const float* px = x.data<float>();
    for (int64_t k = 0; k < n_el; ++k) {
      const double o = po[k], v = px[k];
      x0[k] = static_cast<float>(p == Prediction::Epsilon       ? (v - s0.sigma * o) / s0.alpha
                                 : p == Prediction::VPrediction ? s0.alpha * v - s0.sigma * o
                                                                : o);
    }
    const Vp t = vp(sigmas_[i + 1]);
    // exp(-h) with h = lambda_t - lambda_s0, lambda = log(alpha / sigma); 0 when sigma_t = 0.
    const double exp_neg_h = t.sigma == 0 ? 0.0 : (t.sigma / t.alpha) / (s0.sigma / s0.alpha);
    const double ratio = t.sigma / s0.sigma, c = t.alpha * (exp_neg_h - 1);
    float* py = y.data<float>();
    if (config_.solver_order == 1 || lower_order_nums_ < 1 || lower_order_final) {
      // First order (DDIM-like): x_t = sigma_t / sigma_s * x - alpha_t (e^-h - 1) x0.
      for (int64_t k = 0; k < n_el; ++k) py[k] = static_cast<float>(ratio * px[k] - c * x0[k]);
    } else {
      // Second order, midpoint: D0 = m0, D1 = (m0 - m1) / r0 with r0 = h_0 / h. (diffusers'
      // lower_order_second only matters for solver_order 3.)
      const Vp s1 = vp(sigmas_[i - 1]);
      const double h = std::log(s0.sigma / s0.alpha) - std::log(t.sigma / t.alpha);
      const double h0 = std::log(s1.sigma / s1.alpha) - std::log(s0.sigma / s0.alpha);
      const double r0 = h0 / h;
      const float* m1 = prev_x0_.data<float>();
      for (int64_t k = 0; k < n_el; ++k) {
        const double d0 = x0[k], d1 = (d0 - m1[k]) / r0;
        py[k] = static_cast<float>(ratio * px[k] - c * d0 - 0.5 * c * d1);
      }
    }
    prev_x0_ = std::move(x0t);
    lower_order_nums_ = std::min<int64_t>(lower_order_nums_ + 1, config_.solver_order);
    next_step_ = i + 1;
  }

  void add_noise(const Tensor& x0, const Tensor& noise, int64_t i, const Tensor& y) const override {
    check_step("add_noise", noise, i, x0, y);
    const Vp v = vp(sigmas_[i]);
    map2(x0, noise, y, [v](double a, double z) { return v.alpha * a + v.sigma * z; });
  }

 private:
  struct Vp {
    double alpha, sigma;
  };
  static Vp vp(double sigma) {
    const double alpha = 1 / std::sqrt(sigma * sigma + 1);
    return {alpha, sigma * alpha};
  }

  int64_t next_step_ = -1, lower_order_nums_ = 0;
  Tensor prev_x0_;  // the previous step's x0 prediction (m1)
};

}  // namespace

std::unique_ptr<Scheduler> make_euler(const SchedulerConfig& config, bool ancestral) {
  return std::make_unique<Euler>(config, ancestral);
}

std::unique_ptr<Scheduler> make_dpmpp_2m(const SchedulerConfig& config) {
  return std::make_unique<DPMSolverPP2M>(config);
}

}  // namespace eight::diffusion::detail
