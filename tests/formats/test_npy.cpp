// .npy writer/reader: round trips, NumPy itself as the independent reader and writer, and
// truncated or lying files.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/half.h"
#include "formats/npy.h"
#include "test_util.h"

namespace eight::npy {
namespace {

using eight::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Npy, RoundTripShapes) {
  TempDir dir;
  for (const Dims& shape : {Dims{2, 3}, Dims{7}, Dims{}, Dims{2, 1, 3, 4}, Dims{0, 5}}) {
    SCOPED_TRACE(shape.str());
    const auto v = eight::testing::random_floats(static_cast<size_t>(shape.product()));
    write_f32(dir.file("a.npy"), v.data(), shape);
    const std::string raw = slurp(dir.file("a.npy"));
    EXPECT_EQ((raw.size() - v.size() * 4) % 64, 0u) << "data not 64-byte aligned";
    const Tensor t = read(dir.file("a.npy"));
    EXPECT_EQ(t.dtype(), DType::F32);
    EXPECT_EQ(t.shape(), shape);
    if (!v.empty()) {
      EXPECT_EQ(std::memcmp(t.raw(), v.data(), v.size() * 4), 0);
    }
  }
  const std::vector<int32_t> ids = {1, -2, 3, 2147483647};
  write_i32(dir.file("i.npy"), ids.data(), {2, 2});
  const Tensor t = read(dir.file("i.npy"));
  EXPECT_EQ(t.dtype(), DType::I32);
  EXPECT_EQ(t.data<int32_t>()[3], 2147483647);
  EXPECT_THROW(write(dir.file("x.npy"), Tensor::zeros({4}, DType::F16)), Error);
}

TEST(Npy, NumpyReadsOursAndWeReadNumpys) {
  TempDir dir;
  const std::vector<float> v = {1.5f, -2.f, 3.25f, 0.f, 5.f, 6.f};
  write_f32(dir.file("ours.npy"), v.data(), {3, 2});
  std::string out;
  const std::string py = eight::testing::python_with("numpy") +
                         " -c \"import numpy as np; a = np.load('" + dir.file("ours.npy") +
                         "'); print(a.shape, a.dtype, a[2, 1], a.sum()); "
                         "np.save('" +
                         dir.file("h.npy") +
                         "', np.arange(12, dtype=np.float16).reshape(3, 4) / 4); "
                         "np.save('" +
                         dir.file("i.npy") +
                         "', np.arange(-3, 3, dtype=np.int32)); "
                         "np.save('" +
                         dir.file("d.npy") + "', np.zeros(3))\"";
  ASSERT_EQ(eight::testing::run_command(py, &out), 0) << "numpy failed; its message is above";
  EXPECT_EQ(out, "(3, 2) float32 6.0 13.75\n");
  const Tensor h = read(dir.file("h.npy"));
  EXPECT_EQ(h.dtype(), DType::F16);
  EXPECT_EQ(h.shape(), (Dims{3, 4}));
  EXPECT_EQ(fp16_to_fp32(h.data<uint16_t>()[11]), 2.75f);
  const Tensor i = read(dir.file("i.npy"));
  EXPECT_EQ(i.shape(), (Dims{6}));
  EXPECT_EQ(i.data<int32_t>()[0], -3);
  EXPECT_THROW(read(dir.file("d.npy")), Error);  // float64 is not supported: a clear error
}

TEST(Npy, TruncatedAndLyingFilesThrow) {
  TempDir dir;
  const std::vector<float> v(10, 1.f);
  write_f32(dir.file("a.npy"), v.data(), {2, 5});
  const std::string raw = slurp(dir.file("a.npy"));
  for (size_t n = 0; n < raw.size(); ++n)
    EXPECT_THROW(parse(raw.data(), n, "trunc"), Error) << "truncated to " << n;
  std::string lie = raw;
  const size_t at = lie.find("(2, 5)");
  lie.replace(at, 6, "(9, 5)");
  EXPECT_THROW(parse(lie.data(), lie.size()), Error);
  lie = raw;
  lie.replace(at, 6, "(99999999999999999999, 5)");
  EXPECT_THROW(parse(lie.data(), lie.size()), Error);
  lie = raw;
  lie.replace(lie.find("False"), 5, "True ");
  EXPECT_THROW(parse(lie.data(), lie.size()), Error);
  lie = raw;
  lie[8] = '\xff';  // header length past the end
  lie[9] = '\xff';
  EXPECT_THROW(parse(lie.data(), lie.size()), Error);
}

}  // namespace
}  // namespace eight::npy
