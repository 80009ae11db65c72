// The diffusion schedulers against diffusers' own numbers (tests/data/diffusion/schedulers.json,
// written by tools/reference/make_diffusion_scheduler_fixtures.py; the float64 numpy reference
// tests/reference/diffusion_ref.py is held to the same file by
// tests/python/test_diffusion_schedulers.py), and eight's Philox noise generator.
//
// Each case runs the loop of a pipeline on a [1, 4, 3, 5] latent with a toy model
// (eps = 0.6 x_in + 0.2 sin(0.7 k + i)); the initial latents and every ancestral noise come from
// diffusion::Rng(seed), fed to diffusers in the same order. Tolerances (diffusers computes in
// float32, eight in double):
//   timesteps: 1e-3 absolute (float32 linspace and Karras timesteps)
//   sigmas: 5e-5 relative (diffusers' float32 cumprod puts sigma(t = 0) 1.3e-5 off)
//   init_noise_sigma: 1e-5 relative
//   model input, add_noise and samples after steps 1, 2, 3 and the last: NMSE <= 1e-10
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "runtime/diffusion/rng.h"
#include "runtime/diffusion/scheduler.h"
#include "test_util.h"

namespace eight {
namespace {

using json = nlohmann::json;
using namespace diffusion;

double nmse(const float* got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    num += (got[k] - ref[k]) * (got[k] - ref[k]);
    den += ref[k] * ref[k];
  }
  return den > 0 ? num / den : num;
}

json load_fixture() {
  std::ifstream f(testing::source_dir() + "/tests/data/diffusion/schedulers.json");
  EXPECT_TRUE(f.good()) << "tests/data/diffusion/schedulers.json is missing";
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str());
}

// The toy model of tests/reference/diffusion_ref.py (toy_model).
void toy_model(const Tensor& x_in, int64_t i, const Tensor& out) {
  for (int64_t k = 0; k < x_in.numel(); ++k)
    out.data<float>()[k] =
        static_cast<float>(0.6 * x_in.data<float>()[k] +
                           0.2 * std::sin(0.7 * static_cast<double>(k) + static_cast<double>(i)));
}

TEST(DiffusionScheduler, MatchesDiffusers) {
  const json data = load_fixture();
  Dims shape;
  for (int64_t d : data["shape"]) shape.push_back(d);
  double worst = 0;
  for (const json& c : data["cases"]) {
    const std::string name = c["sampler"];
    const int64_t steps = c["steps"];
    SCOPED_TRACE(cat(name, " steps=", steps, " seed=", c["seed"].get<int>()));
    auto s = make_scheduler(name, scheduler_config_from_json(c["config"].dump()));
    s->set_timesteps(steps);
    const auto ts = c["timesteps"].get<std::vector<double>>();
    ASSERT_EQ(s->timesteps().size(), ts.size());
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_NEAR(s->timesteps()[i], ts[i], 1e-3) << i;
    const auto sig = c["sigmas"].get<std::vector<double>>();
    ASSERT_EQ(s->sigmas().size(), sig.size());
    for (size_t i = 0; i < sig.size(); ++i)
      EXPECT_NEAR(s->sigmas()[i], sig[i], 5e-5 * std::fabs(sig[i]) + 1e-9) << i;
    const double init = c["init_noise_sigma"];
    EXPECT_NEAR(s->init_noise_sigma(), init, 1e-5 * init);

    // img2img's start: add_noise at step steps / 2 with x0 and noise from Rng(seed + 1000).
    Rng r2(c["seed"].get<uint64_t>() + 1000);
    const Tensor x0 = r2.normal(shape), noise = r2.normal(shape);
    Tensor noised = Tensor::empty(shape, DType::F32);
    s->add_noise(x0, noise, steps / 2, noised);
    EXPECT_LE(nmse(noised.data<float>(), c["noised"].get<std::vector<double>>()), 1e-10);

    Rng rng(c["seed"].get<uint64_t>());
    Tensor x = rng.normal(shape);
    for (int64_t k = 0; k < x.numel(); ++k)
      x.data<float>()[k] = static_cast<float>(x.data<float>()[k] * s->init_noise_sigma());
    Tensor x_in = Tensor::empty(shape, DType::F32), out = Tensor::empty(shape, DType::F32);
    const auto at = c["samples_at"].get<std::vector<int64_t>>();
    size_t next = 0;
    for (int64_t i = 0; i <= s->steps(); ++i) {
      if (next < at.size() && at[next] == i) {
        const double e = nmse(x.data<float>(), c["samples"][next].get<std::vector<double>>());
        EXPECT_LE(e, 1e-10) << "sample after step " << i;
        worst = std::max(worst, e);
        ++next;
      }
      if (i == s->steps()) break;
      s->scale_model_input(x, i, x_in);
      if (i == 0) {
        EXPECT_LE(nmse(x_in.data<float>(), c["first_model_input"].get<std::vector<double>>()),
                  1e-10);
      }
      toy_model(x_in, i, out);
      s->step(out, i, x, x, rng);
    }
    EXPECT_EQ(next, at.size());
  }
  std::printf("worst sample NMSE against diffusers: %.3g\n", worst);
}

