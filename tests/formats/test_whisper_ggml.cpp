// whisper.cpp ggml model reader: synthetic files in the legacy format (several vocab sizes and
// mel counts), the shared random-weight tiny model, and truncated / corrupted inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/half.h"
#include "formats/whisper_ggml.h"
#include "test_util.h"

namespace eight {
namespace {

class Writer {
 public:
  void i32(int32_t v) { raw(&v, 4); }
  void f32(float v) { raw(&v, 4); }
  void str(const std::string& s) { raw(s.data(), s.size()); }
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::vector<uint8_t> bytes;
};

struct Synthetic {
  std::vector<uint8_t> bytes;
  size_t tensors_start = 0;
  std::vector<size_t> boundaries;  // offsets where a tensor ends (valid truncation points)
};

// A small whisper-shaped file: header, mel filters, a few vocab tokens, two tensors (f32 and
// f16) whose values encode their index so the views can be checked.
Synthetic make_file(int32_t n_vocab, int32_t n_mels, int32_t n_tokens = 4) {
  Writer w;
  w.i32(static_cast<int32_t>(whisper::kGgmlMagic));
  const int32_t hp[11] = {n_vocab, 1500, 8, 2, 1, 448, 8, 2, 1, n_mels, 1};
  for (int32_t v : hp) w.i32(v);
  w.i32(n_mels);
  w.i32(201);
  for (int i = 0; i < n_mels * 201; ++i) w.f32(static_cast<float>(i) * 0.5f);
  w.i32(n_tokens);
  for (int i = 0; i < n_tokens; ++i) {
    const std::string tok = "tok" + std::to_string(i);
    w.i32(static_cast<int32_t>(tok.size()));
    w.str(tok);
  }
  Synthetic s;
  s.tensors_start = w.bytes.size();
  // encoder.conv1.bias: f32, ne = {8, 1} → shape [1, 8]
  const std::string n1 = "encoder.conv1.bias";
  w.i32(2);
  w.i32(static_cast<int32_t>(n1.size()));
  w.i32(0);
  w.i32(8);
  w.i32(1);
  w.str(n1);
  for (int i = 0; i < 8; ++i) w.f32(static_cast<float>(i) + 0.25f);
  s.boundaries.push_back(w.bytes.size());
  // encoder.conv1.weight: f16, ne = {3, n_mels, 8} → shape [8, n_mels, 3]
  const std::string n2 = "encoder.conv1.weight";
  w.i32(3);
  w.i32(static_cast<int32_t>(n2.size()));
  w.i32(1);
  w.i32(3);
  w.i32(n_mels);
  w.i32(8);
  w.str(n2);
  for (int i = 0; i < 3 * n_mels * 8; ++i) {
    const uint16_t h = fp32_to_fp16(static_cast<float>(i % 64));
    w.raw(&h, 2);
  }
  s.boundaries.push_back(w.bytes.size());
  s.bytes = std::move(w.bytes);
  return s;
}

whisper::ModelFile parse_bytes(std::vector<uint8_t>& bytes) {
  auto storage = std::make_shared<BorrowedStorage>(bytes.data(), bytes.size(), false);
  return whisper::parse(storage, "test.bin");
}

TEST(WhisperGgml, SpecialTokensFollowOpenAiLayout) {
  const auto en = whisper::special_tokens_for(51864);
  EXPECT_FALSE(en.multilingual);
  EXPECT_EQ(en.eot, 50256);
  EXPECT_EQ(en.sot, 50257);
  EXPECT_EQ(en.translate, 50357);
  EXPECT_EQ(en.transcribe, 50358);
  EXPECT_EQ(en.solm, 50359);
  EXPECT_EQ(en.prev, 50360);
  EXPECT_EQ(en.nospeech, 50361);
  EXPECT_EQ(en.notimestamps, 50362);
  EXPECT_EQ(en.timestamp_begin, 50363);

  const auto ml = whisper::special_tokens_for(51865);
  EXPECT_TRUE(ml.multilingual);
  EXPECT_EQ(ml.eot, 50257);
  EXPECT_EQ(ml.sot, 50258);
  EXPECT_EQ(ml.n_languages, 99);
  EXPECT_EQ(ml.language(0), 50259);  // <|en|>
  EXPECT_EQ(ml.translate, 50358);
  EXPECT_EQ(ml.transcribe, 50359);
  EXPECT_EQ(ml.solm, 50360);
  EXPECT_EQ(ml.prev, 50361);
  EXPECT_EQ(ml.nospeech, 50362);
  EXPECT_EQ(ml.notimestamps, 50363);
  EXPECT_EQ(ml.timestamp_begin, 50364);

  const auto v3 = whisper::special_tokens_for(51866);
  EXPECT_EQ(v3.n_languages, 100);
  EXPECT_EQ(v3.eot, 50257);
  EXPECT_EQ(v3.translate, 50359);
  EXPECT_EQ(v3.transcribe, 50360);
  EXPECT_EQ(v3.notimestamps, 50364);
  EXPECT_EQ(v3.timestamp_begin, 50365);

  for (int32_t n : {51865, 51866, 51864})
    EXPECT_EQ(whisper::special_tokens_for(n).timestamp_begin + whisper::kTimestampTokens, n);
  EXPECT_THROW(whisper::special_tokens_for(51863), Error);
  EXPECT_THROW(whisper::special_tokens_for(51867), Error);
  EXPECT_THROW(whisper::special_tokens_for(100), Error);
}

TEST(WhisperGgml, SyntheticFilesParse) {
  for (int32_t n_vocab : {51864, 51865, 51866}) {
    for (int32_t n_mels : {80, 128}) {
      SCOPED_TRACE(cat("n_vocab ", n_vocab, " n_mels ", n_mels));
      auto s = make_file(n_vocab, n_mels);
      const auto m = parse_bytes(s.bytes);
      EXPECT_EQ(m.hparams.n_vocab, n_vocab);
      EXPECT_EQ(m.hparams.n_mels, n_mels);
      EXPECT_EQ(m.weight_type, DType::F16);
      EXPECT_EQ(m.special.timestamp_begin + whisper::kTimestampTokens, n_vocab);
      ASSERT_EQ(m.mel_filters.shape(), (Dims{n_mels, 201}));
      EXPECT_EQ(m.mel_filters.data<float>()[3], 1.5f);
      EXPECT_EQ(m.mel_filters.data<float>()[n_mels * 201 - 1], (n_mels * 201 - 1) * 0.5f);
      ASSERT_EQ(m.vocab.size(), 4u);
      EXPECT_EQ(m.vocab[2], "tok2");
      ASSERT_EQ(m.tensor_names.size(), 2u);
      const Tensor& b = m.tensor("encoder.conv1.bias");
      EXPECT_EQ(b.shape(), (Dims{1, 8}));
      EXPECT_EQ(b.dtype(), DType::F32);
      EXPECT_EQ(b.data<float>()[7], 7.25f);
      // The f32 bias starts 2 bytes off 4-byte alignment, so it was copied; the f16 weight is
      // 2-aligned and stays a zero-copy view into the caller's bytes.
      const uint8_t* bias_at = s.bytes.data() + s.tensors_start + 12 + 8 + 18;
      ASSERT_NE(reinterpret_cast<uintptr_t>(bias_at) % 4, 0u);
      EXPECT_NE(b.raw(), bias_at);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.raw()) % 4, 0u);
      EXPECT_EQ(m.copied_tensors, 1);
      const Tensor& wt = m.tensor("encoder.conv1.weight");
      EXPECT_EQ(wt.shape(), (Dims{8, n_mels, 3}));
      EXPECT_EQ(wt.dtype(), DType::F16);
      EXPECT_EQ(fp16_to_fp32(wt.data<uint16_t>()[65]), 1.f);
      EXPECT_EQ(wt.raw(), bias_at + 8 * 4 + 12 + 12 + 20);
      EXPECT_THROW(m.tensor("decoder.nothing"), Error);
    }
  }
}

