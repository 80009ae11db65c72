#pragma once
// The tiny SDXL pipeline of tests/python/sdxl_tiny.py (random weights, written with numpy) and the
// diffusers outputs committed beside it in tests/data/sdxl/.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace eight::sdxl_test {

// Writes the tiny pipeline as a diffusers folder `dir`/tiny (and, with single_file, the same
// weights as `dir`/tiny.safetensors in Stability's layout). Returns the folder.
inline std::string write_tiny(const testing::TempDir& dir, const std::string& dtype = "f32",
                              bool single_file = false) {
  const std::string out = dir.file("tiny");
  std::string cmd = testing::python_with("numpy") + " " + testing::source_dir() +
                    "/tests/python/sdxl_tiny.py --out " + out + " --dtype " + dtype;
  if (single_file) cmd += " --single-file " + dir.file("tiny.safetensors");
  // Thrown, not EXPECTed: every later step would fail with a missing-file error instead.
  if (testing::run_command(cmd + " > /dev/null") != 0)
    throw std::runtime_error("could not write the tiny SDXL pipeline (the reason is above): " +
                             cmd);
  return out;
}

inline Tensor fixture(const std::string& name) {
  return npy::read(testing::source_dir() + "/tests/data/sdxl/" + name + ".npy");
}

// sum((a - b)^2) / sum(b^2) over all elements (b is the reference).
inline double nmse(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  const Tensor x = a.contiguous(), y = b.contiguous();
  double num = 0, den = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double d = double(x.data<float>()[i]) - double(y.data<float>()[i]);
    num += d * d;
    den += double(y.data<float>()[i]) * double(y.data<float>()[i]);
  }
  return den > 0 ? num / den : num;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tiny pipeline written once per dtype for the whole test program.
inline const std::string& tiny_dir(const std::string& dtype) {
  static testing::TempDir root;
  static std::map<std::string, std::string> made;
  auto it = made.find(dtype);
  if (it != made.end()) return it->second;
  const std::string out = root.file(dtype);
  const std::string cmd = testing::python_with("numpy") + " " + testing::source_dir() +
                          "/tests/python/sdxl_tiny.py --out " + out + " --dtype " + dtype +
                          " > /dev/null";
  // Thrown, not EXPECTed: every later step would fail with a missing-file error instead.
  if (testing::run_command(cmd) != 0)
    throw std::runtime_error("could not write the tiny SDXL pipeline (the reason is above): " +
                             cmd);
  return made[dtype] = out;
}

// A safetensors file's tensors by name (views that keep the mapping alive).
inline std::map<std::string, Tensor> weights_of(const std::string& file) {
  const auto ckpt = safetensors::Checkpoint::open(file);
  std::map<std::string, Tensor> w;
  for (const auto& n : ckpt.names()) w.emplace(n, ckpt.tensor(n));
  return w;
}

inline std::vector<int32_t> ids_of(const Tensor& t) {
  return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
}

// One component folder of the tiny pipeline: its weights (views of the open checkpoint) and its
// config.json.
struct Component {
  safetensors::Checkpoint file;
  std::map<std::string, Tensor> weights;
  std::string config_json;
};

inline Component load_component(const std::string& dtype, const std::string& folder,
                                const std::string& file = "diffusion_pytorch_model.safetensors") {
  const std::string dir = tiny_dir(dtype) + "/" + folder + "/";
  Component c{safetensors::Checkpoint::open(dir + file), {}, {}};
  for (const std::string& name : c.file.names()) c.weights[name] = c.file.tensor(name);
  c.config_json = read_text(dir + "config.json");
  return c;
}

// Two fixtures of [1, ...] stacked into [2, ...].
inline Tensor stack2(const std::string& a, const std::string& b) {
  const Tensor ta = fixture(a), tb = fixture(b);
  Dims shape{2};
  for (int d = 1; d < ta.dim(); ++d) shape.push_back(ta.size(d));
  Tensor out = Tensor::empty(shape, DType::F32);
  std::memcpy(out.data<float>(), ta.data<float>(), ta.nbytes());
  std::memcpy(out.data<float>() + ta.numel(), tb.data<float>(), tb.nbytes());
  return out;
}

// diffusers' UNet call: batch 2 (negative, prompt), timesteps [999, 500], 64 x 96 images.
struct UNetCall {
  Tensor x, context, text_embeds, time_ids, expected;
  std::vector<float> timesteps{999, 500};
};

inline UNetCall unet_call() {
  UNetCall c;
  c.x = fixture("unet_call_x");
  c.expected = fixture("unet_call_out");
  c.context = stack2("text_negative_embeds", "text_prompt_embeds");
  c.text_embeds = stack2("text_negative_pooled", "text_prompt_pooled");
  c.time_ids = Tensor::empty({2, 6}, DType::F32);
  const float ids[6] = {64, 96, 0, 0, 64, 96};
  for (int n = 0; n < 2; ++n) std::copy_n(ids, 6, c.time_ids.data<float>() + n * 6);
  return c;
}

}  // namespace eight::sdxl_test
