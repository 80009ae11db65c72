// The safetensors reader: round trip of hand-built files (every dtype, zero-copy views, misaligned
// data copied, sharded checkpoints via model.safetensors.index.json), and hostile input: every
// truncation, random byte corruptions and hand-made headers with lying lengths, shapes, offsets
// and overlaps. Each must load or throw eight::Error naming the problem — never crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace eight {
namespace {

using nlohmann::json;

// A file from a header object and a data section; the header is padded to `pad` bytes of spaces.
std::string make_file(const json& header, const std::string& data, size_t extra_spaces = 0) {
  std::string h = header.dump() + std::string(extra_spaces, ' ');
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + h + data;
}

std::shared_ptr<HostStorage> storage_of(const std::string& bytes) {
  auto st = std::make_shared<HostStorage>(bytes.size() ? bytes.size() : 1);
  std::memcpy(st->data(), bytes.data(), bytes.size());
  return st;
}

// Parses a copy of `bytes` whose size is exactly the file's (the views share the copy).
safetensors::File parse(const std::string& bytes) {
  if (bytes.empty())
    return safetensors::File::parse(std::make_shared<BorrowedStorage>(nullptr, 0), "empty");
  return safetensors::File::parse(storage_of(bytes), "test.safetensors");
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string error_of(const std::string& bytes) {
  try {
    parse(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const uint16_t h[2] = {0x3C00, 0xC000};      // f16 1, -2
  const uint16_t bf[3] = {0x3F80, 0x4000, 0};  // bf16 1, 2, 0
  std::string data = floats(a) + std::string(reinterpret_cast<const char*>(h), 4) +
                     std::string(reinterpret_cast<const char*>(bf), 6) + std::string(2, '\0');
  const int32_t ids[2] = {7, -9};
  data += std::string(reinterpret_cast<const char*>(ids), 8) + "\x05";
  json hd = {{"a", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}},
             {"h", {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {24, 28}}}},
             {"bf", {{"dtype", "BF16"}, {"shape", {3}}, {"data_offsets", {28, 34}}}},
             {"ids", {{"dtype", "I32"}, {"shape", {2}}, {"data_offsets", {36, 44}}}},
             {"u", {{"dtype", "U8"}, {"shape", {1}}, {"data_offsets", {44, 45}}}},
             {"empty", {{"dtype", "F32"}, {"shape", {0, 4}}, {"data_offsets", {45, 45}}}},
             {"scalar", {{"dtype", "F16"}, {"shape", json::array()}, {"data_offsets", {34, 36}}}},
             {"__metadata__", {{"format", "pt"}}}};
  const auto f = parse(make_file(hd, data, 3));
  EXPECT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const Tensor ta = f.tensor("a");
  EXPECT_EQ(ta.dtype(), DType::F32);
  EXPECT_EQ(ta.shape(), (Dims{2, 3}));
  // The header length (8 + JSON + 3 spaces) leaves F32 data misaligned or not; either way the
  // values must read back.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ta.data<float>()[i], a[i]);
  EXPECT_EQ(f.tensor("h").dtype(), DType::F16);
  EXPECT_EQ(f.tensor("h").data<uint16_t>()[1], 0xC000);
  EXPECT_EQ(f.tensor("bf").dtype(), DType::BF16);
  EXPECT_EQ(f.tensor("ids").data<int32_t>()[1], -9);
  EXPECT_EQ(f.tensor("u").dtype(), DType::I8);
  EXPECT_EQ(f.tensor("empty").numel(), 0);
  EXPECT_EQ(f.tensor("scalar").numel(), 1);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  EXPECT_THROW(f.tensor("missing"), Error);
}

TEST(Safetensors, AlignedDataIsZeroCopy) {
  const std::vector<float> a = {1, 2, 3, 4};
  json hd = {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}}};
  std::string h = hd.dump();
  const auto st = storage_of(make_file(hd, floats(a), (8 - h.size() % 8) % 8));
  const auto f = safetensors::File::parse(st, "aligned.safetensors");
  const Tensor t = f.tensor("a");
  EXPECT_EQ(t.storage().get(), st.get());  // a view of the input, not a copy
  EXPECT_EQ(t.data<float>()[3], 4.f);
}

