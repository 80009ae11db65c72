// `eight run -m MODEL -p PROMPT`: streams a completion of the raw prompt (no chat template).
// With --image IMG --mmproj M (LLaVA 1.6) the image's embeddings go where the prompt holds the
// literal "<image>" (else before the text).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/llm_common.h"
#include "core/error.h"
#include "runtime/llm/multimodal.h"
#include "text/tokenizer.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("run", "-m MODEL -p PROMPT [options]",
              "Complete a prompt with an LLM, streaming the text to stdout (no chat template).");
  ModelArgs model;
  SamplingArgs sampling;
  VisionArgs vision;
  GrammarArgs grammar;
  std::string prompt;
  std::vector<std::string> stops;
  int64_t n = 256;
  bool json = false, context_shift = false, no_bos = false, special = true, no_special = false;
  model.add_to(p);
  p.option("-p,--prompt", &prompt, "TEXT", "the prompt (required)");
  p.option("-n,--max-tokens", &n, "N",
           "tokens to generate at most; -1 = until the context is full");
  sampling.add_to(p);
  vision.add_to(p);
  grammar.add_to(p);
  p.option("--stop", &stops, "TEXT", "stop when this text appears (repeatable; not printed)");
  p.flag("--context-shift", &context_shift,
         "when the context is full, drop the oldest tokens after the prompt's first and go on");
  p.flag("--no-bos", &no_bos, "do not add BOS even when the model's metadata asks for it");
  p.flag(
      "--special", &special,
      "parse special-token text in the prompt (\"<|im_start|>\") as llama.cpp does (the default)");
  p.flag("--no-parse-special", &no_special, "tokenize special-token text as plain text");
  p.flag("--json", &json,
         "print one JSON object at the end: text, tokens, prompt_tokens (image positions -1), "
         "timings (no streaming)");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!prompt.empty(), "a prompt is required (-p PROMPT)");
  special = !no_special;
  check(n >= -1, "--max-tokens must be ≥ -1, got ", n);

  SessionOptions so = model.session_options();
  if (vision.any()) vision.from_model(model.model);  // a text-only run bills no encoder
  vision.plan(so);
  auto session = LLMSession::open(model.resolve(false), so);
  const gguf::File& f = session->model().file();
  const auto tok = text::Tokenizer::from_gguf(f);
  std::vector<int32_t> tokens;
  std::vector<float> embeddings;
  if (vision.any()) {
    const int64_t n_embd = session->config().n_embd;
    const Tensor features[] = {vision.encode(vision.image, n_embd, model.threads)};
    MultimodalPrompt mp =
        build_multimodal_prompt(tok, prompt, !no_bos && tok.add_bos(), special, features, n_embd);
    tokens = std::move(mp.tokens);
    embeddings = std::move(mp.embeddings);
  } else {
    check(vision.mmproj.empty(), "--mmproj needs an --image");
    tokens = tok.encode(prompt, /*add_special=*/!no_bos, special);
  }
  GenerateParams gp{.max_tokens = n,
                    .sampling = sampling.params(),
                    .stop = stops,
                    .eog_tokens = tok.eog_ids(),
                    .context_shift = context_shift,
                    .keep = tok.add_bos() && !no_bos ? 1 : 0,
                    .prompt_embeddings = embeddings.empty() ? nullptr : embeddings.data()};
  grammar.apply(gp, tok);
  install_interrupt_handler();
  auto sink = [&](std::string_view s) {
    if (!json) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  const GenerateResult r = generate(
      *session, tokens, gp, [&](int32_t id) { return tok.token_to_piece(id); }, sink,
      &interrupted());
  if (json) {
    nlohmann::ordered_json j = {{"text", r.text},
                                {"tokens", r.tokens},
                                {"prompt_tokens", tokens},
                                {"finish_reason", r.finish_reason},
                                {"timings",
                                 {{"prompt_tokens_per_s", r.prompt_tokens_per_s()},
                                  {"gen_tokens_per_s", r.gen_tokens_per_s()}}}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
    std::fprintf(stderr, "[%zu tokens, prompt %.1f tokens/s, generation %.1f tokens/s, %s]\n",
                 r.tokens.size(), r.prompt_tokens_per_s(), r.gen_tokens_per_s(),
                 r.finish_reason.c_str());
  }
  return 0;
}

const Registration reg({.name = "run",
                        .summary = "complete a prompt with an LLM (streaming)",
                        .run = run,
                        .order = 40});

}  // namespace
}  // namespace eight::cli