TEST(WhisperGgml, ScanReportsWhatLoadCopiesWithoutCopying) {
  eight::testing::TempDir dir;
  const auto s = make_file(51865, 80);
  const std::string path = dir.file("m.bin");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(s.bytes.data()),
             static_cast<std::streamsize>(s.bytes.size()));
  const auto loaded = whisper::load(path);
  const auto scanned = whisper::scan(path);
  EXPECT_EQ(loaded.copied_tensors, 1);
  EXPECT_EQ(scanned.copied_tensors, 1);
  EXPECT_EQ(loaded.copied_bytes, 8 * 4);  // the f32 bias [1, 8]
  EXPECT_EQ(scanned.copied_bytes, loaded.copied_bytes);
  EXPECT_EQ(scanned.tensor_bytes, loaded.tensor_bytes);
  EXPECT_EQ(loaded.tensor_bytes, 8 * 4 + 8 * 80 * 3 * 2);
  // load() copied the misaligned bias to an aligned buffer; scan() left it a view in place.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded.tensor("encoder.conv1.bias").raw()) % 4, 0u);
  EXPECT_NE(reinterpret_cast<uintptr_t>(scanned.tensor("encoder.conv1.bias").raw()) % 4, 0u);
}

TEST(WhisperGgml, SharedTinyModel) {
  EIGHT_REQUIRE_SHARED();
  const std::string dir = testing::shared_dir() + "/golden/whisper/";
  std::ifstream in(dir + "whisper-tiny-f16.json");
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  const auto m = whisper::load(dir + j.at("model").get<std::string>());
  EXPECT_EQ(m.hparams.n_vocab, j.at("n_vocab").get<int>());
  EXPECT_EQ(m.hparams.n_mels, 80);
  EXPECT_EQ(m.hparams.n_audio_ctx, 1500);
  EXPECT_EQ(m.weight_type, DType::F16);
  EXPECT_EQ(m.mel_filters.shape(), (Dims{80, 201}));
  EXPECT_EQ(m.vocab.size(), 50257u);
  // The forced prefix is sot, <|en|>, transcribe, notimestamps.
  const auto forced = j.at("forced_tokens").get<std::vector<int>>();
  EXPECT_EQ(forced[0], m.special.sot);
  EXPECT_EQ(forced[1], m.special.language(0));
  EXPECT_EQ(forced[2], m.special.transcribe);
  EXPECT_EQ(forced[3], m.special.notimestamps);
  const int64_t state = m.hparams.n_audio_state;
  EXPECT_EQ(m.tensor("encoder.conv1.weight").shape(), (Dims{state, 80, 3}));
  EXPECT_EQ(m.tensor("encoder.positional_embedding").shape(), (Dims{1500, state}));
  EXPECT_TRUE(m.has("decoder.token_embedding.weight"));
  for (const auto& [name, t] : m.tensors)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % (t.dtype() == DType::F32 ? 4 : 2), 0u) << name;
  EXPECT_EQ(m.tensor("decoder.token_embedding.weight").shape(),
            (Dims{m.hparams.n_vocab, m.hparams.n_text_state}));
  // Mel filters are non-negative weights; each of the 80 bands has some mass.
  const float* f = m.mel_filters.data<float>();
  for (int b = 0; b < 80; ++b) {
    double sum = 0;
    for (int k = 0; k < 201; ++k) {
      EXPECT_GE(f[b * 201 + k], 0.f);
      sum += f[b * 201 + k];
    }
    EXPECT_GT(sum, 0.0) << "band " << b;
  }
}

