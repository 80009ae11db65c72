// Scheduler config parsing, the shared schedule arithmetic and the factory.
#include "runtime/diffusion/scheduler.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runtime/diffusion/scheduler_impl.h"

namespace eight::diffusion {

using json = nlohmann::json;

namespace {

using detail::field;
using detail::read;

template <class T>
void read(const json& j, const char* key, std::optional<T>& out) {
  T v{};
  if (!field(j, key)) return;
  read(j, key, v);
  out = v;
}

bool flag(const json& j, const char* key) {
  bool v = false;
  read(j, key, v);
  return v;
}

// Python's json module writes Infinity, -Infinity and NaN for non-finite floats (diffusers saves
// DPMSolverMultistepScheduler's lambda_min_clipped as -Infinity); strict JSON has no such tokens.
// They become null outside strings, which the readers treat as "unset".
std::string python_json_to_json(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (std::string_view token : {"-Infinity", "Infinity", "NaN"})
      if (text.substr(i, token.size()) == token) {
        out += "null";
        i += token.size() - 1;
        replaced = true;
        break;
      }
    if (!replaced) out += c;
  }
  return out;
}

}  // namespace

SchedulerConfig scheduler_config_from_json(std::string_view json_text) {
  json j;
  try {
    j = json::parse(python_json_to_json(json_text));
  } catch (const json::exception& e) {
    fail("[scheduler] config is not JSON: ", e.what());
  }
  check(j.is_object(), "[scheduler] config must be a JSON object");
  SchedulerConfig c;
  read(j, "_class_name", c.class_name);
  read(j, "num_train_timesteps", c.num_train_timesteps);
  read(j, "beta_start", c.beta_start);
  read(j, "beta_end", c.beta_end);
  std::string s;
  if (field(j, "beta_schedule")) {
    read(j, "beta_schedule", s);
    check(s == "linear" || s == "scaled_linear", "[scheduler] beta_schedule '", s,
          "' is not supported (linear, scaled_linear)");
    c.beta_schedule = s == "linear" ? BetaSchedule::Linear : BetaSchedule::ScaledLinear;
  }
  if (field(j, "prediction_type")) {
    read(j, "prediction_type", s);
    check(s == "epsilon" || s == "v_prediction" || s == "sample", "[scheduler] prediction_type '",
          s, "' is not supported (epsilon, v_prediction, sample)");
    c.prediction_type = s == "epsilon"        ? Prediction::Epsilon
                        : s == "v_prediction" ? Prediction::VPrediction
                                              : Prediction::Sample;
  }
  if (field(j, "timestep_spacing")) {
    read(j, "timestep_spacing", s);
    check(s == "linspace" || s == "leading" || s == "trailing", "[scheduler] timestep_spacing '", s,
          "' is not supported (linspace, leading, trailing)");
    c.timestep_spacing = s == "linspace"  ? TimestepSpacing::Linspace
                         : s == "leading" ? TimestepSpacing::Leading
                                          : TimestepSpacing::Trailing;
  }
  if (field(j, "final_sigmas_type")) {
    read(j, "final_sigmas_type", s);
    check(s == "zero" || s == "sigma_min", "[scheduler] final_sigmas_type '", s,
          "' is not supported (zero, sigma_min)");
    c.final_sigmas_type = s == "zero" ? FinalSigmas::Zero : FinalSigmas::SigmaMin;
  }
  read(j, "steps_offset", c.steps_offset);
  read(j, "use_karras_sigmas", c.use_karras_sigmas);
  read(j, "clip_sample", c.clip_sample);
  read(j, "clip_sample_range", c.clip_sample_range);
  read(j, "set_alpha_to_one", c.set_alpha_to_one);
  read(j, "original_inference_steps", c.original_inference_steps);
  read(j, "timestep_scaling", c.timestep_scaling);
  read(j, "solver_order", c.solver_order);
  read(j, "algorithm_type", c.algorithm_type);
  read(j, "solver_type", c.solver_type);
  read(j, "interpolation_type", c.interpolation_type);
  read(j, "timestep_type", c.timestep_type);
  read(j, "lower_order_final", c.lower_order_final);
  read(j, "euler_at_final", c.euler_at_final);
  read(j, "eta", c.eta);
  check(!field(j, "trained_betas"), "[scheduler] trained_betas is not supported");
  for (const char* key : {"thresholding", "rescale_betas_zero_snr", "use_exponential_sigmas",
                          "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas"})
    check(!flag(j, key), "[scheduler] ", key, " = true is not supported");
  check(c.num_train_timesteps >= 2 && c.num_train_timesteps <= 100000,
        "[scheduler] num_train_timesteps must be in [2, 100000], got ", c.num_train_timesteps);
  check(c.beta_start > 0 && c.beta_end > 0 && c.beta_start < 1 && c.beta_end < 1,
        "[scheduler] beta_start and beta_end must be in (0, 1), got ", c.beta_start, " and ",
        c.beta_end);
  return c;
}

std::string scheduler_name_for_class(std::string_view cls) {
  if (cls == "EulerDiscreteScheduler") return "euler";
  if (cls == "EulerAncestralDiscreteScheduler") return "euler_a";
  if (cls == "DPMSolverMultistepScheduler") return "dpm++2m";
  if (cls == "LCMScheduler") return "lcm";
  if (cls == "DDIMScheduler") return "ddim";
  return "";
}

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names{"euler", "euler_a", "dpm++2m", "lcm", "ddim"};
  return names;
}

