// GGUF reader/writer: round trips of every value type and several tensor dtypes, the golden files
// in ../shared, and the writer's own checks.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/half.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace eight::gguf {
namespace {

namespace fs = std::filesystem;
using eight::testing::TempDir;

std::vector<uint8_t> random_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(eight::testing::rng()());
  return v;
}

// One value of every type, including empty strings/arrays and nested arrays.
std::vector<std::pair<std::string, Value>> every_value() {
  std::vector<std::pair<std::string, Value>> kv = {
      {"t.u8", Value::u8(250)},
      {"t.i8", Value::i8(-7)},
      {"t.u16", Value::u16(65000)},
      {"t.i16", Value::i16(-32000)},
      {"t.u32", Value::u32(4000000000u)},
      {"t.i32", Value::i32(-2000000000)},
      {"t.f32", Value::f32(3.14159f)},
      {"t.bool", Value::boolean(true)},
      {"t.string", Value::string("héllo \"gguf\"\n")},
      {"t.empty_string", Value::string("")},
      {"t.u64", Value::u64(18000000000000000000ull)},
      {"t.i64", Value::i64(-9000000000000000000ll)},
      {"t.f64", Value::f64(-2.718281828459045)},
      {"t.a_u8", Value::array(ValueType::UINT8, {Value::u8(1), Value::u8(255)})},
      {"t.a_i8", Value::array(ValueType::INT8, {Value::i8(-128), Value::i8(127)})},
      {"t.a_u16", Value::array(ValueType::UINT16, {Value::u16(7)})},
      {"t.a_i16", Value::array(ValueType::INT16, {Value::i16(-1), Value::i16(2)})},
      {"t.a_u32", Value::array(ValueType::UINT32, {Value::u32(1), Value::u32(2), Value::u32(3)})},
      {"t.a_i32", Value::i32_array({-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
      {"t.a_f32", Value::f32_array({0.5f, -1e30f, 1e-30f})},
      {"t.a_bool", Value::array(ValueType::BOOL, {Value::boolean(false), Value::boolean(true)})},
      {"t.a_string", Value::string_array({"a", "", "longer string with spaces", ""})},
      {"t.a_u64", Value::array(ValueType::UINT64, {Value::u64(UINT64_MAX)})},
      {"t.a_i64", Value::array(ValueType::INT64, {Value::i64(INT64_MIN), Value::i64(5)})},
      {"t.a_f64", Value::array(ValueType::FLOAT64, {Value::f64(1e300), Value::f64(-0.0)})},
      {"t.a_empty_u8", Value::array(ValueType::UINT8, {})},
      {"t.a_empty_string", Value::string_array({})},
      {"t.a_empty_array", Value::array(ValueType::ARRAY, {})},
      {"t.a_nested", Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({}),
                                                     Value::string_array({"x", "yz"})})},
      {"t.a_nested3",
       Value::array(ValueType::ARRAY,
                    {Value::array(ValueType::ARRAY,
                                  {Value::f32_array({1.f}), Value::array(ValueType::ARRAY, {})})})},
  };
  return kv;
}

struct TensorCase {
  std::string name;
  DType type;
  Dims shape;
  std::vector<uint8_t> bytes;
};

std::vector<TensorCase> some_tensors() {
  std::vector<TensorCase> ts = {
      {"f32.matrix", DType::F32, {3, 5}, {}},       {"f16.rows", DType::F16, {2, 33}, {}},
      {"bf16.vec", DType::BF16, {17}, {}},          {"i32.ids", DType::I32, {7}, {}},
      {"q8_0.w", DType::Q8_0, {3, 64}, {}},         {"q4_k.w", DType::Q4_K, {2, 256}, {}},
      {"f32.four_d", DType::F32, {2, 3, 4, 5}, {}},
  };
  for (auto& t : ts) t.bytes = random_bytes(dtype_row_bytes(t.type, t.shape.product()));
  return ts;
}

class RoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RoundTrip, EveryValueTypeAndSeveralDtypes) {
  const uint32_t align = GetParam();
  TempDir dir;
  const auto kv = every_value();
  const auto ts = some_tensors();
  Writer w;
  w.set("general.architecture", Value::string("test"));
  if (align != 32) w.set("general.alignment", Value::u32(align));
  for (const auto& [k, v] : kv) w.set(k, v);
  for (const auto& t : ts) {
    if (t.type == DType::F32 && t.shape.size() == 2) {  // the Tensor overload
      Tensor x = Tensor::empty(t.shape, t.type);
      std::memcpy(x.raw(), t.bytes.data(), t.bytes.size());
      w.add_tensor(t.name, x);
    } else {
      w.add_tensor(t.name, t.type, t.shape,
                   [&t](uint8_t* dst) { std::memcpy(dst, t.bytes.data(), t.bytes.size()); });
    }
  }
  size_t progress_calls = 0;
  const std::string path = dir.file("rt.gguf");
  w.write(path, [&](size_t done, size_t total) {
    ++progress_calls;
    EXPECT_EQ(total, ts.size());
    EXPECT_EQ(done, progress_calls);
  });
  EXPECT_EQ(progress_calls, ts.size());

