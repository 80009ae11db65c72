// BLIP against transformers (tests/data/blip, written by tools/reference/make_blip_fixtures.py):
// preprocessed pixels, the vision tower's embeddings (F32 weights, NMSE <= 1e-5), the WordPiece
// tokenizer and decoder, and the exact greedy, beam, prompted and VQA tokens. Malformed
// directories are errors naming the problem.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/image.h"
#include "formats/npy.h"
#include "models/blip/blip.h"
#include "test_util.h"

namespace eight {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string data_dir() {
  return testing::source_dir() + "/tests/data/blip";
}

json expected() {
  std::ifstream in(data_dir() + "/expected.json");
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

double nmse(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    num += (x - y) * (x - y);
    den += y * y;
  }
  return num / std::max(den, 1e-30);
}

std::vector<int32_t> ids(const json& j) {
  return j.get<std::vector<int32_t>>();
}

TEST(Blip, PixelsAndVisionEmbeddingsMatchTransformers) {
  const auto m = blip::Model::load(data_dir() + "/caption");
  ThreadPool pool(2);
  for (const char* name : {"gradient", "noise"}) {
    const Tensor px = m->preprocess(image::load(data_dir() + "/" + name + ".png"));
    const Tensor want = npy::read(data_dir() + "/pixels_" + name + ".npy");
    ASSERT_EQ(px.shape(), want.shape()) << name;
    float worst = 0;
    for (int64_t i = 0; i < px.numel(); ++i)
      worst = std::max(worst, std::abs(px.data<float>()[i] - want.data<float>()[i]));
    EXPECT_LT(worst, 1e-5f) << name;
    // The embeddings from transformers' own pixels, so the tower is checked on its own.
    const Tensor emb = m->image_embeddings(want, pool);
    EXPECT_LE(nmse(emb, npy::read(data_dir() + "/vision_" + name + ".npy")), 1e-5) << name;
  }
}

TEST(Blip, TokenizerMatchesBertTokenizer) {
  const json e = expected();
  for (const char* dir : {"caption", "vqa"}) {  // tokenizer.json, vocab.txt
    const auto m = blip::Model::load(data_dir() + "/" + dir);
    for (auto it = e["tokenize"].begin(); it != e["tokenize"].end(); ++it)
      EXPECT_EQ(m->tokenize(it.key()), ids(it.value())) << dir << ": " << it.key();
    EXPECT_EQ(m->decode(ids(e["decode"]["ids"])), e["decode"]["text"].get<std::string>()) << dir;
  }
}

TEST(Blip, CaptionsAndAnswersMatchGenerate) {
  const json e = expected();
  const auto cap = blip::Model::load(data_dir() + "/caption");
  const auto vqa = blip::Model::load(data_dir() + "/vqa");
  const auto runon = blip::Model::load(data_dir() + "/runon");
  ThreadPool pool(2);
  auto check_run = [](const blip::Generated& g, const json& want, size_t prompt_len,
                      const std::string& what) {
    std::vector<int32_t> w = ids(want["ids"]);
    w.erase(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(prompt_len));
    if (!w.empty() && w.back() == 3) w.pop_back();  // [SEP] in the fixture vocabulary
    EXPECT_EQ(g.tokens, w) << what;
    EXPECT_EQ(g.text, want["text"].get<std::string>()) << what;
  };
  for (auto it = e["images"].begin(); it != e["images"].end(); ++it) {
    const std::string stem = it.key().substr(0, it.key().size() - 4);
    const Tensor px = npy::read(data_dir() + "/pixels_" + stem + ".npy");
    const json& v = it.value();
    check_run(cap->caption(px, {}, pool), v["greedy"], 1, it.key() + " greedy");
    check_run(cap->caption(px, {.prompt = "", .max_new_tokens = -1, .num_beams = 3}, pool),
              v["beam3"], 1, it.key() + " beam3");
    check_run(cap->caption(px, {.prompt = "", .max_new_tokens = 30, .num_beams = 2}, pool),
              v["beam2_new30"], 1, it.key() + " beam2");
    const size_t prompt_len = v["prompt"]["prompt_ids"].size() - 1;
    check_run(
        cap->caption(px, {.prompt = "a picture of", .max_new_tokens = -1, .num_beams = -1}, pool),
        v["prompt"], prompt_len, it.key() + " prompt");
    check_run(vqa->answer(px, v["vqa"]["question"].get<std::string>(), {}, pool), v["vqa"], 1,
              it.key() + " vqa");
    // A model that runs to the length limit: with no max_length in its configs, transformers 5
    // generates 20 new tokens after the prompt, whatever the prompt's length.
    const json& r = v["runon"];
    auto tail = [](const json& seq, size_t n) {
      std::vector<int32_t> all = ids(seq);
      return std::vector<int32_t>(all.begin() + static_cast<std::ptrdiff_t>(n), all.end());
    };
    EXPECT_EQ(runon->caption(px, {}, pool).tokens, tail(r["ids"], 1)) << it.key();
    EXPECT_EQ(runon->caption(px, {.prompt = "", .max_new_tokens = -1, .num_beams = 2}, pool).tokens,
              tail(r["beam2"], 1))
        << it.key();
    const blip::Generated g =
        runon->caption(px, {.prompt = "a picture of", .max_new_tokens = -1, .num_beams = -1}, pool);
    EXPECT_EQ(g.tokens, tail(r["prompt_ids"], prompt_len)) << it.key();
    EXPECT_EQ(g.tokens.size(), 20u);
    EXPECT_FALSE(g.ended);
  }
  // The other model kind is refused with a message saying what to do.
  const Tensor px = npy::read(data_dir() + "/pixels_noise.npy");
  EXPECT_THROW(cap->answer(px, "what?", {}, pool), Error);
  EXPECT_THROW(vqa->caption(px, {}, pool), Error);
  EXPECT_THROW(cap->caption(px, {.prompt = "", .max_new_tokens = 100, .num_beams = -1}, pool),
               Error);  // past the 40 positions of the fixture
}

TEST(Blip, MalformedDirectoriesAreErrors) {
  const fs::path tmp = fs::temp_directory_path() / "eight_blip_bad";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  auto copy_all = [&] {
    for (const auto& f : fs::directory_iterator(data_dir() + "/caption"))
      fs::copy_file(f.path(), tmp / f.path().filename(), fs::copy_options::overwrite_existing);
  };
  auto expect_error = [&](const std::string& needle) {
    try {
      blip::Model::load(tmp.string());
      ADD_FAILURE() << "no error, expected one naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("config.json");
  copy_all();
  fs::remove(tmp / "model.safetensors");
  expect_error("model.safetensors");
  copy_all();
  std::ofstream(tmp / "config.json") << "{\"architectures\": [\"BlipModel\"]}";
  expect_error("BlipForConditionalGeneration");
  copy_all();
  std::ofstream(tmp / "config.json") << "{not json";
  expect_error("not valid JSON");
  copy_all();
  fs::remove(tmp / "tokenizer.json");
  fs::remove(tmp / "vocab.txt");
  expect_error("vocab.txt");
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace eight