std::unique_ptr<Scheduler> make_scheduler(std::string_view name, const SchedulerConfig& config) {
  if (name == "euler") return detail::make_euler(config, false);
  if (name == "euler_a") return detail::make_euler(config, true);
  if (name == "dpm++2m") return detail::make_dpmpp_2m(config);
  if (name == "lcm") return detail::make_lcm(config);
  if (name == "ddim") return detail::make_ddim(config);
  std::string known;
  for (const auto& n : scheduler_names()) known += (known.empty() ? "" : ", ") + n;
  fail("[scheduler] unknown sampler '", name, "' (known: ", known, ")");
}

Scheduler::Scheduler(SchedulerConfig config) : config_(std::move(config)) {
  // diffusers: betas = linspace(beta_start, beta_end) or linspace(sqrt(start), sqrt(end))^2;
  // alphas_cumprod = cumprod(1 - betas).
  const int64_t n = config_.num_train_timesteps;
  const bool scaled = config_.beta_schedule == BetaSchedule::ScaledLinear;
  const auto betas =
      scaled ? detail::np_linspace(std::sqrt(config_.beta_start), std::sqrt(config_.beta_end), n)
             : detail::np_linspace(config_.beta_start, config_.beta_end, n);
  alphas_cumprod_.resize(static_cast<size_t>(n));
  double prod = 1;
  for (int64_t t = 0; t < n; ++t) {
    const double beta = scaled ? betas[t] * betas[t] : betas[t];
    prod *= 1 - beta;
    alphas_cumprod_[t] = prod;
  }
}

void Scheduler::scale_model_input(const Tensor& x, int64_t i, const Tensor& y) const {
  check_step("scale_model_input", x, i, x, y);
  if (x.raw() != y.raw()) std::copy_n(x.data<float>(), x.numel(), y.data<float>());
}

void Scheduler::check_step(const char* op, const Tensor& model_output, int64_t i, const Tensor& x,
                           const Tensor& y) const {
  check(!timesteps_.empty(), "[", name(), "] ", op, ": call set_timesteps first");
  check(i >= 0 && i < steps(), "[", name(), "] ", op, ": step ", i, " is outside [0, ", steps(),
        ")");
  for (const Tensor* t : {&model_output, &x, &y})
    check(t->defined() && t->dtype() == DType::F32 && t->is_contiguous() &&
              t->device() == Device::cpu(),
          "[", name(), "] ", op, ": tensors must be contiguous f32 on the CPU, got ",
          t->defined() ? t->str() : std::string("undefined"));
  check(model_output.shape() == x.shape() && y.shape() == x.shape(), "[", name(), "] ", op,
        ": model output ", model_output.shape().str(), ", sample ", x.shape().str(), " and result ",
        y.shape().str(), " must have one shape");
}

std::vector<double> train_sigmas(const std::vector<double>& alphas_cumprod) {
  std::vector<double> s(alphas_cumprod.size());
  for (size_t t = 0; t < s.size(); ++t)
    s[t] = std::sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t]);
  return s;
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps) {
  constexpr double rho = 7.0;  // the paper's value, as diffusers uses
  const double min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
  std::vector<double> s;
  for (double ramp : detail::np_linspace(0, 1, steps))
    s.push_back(std::pow(max_inv + ramp * (min_inv - max_inv), rho));
  return s;
}

double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
  const double ls = std::log(std::max(sigma, 1e-10));
  const auto n = static_cast<int64_t>(log_sigmas.size());
  // The last training step whose log-sigma is <= ls (0 when none is), kept below the end so a
  // step above it exists; log_sigmas increases with t.
  int64_t low = 0;
  for (int64_t t = 0; t < n; ++t)
    if (log_sigmas[t] <= ls) low = t;
  low = std::min(low, n - 2);
  const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
  const double w = std::clamp((lo - ls) / (lo - hi), 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

namespace detail {

std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint) {
  check(num >= 0, "[scheduler] linspace of ", num, " values");
  std::vector<double> y(static_cast<size_t>(num));
  const int64_t div = endpoint ? num - 1 : num;
  const double step = div > 0 ? (stop - start) / static_cast<double>(div) : 0.0;
  for (int64_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  if (endpoint && num > 1) y.back() = stop;
  return y;
}

std::vector<double> np_arange(double start, double stop, double step) {
  const double len = std::ceil((stop - start) / step);
  std::vector<double> y;
  if (!(len > 0)) return y;
  const double delta = (start + step) - start;
  for (int64_t i = 0; i < static_cast<int64_t>(len); ++i)
    y.push_back(start + static_cast<double>(i) * delta);
  return y;
}

std::vector<double> leading_timesteps(int64_t n_train, int64_t divisor, int64_t first, int64_t last,
                                      int64_t offset) {
  const int64_t ratio = n_train / divisor;
  std::vector<double> ts;
  for (int64_t k = last; k >= first; --k) ts.push_back(static_cast<double>(k * ratio + offset));
  return ts;
}

std::vector<double> trailing_timesteps(int64_t n_train, int64_t steps) {
  const auto dn = static_cast<double>(n_train);
  std::vector<double> ts;
  for (double t : np_arange(dn, 0, -dn / static_cast<double>(steps))) ts.push_back(np_round(t) - 1);
  return ts;
}

double interp_index(double x, const std::vector<double>& fp) {
  const auto n = static_cast<int64_t>(fp.size());
  if (x <= 0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  const auto lo = static_cast<int64_t>(std::floor(x));
  const double f = x - static_cast<double>(lo);
  return fp[lo] + f * (fp[lo + 1] - fp[lo]);
}

}  // namespace detail

}  // namespace eight::diffusion
