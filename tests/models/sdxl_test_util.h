#pragma once
// The tiny SDXL pipeline of tests/python/sdxl_tiny.py (random weights, written with numpy) and the
// diffusers outputs committed beside it in tests/data/sdxl/.
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/tensor.h"
#include "formats/npy.h"
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

}  // namespace eight::sdxl_test
