#pragma once
// Internals shared by the scheduler implementations (sigma_schedulers.cpp: euler, euler_a,
// dpm++2m; alpha_schedulers.cpp: ddim, lcm). Not part of the public API.
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "runtime/diffusion/scheduler.h"

namespace eight::diffusion::detail {

std::unique_ptr<Scheduler> make_euler(const SchedulerConfig& config, bool ancestral);
std::unique_ptr<Scheduler> make_dpmpp_2m(const SchedulerConfig& config);
std::unique_ptr<Scheduler> make_ddim(const SchedulerConfig& config);
std::unique_ptr<Scheduler> make_lcm(const SchedulerConfig& config);

// A scheduler_config.json key: its value, or nullptr when it is absent or null (diffusers writes
// null for unset); read() leaves `out` as it is then, and throws Error naming the key for a value
// of the wrong type (nlohmann's get is strict: no bool from a number or the reverse). Shared by
// the diffusers-style schedulers and FLUX's flow-match config.
inline const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

template <class T>
void read(const nlohmann::json& j, const char* key, T& out) {
  const nlohmann::json* v = field(j, key);
  if (!v) return;
  try {
    out = v->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("[scheduler] config key '", key, "' has the wrong type: ", v->dump());
  }
}

// numpy's helpers, reproduced exactly where rounding matters.
// np.round: halves to even (np.round(0.5) == 0), which std::nearbyint does in the default mode.
inline double np_round(double x) {
  return std::nearbyint(x);
}
// np.linspace(start, stop, num, endpoint): i * step + start, the last one exactly stop.
std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint = true);
// np.arange(start, stop, step) for doubles: ceil((stop - start) / step) values start + i * delta
// with delta = (start + step) - start, as numpy fills them.
std::vector<double> np_arange(double start, double stop, double step);
// The "leading" spacing of `steps` timesteps, highest first: k · (n_train / divisor) + offset for
// k = last .. first (diffusers: arange(0, steps) * ratio, reversed, + steps_offset; DPM-Solver
// divides by steps + 1 and skips k = 0).
std::vector<double> leading_timesteps(int64_t n_train, int64_t divisor, int64_t first, int64_t last,
                                      int64_t offset);
// The "trailing" spacing: round(arange(n_train, 0, -n_train / steps)) - 1, highest first.
std::vector<double> trailing_timesteps(int64_t n_train, int64_t steps);

// np.interp(x, arange(len(fp)), fp) for x in [0, len(fp) - 1].
double interp_index(double x, const std::vector<double>& fp);

// Element-wise over contiguous f32 tensors: y[k] = f(a[k], b[k]) computed in double.
template <class F>
void map2(const Tensor& a, const Tensor& b, const Tensor& y, F f) {
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  const int64_t n = a.numel();
  for (int64_t k = 0; k < n; ++k) py[k] = static_cast<float>(f(pa[k], pb[k]));
}

}  // namespace eight::diffusion::detail
