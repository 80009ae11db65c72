// Test driver for CLIP pieces the user-facing commands do not expose directly:
//
//   clip_tool tokenize --merges FILE [--limit N] < texts.json   # JSON list of strings in,
//   clip_tool tokenize --dir CHECKPOINT < texts.json            # JSON list of id lists out
//   clip_tool tokenize --tokenizer-json tokenizer.json < texts.json
//   clip_tool embed MODEL [--pixels X.npy] [--text T]... --out OUT.npy [--threads N]
//                         [--device cpu|vulkan:N]
//   clip_tool bench MODEL [--batch N] [--iters K] [--threads N] [--texts N]
//
// `embed` writes the image embeddings (pixels F32 [n, 3, H, W], already preprocessed) followed by
// the text embeddings, one row each.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/npy.h"
#include "models/clip/clip.h"
#include "ops/device.h"
#include "text/clip_tokenizer.h"

namespace {

using namespace eight;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int tokenize(int argc, char** argv) {
  std::string merges, dir, tokenizer_json;
  size_t limit = 0;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    check(i + 1 < argc, "option ", a, " needs a value");
    if (a == "--merges")
      merges = argv[++i];
    else if (a == "--dir")
      dir = argv[++i];
    else if (a == "--tokenizer-json")
      tokenizer_json = argv[++i];
    else if (a == "--limit")
      limit = std::stoul(argv[++i]);
    else
      fail("unknown option ", a);
  }
  auto tok = !merges.empty() ? text::CLIPTokenizer::from_merges(
                                   text::CLIPTokenizer::parse_merges(read_file(merges), limit))
             : !tokenizer_json.empty()
                 ? text::CLIPTokenizer::from_tokenizer_json(read_file(tokenizer_json))
                 : text::CLIPTokenizer::from_vocab_json(read_file(dir + "/vocab.json"),
                                                        read_file(dir + "/merges.txt"));
  const std::string input((std::istreambuf_iterator<char>(std::cin)), {});
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : nlohmann::json::parse(input))
    out.push_back(tok.encode(t.get<std::string>()));
  std::cout << out.dump() << "\n";
  return 0;
}

int embed(int argc, char** argv) {
  check(argc >= 1, "embed needs a model");
  const std::string model_path = argv[0];
  std::string pixels, out, device = "cpu";
  std::vector<std::string> texts;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    check(i + 1 < argc, "option ", a, " needs a value");
    if (a == "--pixels")
      pixels = argv[++i];
    else if (a == "--text")
      texts.push_back(argv[++i]);
    else if (a == "--out")
      out = argv[++i];
    else if (a == "--threads")
      threads = std::stoi(argv[++i]);
    else if (a == "--device")
      device = argv[++i];
    else
      fail("unknown option ", a);
  }
  check(!out.empty(), "embed needs --out");
  const auto model = clip::Model::load(model_path, ops::choose_device(device));
  ThreadPool pool(threads);
  std::vector<Tensor> parts;
  if (!pixels.empty()) parts.push_back(model->embed_images(npy::read(pixels), pool));
  if (!texts.empty()) parts.push_back(model->embed_texts(texts, pool));
  int64_t rows = 0;
  const int64_t d = model->config().projection_dim;
  for (const auto& p : parts) rows += p.size(0);
  Tensor all = Tensor::empty({rows, d}, DType::F32);
  int64_t r = 0;
  for (const auto& p : parts) {
    std::memcpy(all.data<float>() + r * d, p.raw(), p.nbytes());
    r += p.size(0);
  }
  npy::write(out, all);
  return 0;
}

// Images/s of the vision tower on random pixels (batch N, K timed runs after one warm-up) and
// text embeddings/s (N texts of about 12 tokens each).
int bench(int argc, char** argv) {
  check(argc >= 1, "bench needs a model");
  int batch = 1, iters = 3, threads = 2, texts = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    check(i + 1 < argc, "option ", a, " needs a value");
    if (a == "--batch")
      batch = std::stoi(argv[++i]);
    else if (a == "--iters")
      iters = std::stoi(argv[++i]);
    else if (a == "--threads")
      threads = std::stoi(argv[++i]);
    else if (a == "--texts")
      texts = std::stoi(argv[++i]);
    else
      fail("unknown option ", a);
  }
  const auto model = clip::Model::load(argv[0]);
  ThreadPool pool(threads);
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  // CPU time of the whole process: on a loaded machine wall time measures the other jobs, CPU
  // time (with --threads 1, where no worker spins) what one core needs.
  auto cpu_seconds = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const int s = model->config().image_size;
  Tensor px = Tensor::empty({batch, 3, s, s}, DType::F32);
  for (int64_t i = 0; i < px.numel(); ++i)
    px.data<float>()[i] = static_cast<float>((i * 7919) % 255) / 128.f - 1;
  if (batch > 0) {
    model->embed_images(px, pool);
    const auto t0 = clock::now();
    const double c0 = cpu_seconds();
    for (int i = 0; i < iters; ++i) model->embed_images(px, pool);
    const double t = seconds(t0), c = cpu_seconds() - c0;
    std::printf(
        "images: batch %d, %d threads: %.3f s per batch, %.3f images/s (wall); %.3f CPU-s per "
        "image\n",
        batch, threads, t / iters, batch * iters / t, c / (batch * iters));
  }
  if (texts > 0 && model->config().has_text) {
    std::vector<std::string> v;
    for (int i = 0; i < texts; ++i)
      v.push_back(cat("a photo of a small cat number ", i, " sitting on the grass"));
    model->embed_texts(v, pool);
    const auto t0 = clock::now();
    const double c0 = cpu_seconds();
    for (int i = 0; i < iters; ++i) model->embed_texts(v, pool);
    const double t = seconds(t0), c = cpu_seconds() - c0;
    std::printf("texts: %d per call, %d threads: %.2f texts/s (wall); %.4f CPU-s per text\n", texts,
                threads, texts * iters / t, c / (texts * iters));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "tokenize") return tokenize(argc - 2, argv + 2);
    if (cmd == "embed") return embed(argc - 2, argv + 2);
    if (cmd == "bench") return bench(argc - 2, argv + 2);
    std::fprintf(stderr, "usage: clip_tool tokenize|embed|bench ... (see the file's header)\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clip_tool: %s\n", e.what());
    return 1;
  }
}
