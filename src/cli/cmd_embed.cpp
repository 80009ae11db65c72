// `eight embed -m MODEL (--image FILE | --text TEXT)... [--json] [-o OUT.npy]`: normalized
// embeddings, in the order the inputs were given: CLIP (images and texts in one space), or text
// only from a GGUF embedding model (BERT: bge, all-MiniLM, ...) or a decoder LLM (last token).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/clip_common.h"
#include "cli/t5_embed.h"
#include "core/error.h"
#include "core/log.h"
#include "formats/npy.h"
#include "runtime/llm/embedder.h"

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

// A GGUF whose architecture TextEmbedder handles (bert or a decoder LLM), not CLIP.
bool is_text_embedding_gguf(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) return false;
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, 4);
  return std::memcmp(magic, "GGUF", 4) == 0 && TextEmbedder::handles(path);
}

void print_embeddings(const std::vector<Input>& inputs, const Tensor& all, bool json,
                      const std::string& out);

int run(int argc, char** argv) {
  ArgParser p("embed", "-m MODEL (--image FILE | --text TEXT)...",
              "Normalized embeddings: CLIP images and texts (one shared space: the dot product "
              "of two is their cosine similarity), or texts with a GGUF embedding model (bert: "
              "pooled as its bert.pooling_type says) or a decoder LLM (last-token pooling).");
  ClipArgs clip_args;
  std::vector<std::string> images, texts;
  std::string out;
  bool json = false;
  clip_args.add_to(p, true,
                   "a CLIP model (Hugging Face folder, CLIP GGUF or store name), a bert "
                   "embedding GGUF or a decoder LLM GGUF");
  p.option("--image", &images, "FILE", "an image to embed (repeatable)");
  p.option("--text", &texts, "TEXT", "a text to embed (repeatable)");
  p.option("-o,--output", &out, "FILE", "also write float32 [n, dim] to a .npy file");
  p.flag("--json", &json, "print [{\"input\", \"type\", \"embedding\"}]");
  T5EmbedOptions t5;
  p.option("--tokenizer", &t5.tokenizer, "PATH",
           "T5 only: spiece.model, tokenizer.json or a directory (default: beside -m)");
  p.option("--max-sequence-length", &t5.max_sequence_length, "N",
           "T5 only: truncate to N tokens, </s> kept last (default: no limit)");
  p.option("--pad-to", &t5.pad_to, "N",
           "T5 only: pad with <pad> to N tokens; padding is masked unless --attend-padding");
  p.flag("--attend-padding", &t5.attend_padding,
         "T5 only: no attention mask over the padding (as FLUX's pipeline calls T5)");
  p.epilog(
      "-m also takes a GGUF text embedding model (architecture bert: bge, all-MiniLM, e5; or a\n"
      "llama/qwen2/phi3 LLM, embedded by its last token), which embeds --text only, on the CPU.\n\n"
      "-m also takes a T5-family encoder (T5, T5 v1.1, umT5: a Hugging Face directory with\n"
      "config.json and safetensors, or a single file such as t5xxl_fp16.safetensors with\n"
      "--tokenizer). For T5 the output is the encoder's last hidden state, float32\n"
      "[n_tokens, d_model] per text (not pooled, not normalised; </s> included); --json gives\n"
      "{input, ids, shape} (+ last_hidden_state when at most 4096 values); -o writes\n"
      "[n_tokens, d_model], or [n_texts, n_tokens, d_model] for several texts of one length.\n\n"
      "examples:\n  eight embed -m bge-small-en-v1.5-f16.gguf --text \"a cat\" --text \"a dog\"\n"
      "  eight embed -m clip-vit-base-patch32 --image cat.jpg --text \"a cat\" --json");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!images.empty() || !texts.empty(), "give at least one --image FILE or --text TEXT");
  const std::vector<Input> inputs = ordered_inputs(argc, argv, images, texts);
  check(inputs.size() == images.size() + texts.size(), "[embed] lost track of the inputs");

  if (const std::string path = clip_args.resolve(); is_t5_encoder(path)) {
    check(images.empty(), "[embed] ", path, " is a text encoder (--image needs a CLIP model)");
    t5.output = out;
    t5.json = json;
    return run_t5_embed(path, texts, t5, clip_args.pool());
  } else if (is_text_embedding_gguf(path)) {
    check(images.empty(), "[embed] ", path, " embeds text only (--image needs a CLIP model)");
    const auto embedder = TextEmbedder::load(path);
    log_info("[embed] ", embedder->architecture(), ", ", embedder->dim(), "-d, ",
             embedder->pooling(), " pooling, normalized");
    print_embeddings(inputs, embedder->embed(texts, clip_args.pool()), json, out);
    return 0;
  }

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
  print_embeddings(inputs, all, json, out);
  return 0;
}

void print_embeddings(const std::vector<Input>& inputs, const Tensor& all, bool json,
                      const std::string& out) {
  const int64_t d = all.size(1);
  if (!out.empty()) npy::write(out, all);
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < inputs.size(); ++i)
      arr.push_back({{"input", inputs[i].value},
                     {"type", inputs[i].image ? "image" : "text"},
                     {"embedding", row_json(all, static_cast<int64_t>(i))}});
    std::printf("%s\n", arr.dump().c_str());
    return;
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
}

const Registration reg({.name = "embed",
                        .summary = "embeddings of texts (BERT/LLM GGUF) or images and texts (CLIP)",
                        .run = run,
                        .order = 51});

}  // namespace
}  // namespace eight::cli