  const File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), align);
  EXPECT_EQ(f.data_offset() % align, 0u);
  EXPECT_EQ(f.architecture(), "test");
  // Metadata in insertion order, every value equal.
  const size_t first = align != 32 ? 2 : 1;
  ASSERT_EQ(f.metadata().size(), kv.size() + first);
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i + first].first, kv[i].first);
    EXPECT_TRUE(f.metadata()[i + first].second == kv[i].second) << kv[i].first;
  }
  EXPECT_EQ(f.get("t.a_string").string_at(2), "longer string with spaces");
  EXPECT_EQ(f.get("t.a_nested").items()[2].as_strings(), (std::vector<std::string>{"x", "yz"}));
  EXPECT_EQ(f.get("t.a_nested3").at(0).at(1).size(), 0u);
  EXPECT_EQ(f.get("t.a_i32").as_i64s()[0], -1);
  EXPECT_FLOAT_EQ(f.get("t.a_f32").as_f32s()[1], -1e30f);
  // Tensors: shape, ggml order, type, aligned offsets, identical bytes, zero-copy views.
  ASSERT_EQ(f.tensors().size(), ts.size());
  int64_t params = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo& info = f.tensors()[i];
    EXPECT_EQ(info.name, ts[i].name);
    EXPECT_EQ(info.type, ts[i].type);
    EXPECT_EQ(info.shape, ts[i].shape);
    ASSERT_EQ(info.ne.size(), static_cast<size_t>(ts[i].shape.size()));
    EXPECT_EQ(info.ne[0], ts[i].shape[ts[i].shape.size() - 1]);
    EXPECT_EQ(info.offset % align, 0u);
    EXPECT_EQ(info.nbytes, ts[i].bytes.size());
    const Tensor x = f.tensor(info.name);
    EXPECT_EQ(x.shape(), ts[i].shape);
    EXPECT_EQ(x.storage(), f.storage());  // a view, not a copy
    EXPECT_EQ(std::memcmp(x.raw(), ts[i].bytes.data(), ts[i].bytes.size()), 0) << info.name;
    params += ts[i].shape.product();
  }
  EXPECT_EQ(f.parameter_count(), params);
  EXPECT_EQ(fs::file_size(path) % align, 0u);
  // Reading our file and writing it again gives the same bytes.
  Writer w2;
  w2.copy_metadata(f);
  for (const auto& info : f.tensors()) w2.add_tensor(info.name, f.tensor(info));
  w2.write(dir.file("rt2.gguf"));
  std::ifstream a(path, std::ios::binary), b(dir.file("rt2.gguf"), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}),
            std::string(std::istreambuf_iterator<char>(b), {}));
}

INSTANTIATE_TEST_SUITE_P(Alignments, RoundTrip, ::testing::Values(32u, 64u, 256u));

TEST(GGUFValue, ConversionsAreExact) {
  EXPECT_EQ(Value::i32(-5).as_i64(), -5);
  EXPECT_THROW(Value::i32(-5).as_u64(), Error);
  EXPECT_THROW(Value::u64(1ull << 40).as_u32(), Error);
  EXPECT_THROW(Value::u64(UINT64_MAX).as_i64(), Error);
  EXPECT_THROW(Value::f32(1.5f).as_i64(), Error);
  EXPECT_DOUBLE_EQ(Value::u16(9).as_f64(), 9.0);
  EXPECT_THROW(Value::string("x").as_f64(), Error);
  EXPECT_THROW(Value::u8(1).as_bool(), Error);
  EXPECT_THROW(Value::u8(1).items(), Error);
  EXPECT_THROW(Value::i32_array({1}).as_strings(), Error);
  EXPECT_THROW(Value::array(ValueType::INT32, {Value::u32(1)}), Error);
  EXPECT_EQ(Value::i32_array({1}).at(0).as_i32(), 1);
  EXPECT_THROW(Value::i32_array({1}).at(1), Error);
}