TEST(Safetensors, RejectsLies) {
  const std::string data(64, '\0');
  auto one = [&](json e) { return make_file(json{{"t", e}}, data); };
  EXPECT_NE(error_of(std::string(5, '\0')).find("too short"), std::string::npos);
  std::string huge = make_file(json::object(), "");
  huge[7] = 0x7F;  // header length ~ 2^63
  EXPECT_NE(error_of(huge).find("exceeds"), std::string::npos);
  std::string past = make_file(json::object(), "");
  past[0] = 100;  // longer than the file
  EXPECT_NE(error_of(past).find("runs past"), std::string::npos);
  EXPECT_NE(error_of(make_file(json::array(), data)).find("not a JSON object"), std::string::npos);
  std::string bad_json = make_file(json::object(), data);
  bad_json[8] = '[';
  bad_json[9] = ',';
  EXPECT_NE(error_of(bad_json).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "Q4"}, {"shape", {1}}, {"data_offsets", {0, 1}}}))
                .find("unknown dtype 'Q4'"),
            std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}}))
                .find("needs 12 bytes"),
            std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}}))
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {60, 76}}}))
                .find("ends at data byte 76"),
            std::string::npos);
  EXPECT_NE(
      error_of(one({{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 4}}})).find("backwards"),
      std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "F64"},
                          {"shape", {uint64_t{1} << 40, uint64_t{1} << 30}},
                          {"data_offsets", {0, 8}}}))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(error_of(one({{"dtype", "F32"}, {"shape", {1}}})).find("data_offsets"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          one({{"dtype", "F32"}, {"shape", {1, 1, 1, 1, 1, 1, 1, 1, 1}}, {"data_offsets", {0, 4}}}))
          .find("dimensions"),
      std::string::npos);
  json overlap = {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                  {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {8, 16}}}}};
  EXPECT_NE(error_of(make_file(overlap, data)).find("overlaps"), std::string::npos);
  json meta = {{"__metadata__", {{"k", 3}}}};
  EXPECT_NE(error_of(make_file(meta, data)).find("not a string"), std::string::npos);
  // A viewable-looking but unsupported dtype parses; viewing it is the error.
  const auto f = parse(one({{"dtype", "U16"}, {"shape", {2}}, {"data_offsets", {0, 4}}}));
  EXPECT_THROW(f.tensor("t"), Error);
  // float8 tensors are viewed as stored, one byte per element.
  const auto f8 = parse(one({{"dtype", "F8_E4M3"}, {"shape", {4}}, {"data_offsets", {0, 4}}}));
  EXPECT_EQ(f8.tensor("t").dtype(), DType::F8_E4M3);
}

TEST(Safetensors, TruncationsAndCorruptionsNeverCrash) {
  std::vector<float> a(40);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
  json hd = {{"w", {{"dtype", "F32"}, {"shape", {4, 5}}, {"data_offsets", {0, 80}}}},
             {"b", {{"dtype", "F16"}, {"shape", {5}}, {"data_offsets", {80, 90}}}},
             {"__metadata__", {{"format", "pt"}}}};
  const std::string good = make_file(hd, floats(a).substr(0, 90));
  ASSERT_EQ(error_of(good), "");
  auto use = [](const std::string& bytes) {
    try {
      const auto f = parse(bytes);
      for (const auto& t : f.tensors()) {
        if (t.begin == t.end) continue;
        const Tensor v = f.tensor(t);
        volatile uint8_t x = static_cast<const uint8_t*>(v.raw())[v.nbytes() - 1];
        (void)x;
      }
    } catch (const Error&) {
    }
  };
  for (size_t n = 0; n < good.size(); ++n) use(good.substr(0, n));
  std::mt19937_64 rng(testing::rng()());
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
    use(bad);
  }
}

TEST(Safetensors, ShardedCheckpoint) {
  testing::TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir.file(name), std::ios::binary) << bytes;
  };
  write("model-00001-of-00002.safetensors",
        make_file({{"x.weight", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}},
                  floats(a)));
  write("model-00002-of-00002.safetensors",
        make_file({{"y.weight", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 12}}}}},
                  floats(b)));
  json index = {{"metadata", {{"total_size", 20}}},
                {"weight_map",
                 {{"x.weight", "model-00001-of-00002.safetensors"},
                  {"y.weight", "model-00002-of-00002.safetensors"}}}};
  write("model.safetensors.index.json", index.dump());
  const auto c = safetensors::Checkpoint::open(dir.path());
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.names(), (std::vector<std::string>{"x.weight", "y.weight"}));
  EXPECT_EQ(c.tensor("y.weight").data<float>()[2], 5.f);
  EXPECT_THROW(c.tensor("z"), Error);

  // An index that names a tensor the shard lacks, or a path outside the folder.
  index["weight_map"]["z.weight"] = "model-00001-of-00002.safetensors";
  write("model.safetensors.index.json", index.dump());
  try {
    safetensors::Checkpoint::open(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no shard holds it"), std::string::npos) << e.what();
  }
  index["weight_map"].erase("z.weight");
  index["weight_map"]["x.weight"] = "../elsewhere.safetensors";
  write("model.safetensors.index.json", index.dump());
  EXPECT_THROW(safetensors::Checkpoint::open(dir.path()), Error);
  testing::TempDir empty;
  EXPECT_THROW(safetensors::Checkpoint::open(empty.path()), Error);
}

}  // namespace
}  // namespace eight
