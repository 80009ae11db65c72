// `eight embed -m CLIP (--image FILE | --text TEXT)... [--json] [-o OUT.npy]`: normalized CLIP
// embeddings, in the order the inputs were given.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/clip_common.h"
#include "core/error.h"
#include "formats/npy.h"

namespace eight::cli {
namespace {

struct Input {
  bool image;
  std::string value;
};

// The ArgParser keeps --image and --text in separate lists; the order between them comes from
// argv itself.
std::vector<Input> ordered_inputs(int argc, char** argv, const std::vector<std::string>& images,
                                  const std::vector<std::string>& texts) {
  std::vector<Input> out;
  size_t ni = 0, nt = 0;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool img = a == "--image" || a.rfind("--image=", 0) == 0;
    const bool txt = a == "--text" || a.rfind("--text=", 0) == 0;
    if (img && ni < images.size()) out.push_back({true, images[ni++]});
    if (txt && nt < texts.size()) out.push_back({false, texts[nt++]});
    if ((img || txt) && a.find('=') == std::string::npos) ++i;  // skip the value
  }
  return out;
}

int run(int argc, char** argv) {
  ArgParser p("embed", "-m CLIP (--image FILE | --text TEXT)...",
              "Normalized CLIP embeddings of images and texts (one shared space: the dot product "
              "of two is their cosine similarity).");
  ClipArgs clip_args;
  std::vector<std::string> images, texts;
  std::string out;
  bool json = false;
  clip_args.add_to(p);
  p.option("--image", &images, "FILE", "an image to embed (repeatable)");
  p.option("--text", &texts, "TEXT", "a text to embed (repeatable)");
  p.option("-o,--output", &out, "FILE", "also write float32 [n, dim] to a .npy file");
  p.flag("--json", &json, "print [{\"input\", \"type\", \"embedding\"}]");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!images.empty() || !texts.empty(), "give at least one --image FILE or --text TEXT");
  const std::vector<Input> inputs = ordered_inputs(argc, argv, images, texts);
  check(inputs.size() == images.size() + texts.size(), "[embed] lost track of the inputs");

  const auto model = clip_args.load();
  ThreadPool& pool = clip_args.pool();
  const int64_t d = model->config().projection_dim;
  std::vector<bool> ok;
  std::string first_error;
  const Tensor image_emb = images.empty()
                               ? Tensor()
                               : embed_image_files(*model, images, clip_args.batch, pool, &ok,
                                                   [&](const std::string&, const std::string& msg) {
                                                     if (first_error.empty()) first_error = msg;
                                                   });
  check(first_error.empty(), first_error);  // every input must embed: rows line up with inputs
  check(texts.empty() || model->config().has_text, "[embed] ", model->name(),
        " has no text tower (a vision-only mmproj file)");
  const Tensor text_emb = texts.empty() ? Tensor() : model->embed_texts(texts, pool);

  Tensor all = Tensor::empty({static_cast<int64_t>(inputs.size()), d}, DType::F32);
  int64_t ni = 0, nt = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& src = inputs[i].image ? image_emb : text_emb;
    const int64_t r = inputs[i].image ? ni++ : nt++;
    std::memcpy(all.data<float>() + static_cast<int64_t>(i) * d, src.data<const float>() + r * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  if (!out.empty()) npy::write(out, all);
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < inputs.size(); ++i)
      arr.push_back({{"input", inputs[i].value},
                     {"type", inputs[i].image ? "image" : "text"},
                     {"embedding", row_json(all, static_cast<int64_t>(i))}});
    std::printf("%s\n", arr.dump().c_str());
    return 0;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const float* r = all.data<const float>() + static_cast<int64_t>(i) * d;
    std::printf("%s %s: [%.4f, %.4f, %.4f, ... %.4f] (%lld-d)\n",
                inputs[i].image ? "image" : "text", inputs[i].value.c_str(), r[0], r[1 % d],
                r[2 % d], r[d - 1], static_cast<long long>(d));
  }
  // With several inputs, their cosine similarities are what people usually want next.
  if (inputs.size() > 1) {
    std::printf("cosine similarity:\n");
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::printf("  [%zu]", i);
      for (size_t j = 0; j < inputs.size(); ++j) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c)
          s += double(all.data<const float>()[i * d + c]) * all.data<const float>()[j * d + c];
        std::printf(" %7.4f", s);
      }
      std::printf("\n");
    }
  }
  if (!out.empty())
    std::printf("wrote %s: float32 [%zu, %lld]\n", out.c_str(), inputs.size(),
                static_cast<long long>(d));
  return 0;
}

const Registration reg(
    {.name = "embed", .summary = "CLIP embeddings of images and texts", .run = run, .order = 51});

}  // namespace
}  // namespace eight::cli