TEST(GGUFValue, DisplaySummarizesLongArrays) {
  EXPECT_EQ(Value::i32_array({1, 2, 3, 4, 5}).str(3), "[1, 2, 3, ... (5 items)]");
  EXPECT_EQ(Value::i32_array({1, 2}).str(3), "[1, 2]");
  EXPECT_EQ(Value::string_array({"a", "b\n"}).str(), "[\"a\", \"b\\n\"]");
  EXPECT_EQ(Value::f32(0.1f).str(), "0.1");
  EXPECT_EQ(Value::boolean(false).str(), "false");
  EXPECT_EQ(Value::i64(-3).str(), "-3");
}

TEST(GGUFWriter, SetReplacesInPlaceAndRemoveDrops) {
  TempDir dir;
  Writer w;
  w.set("a", Value::u32(1)).set("b", Value::u32(2)).set("a", Value::string("one"));
  w.set("c", Value::u32(3));
  w.remove("b");
  EXPECT_FALSE(w.has("b"));
  w.write(dir.file("x.gguf"));
  const File f = File::open(dir.file("x.gguf"));
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "a");
  EXPECT_EQ(f.get_string("a"), "one");
  EXPECT_EQ(f.get_u32("c"), 3u);
  EXPECT_EQ(f.get_u32("missing", 7), 7u);
  EXPECT_THROW(f.get_u32("a"), Error);
  EXPECT_THROW(f.get("missing"), Error);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GGUFWriter, RejectsBadInput) {
  Writer w;
  EXPECT_THROW(w.set("general.alignment", Value::u32(48)), Error);
  EXPECT_THROW(w.set("general.alignment", Value::u32(0)), Error);
  EXPECT_THROW(w.add_tensor(std::string(64, 'x'), DType::F32, {4}, [](uint8_t*) {}), Error);
  EXPECT_THROW(w.add_tensor("q", DType::Q4_0, {2, 16}, [](uint8_t*) {}), Error);
  EXPECT_THROW(w.add_tensor("z", DType::F32, {2, 0}, [](uint8_t*) {}), Error);
  EXPECT_THROW(w.add_tensor("five", DType::F32, {1, 1, 1, 1, 1}, [](uint8_t*) {}), Error);
  w.add_tensor("t", DType::F32, {4}, [](uint8_t*) {});
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4}, [](uint8_t*) {}), Error);
}

TEST(GGUFWriter, FailedWriteLeavesNothingBehind) {
  TempDir dir;
  Writer w;
  w.set("general.architecture", Value::string("x"));
  w.add_tensor("ok", DType::F32, {8}, [](uint8_t* d) { std::memset(d, 0, 32); });
  w.add_tensor("bad", DType::F32, {8}, [](uint8_t*) { fail("[test] producer failed"); });
  EXPECT_THROW(w.write(dir.file("out.gguf")), Error);
  EXPECT_TRUE(fs::is_empty(dir.path())) << "temporary file left behind";
  // An existing file survives a failed overwrite untouched.
  Writer good;
  good.set("k", Value::u8(1));
  good.write(dir.file("out.gguf"));
  EXPECT_THROW(w.write(dir.file("out.gguf")), Error);
  EXPECT_EQ(File::open(dir.file("out.gguf")).get_u32("k"), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(GGUFReader, ReadsVersionTwo) {
  // v2 and v3 share the layout (v3 only added big-endian support), so a v3 file relabelled v2 must
  // read identically.
  TempDir dir;
  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.add_tensor("w", DType::F16, {2, 8}, [](uint8_t* d) { std::memset(d, 0x3c, 32); });
  w.write(dir.file("v3.gguf"));
  std::ifstream in(dir.file("v3.gguf"), std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  bytes[4] = 2;
  const File f = File::parse(std::make_shared<BorrowedStorage>(bytes.data(), bytes.size()), "v2");
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(f.tensor("w").data<uint16_t>()[15], 0x3c3c);
}

TEST(GGUFReader, RejectsVersionOneAndForeignFiles) {
  std::string bytes = "GGUF";
  bytes += std::string("\x01\x00\x00\x00", 4) + std::string(16, '\0');
  auto parse = [](std::string& b) {
    return File::parse(std::make_shared<BorrowedStorage>(b.data(), b.size()), "mem");
  };
  try {
    parse(bytes);
    FAIL() << "v1 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("v1"), std::string::npos) << e.what();
  }
  std::string big = "GGUF" + std::string("\x00\x00\x00\x03", 4) + std::string(16, '\0');
  EXPECT_THROW(parse(big), Error);
  std::string other = "PK\x03\x04 not a gguf file at all";
  try {
    parse(other);
    FAIL() << "zip accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a GGUF file"), std::string::npos) << e.what();
  }
}

// ---- golden files from ../shared -------------------------------------------------------------

std::vector<std::string> golden_files(const std::string& sub) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(eight::testing::shared_dir() + "/golden/" + sub))
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every tensor is a valid view whose bytes lie inside the mapping.
void check_views(const File& f) {
  for (const auto& info : f.tensors()) {
    const Tensor t = f.tensor(info);
    EXPECT_EQ(t.nbytes(), info.nbytes);
    const auto* base = static_cast<const uint8_t*>(f.storage()->data());
    EXPECT_GE(static_cast<const uint8_t*>(t.raw()), base + f.data_offset());
    EXPECT_LE(static_cast<const uint8_t*>(t.raw()) + t.nbytes(), base + f.file_size());
  }
}

