// `eight caption -m BLIP IMAGE...` and `eight ask -m BLIP-VQA IMAGE -q QUESTION`: BLIP image
// captions (optionally continuing a text prefix) and answers to questions about an image.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/args.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "models/blip/blip.h"
#include "runtime/plan/blip.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

struct BlipArgs {
  std::string model, ram;
  int threads = 0, max_tokens = -1;
  bool json = false;
  void add_to(ArgParser& p, const char* kind) {
    p.option("-m,--model", &model, "MODEL",
             std::string("BLIP ") + kind +
                 " model: a Hugging Face checkpoint folder or a store name (required)");
    p.option("-t,--threads", &threads, "N", "CPU threads (default: all cores)");
    p.option("--ram", &ram, "SIZE",
             "RAM budget the run must fit, checked before it starts (default: this machine's RAM "
             "minus 1 GiB; eight plan MODEL shows the bill)");
    p.option("--max-tokens", &max_tokens, "N",
             "tokens generated at most, after the prompt (default: the model's max_length in "
             "all when its config sets one, else 20 new tokens, as transformers does)");
  }
  std::shared_ptr<const blip::Model> load() const {
    check(!model.empty(), "a BLIP model is required (-m MODEL)");
    check(threads >= 0 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);
    check(max_tokens == -1 || (max_tokens >= 1 && max_tokens <= 4096),
          "--max-tokens must be in [1, 4096], got ", max_tokens);
    return blip::Model::load(resolve_model_path(model));
  }
  // The memory plan for this run (generation settings as they will be resolved), checked against
  // the RAM budget before any image is decoded.
  void check_plan(const blip::Model& m, int beams, size_t prompt_tokens,
                  size_t question_tokens = 0) const {
    const blip::GenerationConfig& g = m.config().generation;
    const int max_length =
        static_cast<int>(prompt_tokens) +
        (max_tokens >= 0 ? max_tokens : g.max_length);  // an upper bound either way
    const BlipPlan plan = plan_blip(
        m.config(), m.name(), m.file_bytes(), m.matrix_type(), beams > 0 ? beams : g.num_beams,
        max_length, global_thread_pool(threads).size(), static_cast<int>(question_tokens));
    log_debug("[caption] plan: ", format_bytes(plan.host_peak()), " (decoder ",
              format_bytes(plan.decoder_bytes), ")");
    plan.check_host_budget(ram.empty() ? 0 : parse_bytes(ram));
  }
};

nlohmann::json ids_json(const std::vector<int32_t>& ids) {
  nlohmann::json a = nlohmann::json::array();
  for (int32_t id : ids) a.push_back(id);
  return a;
}

int run_caption(int argc, char** argv) {
  ArgParser p("caption", "-m BLIP IMAGE... [--prompt TEXT] [--beams N]",
              "Describe images with a BLIP captioning model (BlipForConditionalGeneration).");
  BlipArgs a;
  std::string prompt;
  int beams = -1;
  a.add_to(p, "captioning");
  p.option("--prompt", &prompt, "TEXT",
           "caption prefix the model continues, e.g. \"a picture of\" (default: none)");
  p.option("--beams", &beams, "N",
           "beam search with N beams (default: the model's, else 1 = greedy)");
  p.flag("--json", &a.json, "print {\"captions\": [{\"image\", \"text\", \"tokens\"}]}");
  p.positional_count(1, -1);
  p.epilog(
      "example:\n  eight caption -m Salesforce/blip-image-captioning-base cat.jpg --beams 3\n"
      "text is the whole caption (prompt included); tokens are the ids generated after the "
      "prompt, without the final [SEP].");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(beams == -1 || (beams >= 1 && beams <= 64), "--beams must be in [1, 64], got ", beams);
  const auto model = a.load();
  a.check_plan(*model, beams, 1 + model->tokenize(prompt).size());
  ThreadPool& pool = global_thread_pool(a.threads);
  const blip::GenerateOptions opt{
      .prompt = prompt, .max_new_tokens = a.max_tokens, .num_beams = beams};
  nlohmann::json caps = nlohmann::json::array();
  int failures = 0;
  for (const std::string& path : p.positionals()) {
    blip::Generated g;
    try {
      const Tensor pixels = model->preprocess(image::load(path));
      g = model->caption(pixels, opt, pool);
    } catch (const Error& e) {
      std::fprintf(stderr, "eight caption: %s: %s\n", path.c_str(), e.what());
      ++failures;
      continue;
    }
    if (a.json)
      caps.push_back({{"image", path}, {"text", g.text}, {"tokens", ids_json(g.tokens)}});
    else
      std::printf("%s: %s\n", path.c_str(), g.text.c_str());
  }
  if (a.json) std::printf("%s\n", nlohmann::json{{"captions", caps}}.dump(2).c_str());
  return failures == 0 ? 0 : 1;
}

int run_ask(int argc, char** argv) {
  ArgParser p("ask", "-m BLIP-VQA IMAGE -q QUESTION",
              "Answer a question about an image with a BLIP VQA model (BlipForQuestionAnswering).");
  BlipArgs a;
  std::string question;
  a.add_to(p, "question-answering");
  p.option("-q,--question", &question, "TEXT", "the question (required)");
  p.flag("--json", &a.json, "print {\"answer\", \"tokens\"}");
  p.positional_count(1, 1);
  p.epilog("example:\n  eight ask -m Salesforce/blip-vqa-base cats.jpg -q \"how many cats?\"");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!question.empty(), "a question is required (-q \"what is in the picture?\")");
  const auto model = a.load();
  a.check_plan(*model, 1, 1, model->tokenize(question).size());
  ThreadPool& pool = global_thread_pool(a.threads);
  const Tensor pixels = model->preprocess(image::load(p.positionals()[0]));
  const blip::Generated g = model->answer(
      pixels, question, {.prompt = "", .max_new_tokens = a.max_tokens, .num_beams = -1}, pool);
  if (a.json)
    std::printf("%s\n",
                nlohmann::json{{"answer", g.text}, {"tokens", ids_json(g.tokens)}}.dump(2).c_str());
  else
    std::printf("%s\n", g.text.c_str());
  return 0;
}

const Registration reg_caption({.name = "caption",
                                .summary = "caption images with a BLIP model",
                                .run = run_caption,
                                .order = 56});
const Registration reg_ask({.name = "ask",
                            .summary = "answer a question about an image (BLIP VQA)",
                            .run = run_ask,
                            .order = 57});

}  // namespace
}  // namespace eight::cli