TEST(DiffusionRng, PhiloxKnownAnswers) {
  // Random123's known-answer vectors for philox4x32_10.
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (A4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  const uint32_t m = 0xffffffffu;
  EXPECT_EQ(philox4x32_10({m, m, m, m}, {m, m}),
            (A4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (A4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(DiffusionRng, CounterBasedAndStandardNormal) {
  Rng a(7);
  const Tensor big = a.normal({4, 64, 64});
  double mean = 0, sq = 0;
  for (int64_t k = 0; k < big.numel(); ++k) {
    mean += big.data<float>()[k];
    sq += static_cast<double>(big.data<float>()[k]) * big.data<float>()[k];
  }
  mean /= static_cast<double>(big.numel());
  EXPECT_NEAR(mean, 0, 0.02);
  EXPECT_NEAR(std::sqrt(sq / static_cast<double>(big.numel()) - mean * mean), 1, 0.02);
  EXPECT_EQ(a.offset(), 4u * 64 * 64 / 4);
  // Two draws of 6 use blocks 0-1 and 2-3; the same seed gives the same numbers every time.
  Rng r(7), l(7);
  float first[6], second[6], all[16];
  r.normal(first, 6);
  r.normal(second, 6);
  l.normal(all, 16);
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(first[k], all[k]);
    EXPECT_EQ(second[k], all[8 + k]);
  }
  // Another stream or seed gives other numbers.
  float other[6];
  Rng(7, 1).normal(other, 6);
  EXPECT_NE(other[0], first[0]);
  Rng(8).normal(other, 6);
  EXPECT_NE(other[0], first[0]);
}

TEST(DiffusionScheduler, ConfigAndErrors) {
  const SchedulerConfig sdxl = scheduler_config_from_json(R"({
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": false, "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0,
    "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": null, "use_karras_sigmas": false})");
  EXPECT_EQ(scheduler_name_for_class(sdxl.class_name), "euler");
  EXPECT_EQ(sdxl.beta_schedule, BetaSchedule::ScaledLinear);
  EXPECT_EQ(sdxl.steps_offset, 1);
  auto expect_error = [](const auto& f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "no error, expected one mentioning " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([] { scheduler_config_from_json("{"); }, "[scheduler] config is not JSON");
  expect_error([] { scheduler_config_from_json(R"({"beta_schedule": "squaredcos_cap_v2"})"); },
               "squaredcos_cap_v2");
  expect_error([] { scheduler_config_from_json(R"({"steps_offset": "one"})"); }, "steps_offset");
  expect_error([] { scheduler_config_from_json(R"({"thresholding": true})"); }, "thresholding");
  expect_error([] { scheduler_config_from_json(R"({"trained_betas": [0.1]})"); }, "trained_betas");
  expect_error([&] { make_scheduler("heun", sdxl); }, "known: euler, euler_a, dpm++2m");
  auto lcm = make_scheduler("lcm", sdxl);
  expect_error([&] { lcm->set_timesteps(51); }, "original_inference_steps");
  auto dpm = make_scheduler("dpm++2m", sdxl);
  Tensor x = Tensor::zeros({4, 2, 2}, DType::F32);
  Rng rng(1);
  expect_error([&] { dpm->step(x, 0, x, x, rng); }, "call set_timesteps first");
  dpm->set_timesteps(10);
  dpm->step(x, 3, x, x, rng);  // img2img may start part-way, then goes on in order
  expect_error([&] { dpm->step(x, 5, x, x, rng); }, "steps must run in order");
  dpm->set_timesteps(10);
  expect_error([&] { dpm->step(x, 10, x, x, rng); }, "outside [0, 10)");
  Tensor wrong = Tensor::zeros({4, 2, 3}, DType::F32);
  expect_error([&] { dpm->step(wrong, 0, x, x, rng); }, "must have one shape");
  dpm->step(x, 0, x, x, rng);
}

}  // namespace
}  // namespace eight