TEST(GGUFGolden, QuantFiles) {
  EIGHT_REQUIRE_SHARED();
  const auto files = golden_files("quant");
  ASSERT_GE(files.size(), 14u);
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    const File f = File::open(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.architecture(), "eight-quant-golden");
    const auto type = dtype_from_name(f.get_string("golden.type"));
    ASSERT_TRUE(type.has_value()) << f.get_string("golden.type");
    ASSERT_NE(f.find_tensor("q"), nullptr);
    EXPECT_EQ(f.find_tensor("q")->type, *type);
    for (const char* name : {"src", "q", "deq"}) {
      EXPECT_EQ(f.find_tensor(name)->shape, (Dims{128, 512})) << name;
    }
    EXPECT_EQ(f.find_tensor("deq")->type, DType::F32);
    check_views(f);
  }
}

TEST(GGUFGolden, LLMFiles) {
  EIGHT_REQUIRE_SHARED();
  const auto files = golden_files("llm");
  ASSERT_GE(files.size(), 4u);
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    const File f = File::open(path);
    const std::string arch = f.architecture();
    EXPECT_TRUE(arch == "llama" || arch == "phi3" || arch == "qwen2") << arch;
    const Value& tokens = f.get("tokenizer.ggml.tokens");
    EXPECT_GT(tokens.size(), 30000u);
    EXPECT_EQ(tokens.as_strings().size(), tokens.size());
    EXPECT_GT(f.get_u32(arch + ".block_count"), 0u);
    const TensorInfo* embd = f.find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->shape[0], static_cast<int64_t>(tokens.size()));
    EXPECT_EQ(embd->shape[1], f.get_u32(arch + ".embedding_length"));
    check_views(f);
  }
}

TEST(GGUFGolden, TokenizerFiles) {
  EIGHT_REQUIRE_SHARED();
  TempDir dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(eight::testing::shared_dir() + "/golden/tokenizer")) {
    const std::string src = e.path().string();
    if (!src.ends_with(".gguf.gz")) continue;
    SCOPED_TRACE(src);
    const std::string out = dir.file(e.path().stem().string());
    ASSERT_EQ(eight::testing::run_command("gzip -dc '" + src + "' > '" + out + "'"), 0);
    const File f = File::open(out);
    const Value& tokens = f.get("tokenizer.ggml.tokens");
    EXPECT_GT(tokens.size(), 1000u);
    if (const Value* types = f.find("tokenizer.ggml.token_type")) {
      EXPECT_EQ(types->size(), tokens.size());
    }
    EXPECT_FALSE(f.get_string("tokenizer.ggml.model").empty());
    ++n;
  }
  EXPECT_GE(n, 7);
}

// A file assembled from tensors held elsewhere: the views are returned as they are (no copy),
// sizes add up, and repeated names or non-contiguous views are refused.
TEST(GGUFAssemble, ViewsAreUsedInPlace) {
  Tensor a = Tensor::empty({2, 3}, DType::F32);
  Tensor b = Tensor::empty({4}, DType::F16);
  for (int i = 0; i < 6; ++i) a.data<float>()[i] = static_cast<float>(i);
  File f = File::assemble("mem", {{"general.architecture", Value::string("llama")}},
                          {{"a", a}, {"b", b}});
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(f.path(), "mem");
  EXPECT_EQ(f.file_size(), a.nbytes() + b.nbytes());
  ASSERT_NE(f.find_tensor("a"), nullptr);
  EXPECT_EQ(f.find_tensor("a")->shape, (Dims{2, 3}));
  EXPECT_EQ(f.find_tensor("a")->ne, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(f.tensor("a").raw(), a.raw());
  EXPECT_EQ(f.tensor("b").dtype(), DType::F16);
  EXPECT_THROW(File::assemble("m", {}, {{"a", a}, {"a", b}}), Error);
  EXPECT_THROW(File::assemble("m", {{"k", Value::u32(1)}, {"k", Value::u32(2)}}, {}), Error);
  EXPECT_THROW(File::assemble("m", {}, {{"t", a.transpose(0, 1)}}), Error);
  EXPECT_THROW(File::assemble("m", {}, {{"u", Tensor()}}), Error);
}

}  // namespace
}  // namespace eight::gguf
