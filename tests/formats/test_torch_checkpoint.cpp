// The PyTorch checkpoint reader from C++, as model loaders use it (BLIP, DeepBooru, MAGNeT): the
// fixtures from tools/reference/make_torch_fixtures.py (torch.save output), zero-copy views into
// the mapping, copies for strided/misaligned tensors, non-tensor values through root(), the state
// dict found in wrappers; and robustness: every truncation and random corruption of a zip and a
// legacy checkpoint must load or throw eight::Error, never crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "core/error.h"
#include "formats/torch_checkpoint.h"

namespace eight {
namespace {

std::string fixture(const std::string& name) {
  return std::string(EIGHT_SOURCE_DIR) + "/tests/data/torch/" + name;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

torch::Checkpoint parse_bytes(std::string& bytes) {
  return torch::Checkpoint::parse(std::make_shared<BorrowedStorage>(bytes.data(), bytes.size()),
                                  "test.pt");
}

TEST(TorchCheckpoint, ZipTensorsAreViewsOfTheMapping) {
  const auto c = torch::Checkpoint::open(fixture("zip_basic.pt"));
  EXPECT_EQ(c.format(), "zip");
  const Tensor f32 = c.tensor("f32");
  EXPECT_EQ(f32.dtype(), DType::F32);
  EXPECT_EQ(f32.shape(), Dims({4, 5}));
  EXPECT_NE(dynamic_cast<MappedFile*>(f32.storage().get()), nullptr);
  // "view" is base[1:3]: the same storage 5 elements in.
  const Tensor view = c.tensor("view");
  EXPECT_EQ(view.storage(), f32.storage());
  EXPECT_EQ(view.data<float>()[0], f32.data<float>()[5]);
  // shared_a and shared_b are two views of one arange(12) storage.
  EXPECT_EQ(c.find_tensor("shared_a")->storage_key, c.find_tensor("shared_b")->storage_key);
  EXPECT_EQ(c.tensor("shared_b").data<float>()[0], 6.0f);
  // The transpose is gathered into a contiguous copy: element (i, j) is base (j, i).
  const Tensor tr = c.tensor("transposed");
  EXPECT_TRUE(tr.is_contiguous());
  EXPECT_EQ(dynamic_cast<MappedFile*>(tr.storage().get()), nullptr);
  EXPECT_FALSE(c.find_tensor("transposed")->contiguous);
  EXPECT_EQ(c.tensor("i64").data<int64_t>()[3], int64_t{1} << 40);
  EXPECT_EQ(c.tensor("bool").dtype(), DType::I8);
  EXPECT_EQ(c.find_tensor("bool")->dtype, "BOOL");
}

TEST(TorchCheckpoint, ValuesAndStateDict) {
  for (const char* name : {"zip_basic.pt", "legacy_basic.pt"}) {
    const auto c = torch::Checkpoint::open(fixture(name));
    const pickle::Value* tags = c.root().get("meta")->get("tags");
    ASSERT_NE(tags, nullptr) << name;
    ASSERT_EQ(tags->kind, pickle::Kind::List);
    ASSERT_EQ(tags->items.size(), 4u);
    EXPECT_EQ(tags->items[2]->s, "rating:safe");
    EXPECT_EQ(c.root().get("meta")->get("ratio")->f, 0.25);
    EXPECT_EQ(c.root().get("meta")->get("np_scalar")->f, 0.5);
    EXPECT_EQ(c.tensor("meta.nested.inner.w").dtype(), DType::F16);
  }
  const auto w = torch::Checkpoint::open(fixture("wrapped.ckpt"));
  EXPECT_EQ(w.state_dict_prefix(), "state_dict.module.");
  EXPECT_EQ(w.state_tensor("fc.weight").shape(), Dims({3, 4}));
  EXPECT_EQ(w.root().get("epoch")->i, 3);
  const auto m = torch::Checkpoint::open(fixture("module_state.bin"));
  EXPECT_EQ(m.state_dict_prefix(), "");
  ASSERT_NE(m.root().state, nullptr);  // the OrderedDict's _metadata attribute
  EXPECT_NE(m.root().state->get("_metadata"), nullptr);
  const auto b = torch::Checkpoint::open(fixture("best_state.bin"));
  EXPECT_EQ(b.state_dict_prefix(), "best_state.");
  EXPECT_EQ(b.root().get("xp.cfg")->kind, pickle::Kind::Str);
}

TEST(TorchCheckpoint, LegacyCopiesMisalignedData) {
  const auto zip = torch::Checkpoint::open(fixture("zip_basic.pt"));
  const auto leg = torch::Checkpoint::open(fixture("legacy_basic.pt"));
  EXPECT_EQ(leg.format(), "legacy");
  ASSERT_EQ(zip.tensors().size(), leg.tensors().size());
  for (const auto& info : zip.tensors()) {
    const Tensor a = zip.tensor(info.name), b = leg.tensor(info.name);
    ASSERT_EQ(a.shape(), b.shape()) << info.name;
    EXPECT_EQ(0, std::memcmp(a.contiguous().raw(), b.contiguous().raw(), a.nbytes())) << info.name;
  }
}

TEST(TorchCheckpoint, HostileGlobalsNamed) {
  try {
    torch::Checkpoint::open(fixture("evil_system.pt"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'posix.system' is not allowed"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(pickle::global_allowed("builtins", "eval"));
  EXPECT_TRUE(pickle::global_allowed("__builtin__", "set"));
  EXPECT_TRUE(pickle::global_allowed("torch._utils", "_rebuild_tensor_v2"));
}

// Every truncation and many random corruptions: a checkpoint or an Error, nothing else.
TEST(TorchCheckpoint, TruncatedAndCorruptNeverCrash) {
  for (const char* name : {"module_state.bin", "legacy_basic.pt"}) {
    const std::string full = read_all(fixture(name));
    ASSERT_FALSE(full.empty());
    for (size_t n = 0; n < full.size(); n += 7) {
      std::string cut = full.substr(0, n);
      EXPECT_THROW(parse_bytes(cut), Error) << name << " cut at " << n;
    }
    std::mt19937 rng(42);
    for (int trial = 0; trial < 300; ++trial) {
      std::string bad = full;
      for (int k = 0; k < 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
      try {
        const auto c = parse_bytes(bad);
        for (const auto& t : c.tensors()) (void)c.tensor(t).nbytes();
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace
}  // namespace eight
