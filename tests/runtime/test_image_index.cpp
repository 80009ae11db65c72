// The image index file (round trip; every truncation and random corruption is an Error) and the
// brute-force search (against a plain double-precision scan, odd sizes, several queries at once,
// results independent of the thread count), plus the folder scan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/vision/image_index.h"
#include "test_util.h"

namespace eight::image_index {
namespace {

namespace fs = std::filesystem;

Tensor random_unit_rows(int64_t n, int64_t d) {
  Tensor t = Tensor::empty({n, d}, DType::F32);
  const auto v = eight::testing::random_floats(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < d; ++j) norm += double(v[i * d + j]) * v[i * d + j];
    for (int64_t j = 0; j < d; ++j)
      t.data<float>()[i * d + j] = static_cast<float>(v[i * d + j] / std::sqrt(norm));
  }
  return t;
}

Index sample(int64_t n, int d) {
  Index ix;
  ix.model = "clip-test";
  ix.model_path = "/models/clip-test";
  ix.root = "/photos";
  ix.dim = d;
  for (int64_t i = 0; i < n; ++i)
    ix.files.push_back({"dir/ü" + std::to_string(i) + ".jpg", 1000 + i, 1700000000000000000 + i});
  if (n > 0) ix.embeddings = random_unit_rows(n, d);
  ix.skipped.push_back({"broken.png", 12, 1700000000000000005});
  return ix;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ImageIndex, RoundTrip) {
  eight::testing::TempDir dir;
  for (int64_t n : {0, 1, 37}) {
    const Index ix = sample(n, 24);
    save(ix, dir.file("a.idx"));
    EXPECT_FALSE(fs::exists(dir.file("a.idx.tmp")));
    const Index back = load(dir.file("a.idx"));
    EXPECT_EQ(back.model, ix.model);
    EXPECT_EQ(back.model_path, ix.model_path);
    EXPECT_EQ(back.root, ix.root);
    EXPECT_EQ(back.dim, 24);
    EXPECT_EQ(back.files, ix.files);
    EXPECT_EQ(back.skipped, ix.skipped);
    if (n > 0) {
      ASSERT_EQ(back.embeddings.shape(), (Dims{n, 24}));
      EXPECT_EQ(std::memcmp(back.embeddings.raw(), ix.embeddings.raw(), n * 24 * 4), 0);
    }
    EXPECT_EQ(slurp(dir.file("a.idx")).size() % 4, 0u);
  }
}

TEST(ImageIndex, TruncatedAndCorruptFilesAreErrors) {
  eight::testing::TempDir dir;
  save(sample(5, 8), dir.file("a.idx"));
  const std::string good = slurp(dir.file("a.idx"));
  auto bytes = [](const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); };
  for (size_t len = 0; len < good.size(); ++len)
    EXPECT_THROW(parse(bytes(good), len, "cut.idx"), Error) << "length " << len;
  std::string extra = good + "x";
  EXPECT_THROW(parse(bytes(extra), extra.size(), "long.idx"), Error);
  std::uniform_int_distribution<size_t> at(0, 200);
  for (int trial = 0; trial < 500; ++trial) {
    std::string b = good;
    b[at(eight::testing::rng()) % b.size()] = static_cast<char>(eight::testing::rng()() & 255);
    try {
      parse(bytes(b), b.size(), "bad.idx");
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.idx"), std::string::npos) << e.what();
    }
  }
  // A header claiming 2^60 rows must not allocate.
  std::string huge = good;
  huge[23] = 0x10;
  EXPECT_THROW(parse(bytes(huge), huge.size(), "huge.idx"), Error);
}

// The plain answer: every score in double, sorted with the same tie rule.
std::vector<Hit> naive(const Tensor& e, const float* q, int k) {
  const int64_t n = e.size(0), d = e.size(1);
  std::vector<std::pair<double, int64_t>> all;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(e.data<float>()[i * d + j]) * q[j];
    all.push_back({s, i});
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  std::vector<Hit> out;
  for (int i = 0; i < std::min<int64_t>(k, n); ++i)
    out.push_back({all[i].second, static_cast<float>(all[i].first)});
  return out;
}

TEST(ImageIndex, SearchMatchesPlainScan) {
  ThreadPool pool1(1), pool3(3);
  for (auto [n, d, k] : {std::tuple{1, 7, 5}, {257, 33, 10}, {70001, 64, 7}, {1000, 768, 1000}}) {
    SCOPED_TRACE(::testing::Message() << n << " x " << d << " k " << k);
    const Tensor e = random_unit_rows(n, d);
    // 6 queries: a block of 4 and two single ones in the blocked kernel; 1: the matvec path.
    for (int64_t nq : {6, 1}) {
      const Tensor q = random_unit_rows(nq, d);
      const auto got = search(e, q, k, pool3);
      const auto again = search(e, q, k, pool1);
      ASSERT_EQ(got.size(), static_cast<size_t>(nq));
      for (int qi = 0; qi < nq; ++qi) {
        const auto want = naive(e, q.data<float>() + qi * d, k);
        ASSERT_EQ(got[qi].size(), want.size());
        for (size_t i = 0; i < want.size(); ++i) {
          EXPECT_NEAR(got[qi][i].score, want[i].score, 1e-5);
          // Rows may swap only where scores tie within float rounding.
          if (got[qi][i].row != want[i].row) {
            EXPECT_NEAR(got[qi][i].score, want[i].score, 1e-6);
          }
          EXPECT_EQ(got[qi][i].row, again[qi][i].row) << "thread count changed the answer";
        }
      }
    }
  }
  EXPECT_THROW(search(random_unit_rows(4, 8), random_unit_rows(1, 9), 3, pool1), Error);
  EXPECT_THROW(search(random_unit_rows(4, 8), random_unit_rows(1, 8), 0, pool1), Error);
}

TEST(ImageIndex, ScanFindsImagesRecursively) {
  eight::testing::TempDir dir;
  fs::create_directories(dir.file("a/b"));
  for (const char* f :
       {"x.JPG", "a/y.png", "a/b/z.webp", "a/b/w.GIF", "notes.txt", "a/b/q.jpeg.bak"})
    std::ofstream(dir.file(f)) << "data";
  const auto files = scan_images(dir.path());
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.path);
  EXPECT_EQ(names, (std::vector<std::string>{"a/b/w.GIF", "a/b/z.webp", "a/y.png", "x.JPG"}));
  EXPECT_EQ(files[0].size, 4);
  EXPECT_GT(files[0].mtime_ns, 0);
  EXPECT_THROW(scan_images(dir.file("nope")), Error);
}

}  // namespace
}  // namespace eight::image_index
