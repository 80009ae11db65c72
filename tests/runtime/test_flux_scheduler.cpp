// FLUX's flow-matching Euler schedule against diffusers' FlowMatchEulerDiscreteScheduler
// (tests/data/flux_ref/scheduler.json, written by tools/reference/make_flux_pipeline.py): the
// schnell config (shift 1, no dynamic shifting) and the dev one (dynamic shifting, mu from the
// image sequence length) for 1, 4 and 28 steps, plus one Euler step. diffusers keeps the sigmas in
// float32 and so does eight: they agree to 1 ulp-ish (2e-7 relative); the step to 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "runtime/diffusion/flow_match.h"
#include "test_util.h"

namespace eight {
namespace {

using json = nlohmann::json;
using namespace diffusion;

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path << " is missing";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(FlowMatch, MatchesDiffusers) {
  const std::string root = testing::source_dir() + "/tests/data/";
  const json data = json::parse(read_text(root + "flux_ref/scheduler.json"));
  const FlowMatchConfig schnell =
      flow_match_config_from_json(read_text(root + "flux_pipe/scheduler/scheduler_config.json"));
  EXPECT_FALSE(schnell.use_dynamic_shifting);
  FlowMatchConfig dev = schnell;
  dev.shift = 3.0;
  dev.use_dynamic_shifting = true;
  ASSERT_EQ(data["cases"].size(), 18u);
  for (const json& c : data["cases"]) {
    const FlowMatchConfig& cfg = c["config"] == "dev" ? dev : schnell;
    const FlowSchedule s =
        flow_match_schedule(cfg, c["steps"].get<int64_t>(), c["image_seq_len"].get<int64_t>());
    const auto& sig = c["sigmas"];
    const auto& ts = c["timesteps"];
    const std::string what = c["config"].get<std::string>() + " steps " + c["steps"].dump() +
                             " seq " + c["image_seq_len"].dump();
    ASSERT_EQ(s.sigmas.size(), sig.size()) << what;
    ASSERT_EQ(s.timesteps.size(), ts.size()) << what;
    for (size_t i = 0; i < sig.size(); ++i)
      EXPECT_NEAR(s.sigmas[i], sig[i].get<double>(), 2e-7 * std::max(1.0, sig[i].get<double>()))
          << what << " sigma " << i;
    for (size_t i = 0; i < ts.size(); ++i)
      EXPECT_NEAR(s.timesteps[i], ts[i].get<double>(), 1e-4) << what << " timestep " << i;
    const auto xv = c["x"].get<std::vector<float>>();
    const auto vv = c["v"].get<std::vector<float>>();
    Tensor x = Tensor::empty({static_cast<int64_t>(xv.size())}, DType::F32);
    Tensor v = Tensor::empty({static_cast<int64_t>(vv.size())}, DType::F32);
    std::copy(xv.begin(), xv.end(), x.data<float>());
    std::copy(vv.begin(), vv.end(), v.data<float>());
    flow_euler_step(v, s.sigmas[0], s.sigmas[1], x);
    const auto y = c["step0"].get<std::vector<double>>();
    for (size_t k = 0; k < y.size(); ++k) EXPECT_NEAR(x.data<float>()[k], y[k], 1e-6) << what;
  }
}

TEST(FlowMatch, DevShiftGrowsWithImageSize) {
  FlowMatchConfig c;
  c.use_dynamic_shifting = true;
  EXPECT_NEAR(flow_match_mu(c, 256), 0.5, 1e-12);
  EXPECT_NEAR(flow_match_mu(c, 4096), 1.15, 1e-12);
  // A larger image keeps more of the schedule at high noise.
  EXPECT_GT(flow_match_schedule(c, 4, 4096).sigmas[2], flow_match_schedule(c, 4, 256).sigmas[2]);
}

TEST(FlowMatch, RejectsWhatItDoesNotImplement) {
  auto rejects = [](const std::string& text, const std::string& needle) {
    try {
      flow_match_config_from_json(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  rejects("{", "not valid JSON");
  rejects("[1]", "not a JSON object");
  rejects(R"({"_class_name": "EulerDiscreteScheduler"})", "EulerDiscreteScheduler");
  rejects(R"({"use_karras_sigmas": true})", "use_karras_sigmas");
  rejects(R"({"stochastic_sampling": true})", "stochastic_sampling");
  rejects(R"({"shift_terminal": 0.1})", "shift_terminal");
  rejects(R"({"shift": "3"})", "'shift'");
  rejects(R"({"use_dynamic_shifting": 1})", "use_dynamic_shifting");
  rejects(R"({"shift": -1})", "shift");
  rejects(R"({"base_image_seq_len": 5, "max_image_seq_len": 5})", "max_image_seq_len");
  EXPECT_THROW(flow_match_schedule(FlowMatchConfig{}, 0, 16), Error);
}

}  // namespace
}  // namespace eight
