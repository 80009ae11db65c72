// DeepBooru's network and A1111's preprocessing against PyTorch/PIL (tests/data/deepbooru, made
// by tools/reference/make_deepbooru_fixtures.py), and ops::conv2d_nhwc against ops::conv2d.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/memory.h"
#include "formats/image.h"
#include "formats/torch_checkpoint.h"
#include "models/deepbooru/deepbooru.h"
#include "ops/conv.h"
#include "test_util.h"

namespace eight::deepbooru {
namespace {

std::string data_dir() {
  return testing::source_dir() + "/tests/data/deepbooru/";
}

nlohmann::json expected() {
  std::ifstream f(data_dir() + "expected.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

Tensor random_tensor(const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  const auto v = testing::random_floats(static_cast<size_t>(t.numel()));
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// Channels-last results equal the channels-first op's (same unfold order, same products).
TEST(DeepBooru, ConvNhwcMatchesConv2d) {
  ThreadPool pool(2);
  struct Case {
    int64_t c_in, h, w, c_out, k, stride, pad, pad_end;
  };
  for (const Case& c :
       {Case{3, 18, 14, 5, 7, 2, 2, 3}, Case{6, 8, 8, 4, 3, 2, 0, 1}, Case{6, 8, 10, 4, 3, 1, 1, 1},
        Case{8, 5, 7, 3, 1, 1, 0, 0}, Case{8, 6, 6, 3, 1, 2, 0, 0}}) {
    const Tensor x = random_tensor({c.c_in, c.h, c.w});
    const Tensor w = random_tensor({c.c_out, c.c_in, c.k, c.k});
    const Tensor b = random_tensor({c.c_out});
    const ops::Conv2dParams p{.stride = {c.stride, c.stride},
                              .padding = {c.pad, c.pad},
                              .padding_end = {c.pad_end, c.pad_end},
                              .bias = &b};
    const Dims ys = ops::conv2d_output_shape(x, w, p);
    Tensor y = Tensor::empty(ys, DType::F32);
    ops::conv2d(x, w, y, pool, p);
    Tensor y2 = Tensor::empty({ys[1], ys[2], ys[0]}, DType::F32);
    ops::conv2d_nhwc(x.permute({1, 2, 0}).contiguous(), ops::conv2d_prepare_weight(w), y2, pool, p);
    const Tensor want = y.permute({1, 2, 0}).contiguous();
    for (int64_t i = 0; i < want.numel(); ++i)
      ASSERT_NEAR(y2.data<float>()[i], want.data<float>()[i], 1e-5)
          << "case k=" << c.k << " i=" << i;
  }
}

// resize_and_fill gives PIL's bytes exactly (row sums of A1111's 512x512 result).
TEST(DeepBooru, PreprocessMatchesA1111) {
  const auto ref = expected();
  for (const std::string name : {"wide.png", "tall.png"}) {
    const image::Image im = resize_and_fill(image::load(data_dir() + name), 512, 512);
    const auto& rows = ref["preprocessed"][name]["row_sums"];
    ASSERT_EQ(rows.size(), 512u);
    const auto* px = im.rgb.data<const uint8_t>();
    for (int y = 0; y < 512; ++y) {
      int64_t sum = 0;
      for (int i = 0; i < 512 * 3; ++i) sum += px[y * 512 * 3 + i];
      ASSERT_EQ(sum, rows[static_cast<size_t>(y)].get<int64_t>()) << name << " row " << y;
    }
  }
}

double nmse(const float* got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return num / den;
}

// The network on the fixture's weights (through `eight tag` in tests/python/test_deepbooru.py).
TEST(DeepBooru, ProbabilitiesMatchPyTorch) {
  const auto file = torch::Checkpoint::open(data_dir() + "model-tiny.pt");
  std::vector<std::string> names;
  for (const auto& t : file.tensors()) names.push_back(t.name);
  const auto ref = expected();
  const Network net = Network::load(
      names, [&](const std::string& n) { return file.find_tensor(n) ? file.tensor(n) : Tensor(); },
      static_cast<int64_t>(ref["tags"].size()), "model-tiny.pt");
  ThreadPool pool(2);
  std::vector<std::vector<float>> got;
  for (const std::string name : {"wide.png", "tall.png"}) {
    const Tensor p = net.forward(preprocess(image::load(data_dir() + name)).unsqueeze(0), pool);
    const auto want = ref["images"][name].get<std::vector<double>>();
    EXPECT_LE(nmse(p.data<float>(), want), 1e-5) << name;
    got.emplace_back(p.data<float>(), p.data<float>() + p.numel());
  }
  // The images differ little through a random network: their difference must match too, so the
  // input handling is checked and not only the biases.
  std::vector<double> dwant;
  std::vector<float> dgot;
  for (size_t i = 0; i < got[0].size(); ++i) {
    dwant.push_back(ref["images"]["wide.png"][i].get<double>() -
                    ref["images"]["tall.png"][i].get<double>());
    dgot.push_back(got[0][i] - got[1][i]);
  }
  EXPECT_LE(nmse(dgot.data(), dwant), 1e-3);
}

TEST(DeepBooru, RefusesMisshapenAndUnknownTensors) {
  const auto file = torch::Checkpoint::open(data_dir() + "model-tiny.pt");
  std::vector<std::string> names;
  for (const auto& t : file.tensors()) names.push_back(t.name);
  auto lookup = [&](const std::string& n) {
    return file.find_tensor(n) ? file.tensor(n) : Tensor();
  };
  auto message = [&](const std::vector<std::string>& ns, const auto& fn, int64_t tags) {
    try {
      Network::load(ns, fn, tags, "m.pt");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(names, lookup, 5).find("the tag list has 5 names but n_Conv_178 has 24"),
            std::string::npos);
  auto missing = [&](const std::string& n) { return n == "n_Conv_57.bias" ? Tensor() : lookup(n); };
  EXPECT_NE(message(names, missing, 24).find("missing tensor n_Conv_57.bias"), std::string::npos);
  auto odd = [&](const std::string& n) {
    return n == "n_Conv_13.weight" ? Tensor::zeros({4, 4, 3, 2}, DType::F32) : lookup(n);
  };
  EXPECT_NE(message(names, odd, 24).find("n_Conv_13.weight is [4, 4, 3, 2], expected"),
            std::string::npos);
  auto extra = names;
  extra.push_back("n_BatchNorm_0.weight");
  EXPECT_NE(message(extra, lookup, 24).find("unexpected tensor n_BatchNorm_0.weight"),
            std::string::npos);
}

}  // namespace
}  // namespace eight::deepbooru