TEST(WhisperGgml, EveryTruncationIsAnError) {
  const auto full = make_file(51865, 80, 6);
  for (size_t len = 0; len < full.bytes.size(); ++len) {
    std::vector<uint8_t> cut(full.bytes.begin(), full.bytes.begin() + len);
    const bool valid =
        len == full.tensors_start ||
        std::find(full.boundaries.begin(), full.boundaries.end(), len) != full.boundaries.end();
    if (valid) {
      EXPECT_NO_THROW(parse_bytes(cut)) << "length " << len;
    } else {
      EXPECT_THROW(parse_bytes(cut), Error) << "length " << len;
    }
  }
}

TEST(WhisperGgml, RandomCorruptionThrowsOrParses) {
  const auto full = make_file(51866, 128, 5);
  std::uniform_int_distribution<size_t> pos(0, full.tensors_start + 100);
  std::uniform_int_distribution<int> byte(0, 255);
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bad = full.bytes;
    const int flips = 1 + trial % 4;
    for (int k = 0; k < flips; ++k)
      bad[std::min(pos(testing::rng()), bad.size() - 1)] =
          static_cast<uint8_t>(byte(testing::rng()));
    try {
      parse_bytes(bad);
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(WhisperGgml, SpecificDefectsNameTheField) {
  auto expect_msg = [](std::vector<uint8_t> b, const std::string& needle) {
    try {
      parse_bytes(b);
      ADD_FAILURE() << "no error, expected '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const auto base = make_file(51865, 80);
  auto put = [&](size_t off, int32_t v) {
    auto b = base.bytes;
    std::memcpy(b.data() + off, &v, 4);
    return b;
  };
  expect_msg(put(0, 0x46554747), "magic");
  expect_msg(put(4, 12345), "n_vocab");
  expect_msg(put(4 + 10 * 4, 5), "unsupported file type");
  expect_msg(put(4 + 11 * 4, 81), "n_mel");
  const size_t vocab_at = 4 + 11 * 4 + 8 + 80 * 201 * 4;
  expect_msg(put(vocab_at, 60000), "vocab count");
  expect_msg(put(vocab_at + 4, -3), "vocab token 0 has length -3");
  expect_msg(put(base.tensors_start, 7), "n_dims 7");
  expect_msg(put(base.tensors_start + 4, 100000), "name length");
  expect_msg(put(base.tensors_start + 8, 99), "unknown ggml type");
  expect_msg(put(base.tensors_start + 12, 1 << 30), "needs");
  expect_msg(put(base.tensors_start + 12, 0), "ne[0] = 0");
}

}  // namespace
}  // namespace eight
